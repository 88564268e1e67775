// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_dsleep_patch: a patch of test_lpshim_dsleep_wait(), whose transition a task
 * asleep in the original keeps open for as long as it sleeps (tests/vm/cases/
 * daemon-robustness.sh). The new version does not sleep: the patch's behaviour is not what
 * the test looks at.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <lpshim/lpshim.h>

static int v2_dsleep_wait(void)
{
	return 0;
}

static struct lpshim_func funcs[] = {
	{ .old_name = "test_lpshim_dsleep_wait", .new_func = v2_dsleep_wait, },
	{ }
};

static struct lpshim_object objs[] = {
	{ .name = "test_lpshim_dsleep", .funcs = funcs, },
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_lpshim_dsleep_patch_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit test_lpshim_dsleep_patch_exit(void)
{
}

module_init(test_lpshim_dsleep_patch_init);
module_exit(test_lpshim_dsleep_patch_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: a patch of test_lpshim_dsleep_wait");
LPSHIM_PATCH_MODULE();
