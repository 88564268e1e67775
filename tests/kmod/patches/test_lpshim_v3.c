// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_v3 - version 3 of lpshim_target's version and sleep, stacked on version 2
 * (test_lpshim_consistency), for the cases of tests/vm/cases/lpshim-windows.sh:
 *
 *   fail_after_ms=MS	the enable fails: the pre_patch callback of its second object, vmlinux,
 *			sleeps MS ms, then returns -EIO, while the first object's functions are
 *			already on their func_stacks
 *   immediate_sleep=1	its lpshim_target_sleep replacement is an immediate function
 *
 * Built a second time with -DLPSHIM_TEST_REPLACE as test_lpshim_v3_replace: an atomic-replace
 * patch.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/module.h>
#include <lpshim/lpshim.h>

#include "lpshim_target.h"

static int fail_after_ms = -1;
module_param(fail_after_ms, int, 0444);
MODULE_PARM_DESC(fail_after_ms, "fail the enable after this many ms in a pre_patch callback (-1: do not fail)");

static bool immediate_sleep;
module_param(immediate_sleep, bool, 0444);
MODULE_PARM_DESC(immediate_sleep, "make the replacement of lpshim_target_sleep immediate");

static const char *v3_version(void)
{
	return "v3";
}

static int v3_sleep(void)
{
	return lpshim_target_wait_released();
}

static struct lpshim_func target_funcs[] = {
	{ .old_name = "lpshim_target_version", .new_func = v3_version, },
	{ .old_name = "lpshim_target_sleep", .new_func = v3_sleep, },
	{ }
};

static struct lpshim_func no_funcs[] = {
	{ }
};

static int v3_pre_patch_vmlinux(struct lpshim_object *obj)
{
	if (fail_after_ms < 0)
		return 0;
	msleep(fail_after_ms);
	pr_info("failing the enable after %d ms\n", fail_after_ms);
	return -EIO;
}

static struct lpshim_object objs[] = {
	{ .name = "lpshim_target", .funcs = target_funcs, },
	{ .name = NULL, .funcs = no_funcs, .callbacks = { .pre_patch = v3_pre_patch_vmlinux, }, },
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
#ifdef LPSHIM_TEST_REPLACE
	.replace = true,
#endif
};

static int __init test_lpshim_v3_init(void)
{
	target_funcs[1].immediate = immediate_sleep;
	return lpshim_enable_patch(&patch);
}

static void __exit test_lpshim_v3_exit(void)
{
}

module_init(test_lpshim_v3_init);
module_exit(test_lpshim_v3_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: version 3 of lpshim_target, whose enable can fail");
LPSHIM_PATCH_MODULE();
