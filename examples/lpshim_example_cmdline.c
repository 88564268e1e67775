// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_cmdline - the smallest useful lpshim patch module
 *
 * Replaces vmlinux's cmdline_proc_show(), the function behind /proc/cmdline, the way upstream's
 * samples/livepatch/livepatch-sample.c does:
 *
 *	$ insmod lpshim_example_cmdline.ko
 *	$ cat /proc/cmdline
 *	lpshim_example_cmdline: this has been live patched
 *
 * Revert it (the patch leaves /sys/kernel/lpshim once the unpatching transition completes):
 *
 *	$ echo 0 > /sys/kernel/lpshim/lpshim_example_cmdline/enabled
 *	$ rmmod lpshim_example_cmdline
 *
 * Copy this file to start a patch of your own; docs/writing-patches.md explains the rest.
 */
#include <linux/module.h>
#include <linux/seq_file.h>

#include <lpshim/lpshim.h>

/*
 * The replacement has exactly the prototype of the original, static int
 * cmdline_proc_show(struct seq_file *m, void *v) in fs/proc/cmdline.c. It may have any name:
 * lpshim finds the original by .old_name below, not by this function's name.
 */
static int lpshim_example_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s\n", KBUILD_MODNAME ": this has been live patched");
	return 0;
}

static struct lpshim_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = lpshim_example_cmdline_proc_show,
	},
	{ }	/* the array ends with an all-zero entry */
};

static struct lpshim_object objs[] = {
	{
		/* .name = NULL: the function is in vmlinux, not in a module */
		.funcs = funcs,
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

/* Loading the module is what applies the patch: a failure here fails the insmod. */
static int __init lpshim_example_cmdline_init(void)
{
	return lpshim_enable_patch(&patch);
}

/*
 * Nothing to do: lpshim lets the module go only after the patch was disabled and every task
 * left the replacement, so no code of this module can be running by then.
 */
static void __exit lpshim_example_cmdline_exit(void)
{
}

module_init(lpshim_example_cmdline_init);
module_exit(lpshim_example_cmdline_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: live patch /proc/cmdline");
LPSHIM_PATCH_MODULE();
