// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_refused - a patch of one function chosen at load, to show what lpshim refuses and
 * that a refusal changes nothing (lpshim-refusals.sh):
 *
 *   insmod test_lpshim_refused.ko func=NAME [sympos=N] [object=MODULE|vmlinux]
 *
 * The replacement returns "patched" (test_lpshim_twins' twin() returns a string too); the cases
 * only let it take effect on twin(). Built a second time with -DLPSHIM_TEST_UNMARKED as
 * test_lpshim_unmarked: the same patch from a module without LPSHIM_PATCH_MODULE().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <lpshim/lpshim.h>

static char *func = "twin";
module_param(func, charp, 0444);
MODULE_PARM_DESC(func, "the function to patch");
static ulong sympos;
module_param(sympos, ulong, 0444);
MODULE_PARM_DESC(sympos, "its position among symbols of that name (0: the only one)");
static char *object = "test_lpshim_twins";
module_param(object, charp, 0444);
MODULE_PARM_DESC(object, "the module it is in, or vmlinux");

static const char *patched_twin(void)
{
	return "patched";
}

static struct lpshim_func funcs[] = {
	{
		.new_func = patched_twin,
	}, { }
};

static struct lpshim_object objs[] = {
	{
		.funcs = funcs,
	}, { }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int test_lpshim_refused_init(void)
{
	funcs[0].old_name = func;
	funcs[0].old_sympos = sympos;
	objs[0].name = strcmp(object, "vmlinux") ? object : NULL;
	return lpshim_enable_patch(&patch);
}

static void test_lpshim_refused_exit(void)
{
}

module_init(test_lpshim_refused_init);
module_exit(test_lpshim_refused_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: a patch of one function named at load");
#ifndef LPSHIM_TEST_UNMARKED
LPSHIM_PATCH_MODULE();
#endif
