// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_klp_conflict - an UPSTREAM livepatch module (klp_enable_patch, /sys/kernel/livepatch): it
 * patches vmlinux's cmdline_proc_show(), which test_lpshim_livepatch patches too: the two
 * cannot both redirect one function (one IPMODIFY ftrace user per function), so whichever
 * loads second must be refused cleanly (lpshim-coexist.sh). While in effect, /proc/cmdline reads
 * "test_klp_conflict: this has been live patched".
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s: %s\n", THIS_MODULE->name, "this has been live patched");
	return 0;
}

static struct klp_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int test_klp_conflict_init(void)
{
	return klp_enable_patch(&patch);
}

static void test_klp_conflict_exit(void)
{
}

module_init(test_klp_conflict_init);
module_exit(test_klp_conflict_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("lpshim test: upstream livepatch on the function test_lpshim_livepatch patches");
