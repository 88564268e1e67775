// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_target_v1 - patch a function of a module, first of two stacked patches
 *
 * Replaces lpshim_target_version() in module lpshim_target (tests/kmod, docs/test-target.md)
 * with a version that returns "v1". lpshim_example_target_v2 patches the same function again;
 * loaded one after the other, the patches stack and the newest one wins:
 *
 *	$ insmod lpshim_target.ko
 *	$ cat /sys/kernel/debug/lpshim_target/version
 *	original
 *	$ insmod lpshim_example_target_v1.ko
 *	$ cat /sys/kernel/debug/lpshim_target/version
 *	v1
 *	$ insmod lpshim_example_target_v2.ko
 *	$ cat /sys/kernel/debug/lpshim_target/version
 *	v2
 *	$ echo 0 > /sys/kernel/lpshim/lpshim_example_target_v2/enabled
 *	$ cat /sys/kernel/debug/lpshim_target/version		(v1 is in force again)
 *	v1
 *
 * lpshim_target.h is included for the prototype only. This module must not use anything that
 * lpshim_target exports (a symbol, or the inline helpers of the header, which use one): that
 * would make this module depend on lpshim_target, pin it in memory while this patch is loaded,
 * and need lpshim_target's Module.symvers to build. A patch reaches the patched module through
 * lpshim alone, by the object's name.
 */
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/module.h>

#include <lpshim/lpshim.h>

#include "lpshim_target.h"

/*
 * The string may live in this module: lpshim_target copies it at once with preemption
 * disabled, and the module loader frees a module's memory only after an RCU grace period.
 */
static const char *lpshim_example_target_v1_version(void)
{
	return "v1";
}

/*
 * The replacement must have the prototype of the original. __same_type() only looks at the
 * type of lpshim_target_version, so this check does not reference the symbol.
 */
static_assert(__same_type(&lpshim_example_target_v1_version, &lpshim_target_version));

static struct lpshim_func funcs[] = {
	{
		.old_name = "lpshim_target_version",
		.new_func = lpshim_example_target_v1_version,
	},
	{ }
};

static struct lpshim_object objs[] = {
	{
		/*
		 * A module's name, as lsmod shows it. If lpshim_target is not loaded yet, the
		 * patch waits for it and applies while it loads (lpshim_example_late_module.c).
		 */
		.name = "lpshim_target",
		.funcs = funcs,
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lpshim_example_target_v1_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_target_v1_exit(void)
{
}

module_init(lpshim_example_target_v1_init);
module_exit(lpshim_example_target_v1_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: lpshim_target_version() returns \"v1\"");
LPSHIM_PATCH_MODULE();
