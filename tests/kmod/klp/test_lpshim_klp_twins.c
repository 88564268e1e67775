// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_klp_twins - a patch with one livepatch relocation against a module object, the
 * original of the damaged copies that klp-refusals.sh loads: test_lpshim_twins has two static
 * twin() functions (one per source file); this patch makes test_lpshim_twins_call_b() call the
 * first, so that the module's "twins" parameter reads "a a".
 */
#include <linux/module.h>

#include <lpshim/klp-convert.h>
#include <lpshim/lpshim.h>

extern const char *twin(void);
LPSHIM_SYMPOS(twin, "test_lpshim_twins", 1);

static const char *test_lpshim_klp_twins_call_b(void)
{
	return twin();
}

static struct lpshim_func funcs[] = {
	{ .old_name = "test_lpshim_twins_call_b", .new_func = test_lpshim_klp_twins_call_b, },
	{ }
};

static struct lpshim_object objs[] = {
	{ .name = "test_lpshim_twins", .funcs = funcs, },
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_lpshim_klp_twins_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit test_lpshim_klp_twins_exit(void)
{
}

module_init(test_lpshim_klp_twins_init);
module_exit(test_lpshim_klp_twins_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: a livepatch relocation against a module object");
LPSHIM_PATCH_MODULE();
