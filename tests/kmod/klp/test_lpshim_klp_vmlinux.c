// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_klp_vmlinux - a patch with one livepatch relocation against vmlinux, the original
 * of the damaged copies that klp-refusals.sh loads (meson.build makes them with klp-mangle):
 * /proc/cmdline shows the non-exported saved_command_line and this module's name.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/seq_file.h>

#include <lpshim/lpshim.h>

static int test_lpshim_klp_vmlinux_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s %s\n", saved_command_line, THIS_MODULE->name);
	return 0;
}

static struct lpshim_func funcs[] = {
	{ .old_name = "cmdline_proc_show", .new_func = test_lpshim_klp_vmlinux_show, },
	{ }
};

static struct lpshim_object objs[] = {
	{ .funcs = funcs, },
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_lpshim_klp_vmlinux_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit test_lpshim_klp_vmlinux_exit(void)
{
}

module_init(test_lpshim_klp_vmlinux_init);
module_exit(test_lpshim_klp_vmlinux_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: a livepatch relocation against vmlinux");
LPSHIM_PATCH_MODULE();
