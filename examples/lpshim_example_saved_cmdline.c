// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_saved_cmdline - a replacement that uses data the kernel does not export
 *
 * Replaces vmlinux's cmdline_proc_show() with one that prints what the original prints, the
 * kernel's saved_command_line, and a mark. saved_command_line is declared in <linux/init.h>
 * but not exported: the module loader cannot link it, and lpshim-klp-convert turns the
 * reference into a livepatch relocation (".klp.sym.vmlinux.saved_command_line,0") that the
 * kernel resolves when this module loads (docs/klp-convert.md). Upstream livepatch's
 * relocation samples use the same symbol.
 *
 *	$ insmod lpshim_example_saved_cmdline.ko
 *	$ cat /proc/cmdline
 *	BOOT_IMAGE=/vmlinuz-6.1.0-57-amd64 root=... (live patched)
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/seq_file.h>

#include <lpshim/lpshim.h>

static int lpshim_example_saved_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_puts(m, saved_command_line);
	seq_puts(m, " (live patched)\n");
	return 0;
}

static struct lpshim_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = lpshim_example_saved_cmdline_proc_show,
	},
	{ }
};

static struct lpshim_object objs[] = {
	{
		/* .name = NULL: vmlinux */
		.funcs = funcs,
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lpshim_example_saved_cmdline_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_saved_cmdline_exit(void)
{
}

module_init(lpshim_example_saved_cmdline_init);
module_exit(lpshim_example_saved_cmdline_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: /proc/cmdline from the non-exported saved_command_line");
LPSHIM_PATCH_MODULE();
