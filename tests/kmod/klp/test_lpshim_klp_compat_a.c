// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_klp_compat - <lpshim/klp-compat.h> builds with <linux/livepatch.h> included before
 * it (this file) and after it, directly and through another kernel header
 * (test_lpshim_klp_compat_b.c), on every configured kernel; check-klp-compat then finds no
 * reference to upstream livepatch in the module. A compile test: no case loads it.
 */
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>

#include <lpshim/klp-compat.h>

int test_lpshim_klp_compat_b_init(void);

static int test_lpshim_klp_compat_show(struct seq_file *m, void *v)
{
	void *data = klp_shadow_get_or_alloc(m, 1, 8, GFP_KERNEL, NULL, NULL);

	seq_printf(m, "%p\n", data);
	klp_shadow_free(m, 1, NULL);
	klp_shadow_free_all(2, NULL);
	return 0;
}

static int pre_patch(struct klp_object *obj)
{
	return obj->name ? 0 : -EINVAL;
}

static struct klp_func funcs[] = {
	{ .old_name = "cmdline_proc_show", .new_func = test_lpshim_klp_compat_show, .old_sympos = 0 },
	{ }
};

static struct klp_object objs[] = {
	{ .funcs = funcs, .callbacks = { .pre_patch = pre_patch, }, },
	{ }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
	.replace = true,
};

static int __init test_lpshim_klp_compat_init(void)
{
	int ret = test_lpshim_klp_compat_b_init();

	return ret ? ret : klp_enable_patch(&patch);
}

static void __exit test_lpshim_klp_compat_exit(void)
{
}

module_init(test_lpshim_klp_compat_init);
module_exit(test_lpshim_klp_compat_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
