// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_target_v2 - patch a function of a module, second of two stacked patches
 *
 * Replaces lpshim_target_version() in module lpshim_target with a version that returns "v2".
 * Loaded after lpshim_example_target_v1, it stacks on top of it: v2 is in force while both are
 * enabled, and disabling v2 brings v1 back (see lpshim_example_target_v1.c for a session).
 *
 * To replace the whole stack with one patch instead, set .replace = true in the newer patch
 * (lpshim_example_cumulative.c).
 *
 * lpshim_target.h is included for the prototype only; see lpshim_example_target_v1.c for why
 * nothing that lpshim_target exports may be used here.
 */
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/module.h>

#include <lpshim/lpshim.h>

#include "lpshim_target.h"

static const char *lpshim_example_target_v2_version(void)
{
	return "v2";
}

static_assert(__same_type(&lpshim_example_target_v2_version, &lpshim_target_version));

static struct lpshim_func funcs[] = {
	{
		.old_name = "lpshim_target_version",
		.new_func = lpshim_example_target_v2_version,
	},
	{ }
};

static struct lpshim_object objs[] = {
	{
		.name = "lpshim_target",
		.funcs = funcs,
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lpshim_example_target_v2_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_target_v2_exit(void)
{
}

module_init(lpshim_example_target_v2_init);
module_exit(lpshim_example_target_v2_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: lpshim_target_version() returns \"v2\", stacked on v1");
LPSHIM_PATCH_MODULE();
