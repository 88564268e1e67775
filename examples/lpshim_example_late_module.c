// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_late_module - patch a module that is not loaded yet
 *
 * A patch may name a module that is not loaded when the patch is enabled. Its object then
 * waits: the patch is enabled for the objects that are loaded, and when the module loads
 * later, lpshim patches it while it loads, after the module loader sets it up and before its
 * module_init runs. So no code of the module ever runs unpatched, not even its init. Nor is a
 * transition needed: no task can be in the module yet, so every task goes straight to the new
 * functions (unless the patch itself is still in transition; then the module's functions join
 * it). When the module unloads, after its module_exit, lpshim reverts its object and waits
 * for it to load again; the patch itself stays enabled.
 *
 * This example replaces lpshim_target_version() in module lpshim_target with a version that
 * returns "late":
 *
 *	$ insmod lpshim_example_late_module.ko		(lpshim_target not loaded)
 *	$ cat /sys/kernel/lpshim/lpshim_example_late_module/lpshim_target/patched
 *	0
 *	$ insmod lpshim_target.ko
 *	$ dmesg | tail -n 2
 *	lpshim: applying patch 'lpshim_example_late_module' to loading module 'lpshim_target'
 *	lpshim_target: loaded
 *	$ cat /sys/kernel/lpshim/lpshim_example_late_module/lpshim_target/patched
 *	1
 *	$ cat /sys/kernel/debug/lpshim_target/version
 *	late
 *	$ rmmod lpshim_target
 *	$ dmesg | tail -n 2
 *	lpshim_target: unloaded
 *	lpshim: reverting patch 'lpshim_example_late_module' on unloading module 'lpshim_target'
 *
 * Loaded while lpshim_target is already there, it works like lpshim_example_target_v1.
 *
 * This is why a patch module must never use a symbol that the patched module exports: the
 * module loader would refuse to load the patch before the module it patches (an unknown
 * symbol), and while loaded the patch would pin that module. lpshim_target.h is included here
 * for the prototype only.
 */
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/module.h>

#include <lpshim/lpshim.h>

#include "lpshim_target.h"

static const char *lpshim_example_late_module_version(void)
{
	return "late";
}

static_assert(__same_type(&lpshim_example_late_module_version, &lpshim_target_version));

static struct lpshim_func funcs[] = {
	{
		.old_name = "lpshim_target_version",
		.new_func = lpshim_example_late_module_version,
	},
	{ }
};

static struct lpshim_object objs[] = {
	{
		/* The symbol is looked up when lpshim_target loads, not when the patch does. */
		.name = "lpshim_target",
		.funcs = funcs,
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lpshim_example_late_module_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_late_module_exit(void)
{
}

module_init(lpshim_example_late_module_init);
module_exit(lpshim_example_late_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: patch lpshim_target when it loads after the patch");
LPSHIM_PATCH_MODULE();
