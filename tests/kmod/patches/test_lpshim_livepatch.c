// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_livepatch - lib/livepatch/test_klp_livepatch.c (6.1), ported to lpshim
 *
 * Replaces vmlinux's cmdline_proc_show(): while the patch is in effect, /proc/cmdline reads
 * "test_lpshim_livepatch: this has been live patched".
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/seq_file.h>
#include <lpshim/lpshim.h>

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s: %s\n", THIS_MODULE->name, "this has been live patched");
	return 0;
}

static struct lpshim_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
	}, { }
};

static struct lpshim_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
	}, { }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int test_lpshim_livepatch_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void test_lpshim_livepatch_exit(void)
{
}

module_init(test_lpshim_livepatch_init);
module_exit(test_lpshim_livepatch_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: livepatch module");
LPSHIM_PATCH_MODULE();
