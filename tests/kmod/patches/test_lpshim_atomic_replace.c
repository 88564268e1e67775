// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_atomic_replace - lib/livepatch/test_klp_atomic_replace.c (6.1), ported to lpshim
 *
 * Replaces vmlinux's meminfo_proc_show(): while the patch is in effect, /proc/meminfo reads
 * only "test_lpshim_atomic_replace: this has been live patched" (as upstream's does). The
 * parameter replace (read when the module loads) makes it an atomic-replace patch.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/seq_file.h>
#include <lpshim/lpshim.h>

static int replace;
module_param(replace, int, 0644);
MODULE_PARM_DESC(replace, "replace (default=0)");

static int livepatch_meminfo_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s: %s\n", THIS_MODULE->name, "this has been live patched");
	return 0;
}

static struct lpshim_func funcs[] = {
	{
		.old_name = "meminfo_proc_show",
		.new_func = livepatch_meminfo_proc_show,
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
	/* set by module parameter */
	.replace = false,
};

static int test_lpshim_atomic_replace_init(void)
{
	patch.replace = replace;
	return lpshim_enable_patch(&patch);
}

static void test_lpshim_atomic_replace_exit(void)
{
}

module_init(test_lpshim_atomic_replace_init);
module_exit(test_lpshim_atomic_replace_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: atomic replace");
LPSHIM_PATCH_MODULE();
