// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_klp_static_var - new code that reads and writes a static variable
 *
 * lpshim_klp_target counts the indexes it rejected in its static klp_target_rejected, and
 * "rejected" in its debugfs directory shows the count. With this patch, reading it also resets
 * it: the replacement of the static klp_target_rejected_show() reads the variable and writes
 * it back, through a livepatch relocation to lpshim_klp_target's own variable
 * (lpshim-klp-convert --module lpshim_klp_target, docs/klp-convert.md):
 *
 *	$ insmod lpshim_klp_target.ko; insmod lpshim_example_klp_static_var.ko
 *	$ echo 9 > /sys/kernel/debug/lpshim_klp_target/name
 *	$ cat /sys/kernel/debug/lpshim_klp_target/name
 *	out of range
 *	$ cat /sys/kernel/debug/lpshim_klp_target/rejected
 *	1
 *	$ cat /sys/kernel/debug/lpshim_klp_target/rejected
 *	0
 *
 * The variable is the module's: the patch changes code, and the data keeps its place and its
 * value (a patch that needs new fields uses shadow variables).
 */
#include <linux/module.h>
#include <linux/seq_file.h>

#include <lpshim/lpshim.h>

/* lpshim_klp_target's static variable; the converter finds it in lpshim_klp_target.ko. */
extern unsigned long klp_target_rejected;

static int lpshim_example_klp_rejected_show(struct seq_file *m, void *unused)
{
	/* Not atomic, as the original's counting is not: a rejection that races is lost. */
	unsigned long rejected = READ_ONCE(klp_target_rejected);

	WRITE_ONCE(klp_target_rejected, 0);
	seq_printf(m, "%lu\n", rejected);
	return 0;
}

static struct lpshim_func funcs[] = {
	{
		.old_name = "klp_target_rejected_show",
		.new_func = lpshim_example_klp_rejected_show,
	},
	{ }
};

static struct lpshim_object objs[] = {
	{
		.name = "lpshim_klp_target",
		.funcs = funcs,
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lpshim_example_klp_static_var_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_klp_static_var_exit(void)
{
}

module_init(lpshim_example_klp_static_var_init);
module_exit(lpshim_example_klp_static_var_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: reading 'rejected' of lpshim_klp_target resets it");
LPSHIM_PATCH_MODULE();
