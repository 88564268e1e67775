// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_cumulative - a cumulative patch that replaces every patch before it
 *
 * With .replace = true (atomic replace), enabling this patch also takes every patch enabled
 * before it out of force, in the same transition: functions that this patch replaces run its
 * versions, functions that only the older patches replaced run their originals again. It
 * replaces two functions of module lpshim_target:
 *
 *	lpshim_target_version()		returns "cumulative"
 *	lpshim_target_bench_fn(i)	returns i + 1 (the original returns i; the debugfs
 *					"bench" file then shows version_delta=<calls>)
 *
 *	$ insmod lpshim_example_target_v1.ko; insmod lpshim_example_target_v2.ko
 *	$ cat /sys/kernel/debug/lpshim_target/version
 *	v2
 *	$ insmod lpshim_example_cumulative.ko
 *	$ cat /sys/kernel/debug/lpshim_target/version
 *	cumulative
 *	$ ls /sys/kernel/lpshim
 *	lpshim_example_cumulative
 *
 * The replaced patches leave /sys/kernel/lpshim without a message and without running their
 * callbacks (only this patch's callbacks run); their modules stay loaded, unused, and can be
 * removed with rmmod directly. Disabling this patch later returns every function to its
 * original, not to v2: a cumulative patch carries every fix that should stay in force.
 *
 * lpshim_target.h is included for the prototypes only; see lpshim_example_target_v1.c for why
 * nothing that lpshim_target exports may be used here.
 */
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/module.h>

#include <lpshim/lpshim.h>

#include "lpshim_target.h"

static const char *lpshim_example_cumulative_version(void)
{
	return "cumulative";
}

static unsigned long lpshim_example_cumulative_bench_fn(unsigned long i)
{
	return i + 1;	/* lpshim replacements of bench_fn add 1 (docs/test-target.md) */
}

static_assert(__same_type(&lpshim_example_cumulative_version, &lpshim_target_version));
static_assert(__same_type(&lpshim_example_cumulative_bench_fn, &lpshim_target_bench_fn));

static struct lpshim_func funcs[] = {
	{
		.old_name = "lpshim_target_version",
		.new_func = lpshim_example_cumulative_version,
	},
	{
		.old_name = "lpshim_target_bench_fn",
		.new_func = lpshim_example_cumulative_bench_fn,
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
	.replace = true,
};

static int __init lpshim_example_cumulative_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_cumulative_exit(void)
{
}

module_init(lpshim_example_cumulative_init);
module_exit(lpshim_example_cumulative_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: a cumulative (atomic replace) patch of lpshim_target");
LPSHIM_PATCH_MODULE();
