// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_klp_target - a module with a bug, for the examples that fix a module's static code
 *
 * Like most drivers, it keeps its logic in static functions and static data, which a patch can
 * reach only through livepatch relocations (lpshim-klp-convert, docs/klp-convert.md):
 *
 *	$ echo 2 > /sys/kernel/debug/lpshim_klp_target/name; cat /sys/kernel/debug/lpshim_klp_target/name
 *	two
 *	$ echo 4 > /sys/kernel/debug/lpshim_klp_target/name; cat /sys/kernel/debug/lpshim_klp_target/name
 *	(past the end)		<- the bug: index 4 passes the bounds check
 *	$ echo 9 > /sys/kernel/debug/lpshim_klp_target/name; cat /sys/kernel/debug/lpshim_klp_target/name
 *	out of range
 *	$ cat /sys/kernel/debug/lpshim_klp_target/rejected
 *	1
 *
 * lpshim_example_klp_module.c fixes klp_target_name(); lpshim_example_klp_static_var.c makes
 * reading "rejected" reset the count.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

static struct dentry *klp_target_dir;

/* klp_target_names[klp_target_limit] is a sentinel that the bounds check should never let out. */
static unsigned int klp_target_limit = 4;
static const char *const klp_target_names[] = { "zero", "one", "two", "three", "(past the end)" };
static unsigned int klp_target_index;
static unsigned long klp_target_rejected;

/*
 * A patch replaces these, or calls them, by name: noinline and __noclone keep each one a
 * function of that name (docs/writing-patches.md, "What cannot be patched").
 */
static noinline __noclone const char *klp_target_reject(unsigned int index)
{
	klp_target_rejected++;
	return "out of range";
}

/* The bug: index == klp_target_limit passes. */
static noinline __noclone const char *klp_target_name(unsigned int index)
{
	if (index > klp_target_limit)
		return klp_target_reject(index);
	return klp_target_names[index];
}

/* Exported: a patch may use it without depending on this module (the converter sees to that). */
unsigned int lpshim_klp_target_limit(void);
noinline __noclone unsigned int lpshim_klp_target_limit(void)
{
	return READ_ONCE(klp_target_limit);
}
EXPORT_SYMBOL_GPL(lpshim_klp_target_limit);

static int name_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "%s\n", klp_target_name(READ_ONCE(klp_target_index)));
	return 0;
}

static int name_open(struct inode *inode, struct file *file)
{
	return single_open(file, name_show, NULL);
}

static ssize_t name_write(struct file *file, const char __user *ubuf, size_t count, loff_t *ppos)
{
	unsigned int index;
	int ret = kstrtouint_from_user(ubuf, count, 10, &index);

	if (ret)
		return ret;
	WRITE_ONCE(klp_target_index, index);
	return count;
}

static const struct file_operations name_fops = {
	.owner = THIS_MODULE,
	.open = name_open,
	.read = seq_read,
	.write = name_write,
	.llseek = seq_lseek,
	.release = single_release,
};

static noinline __noclone int klp_target_rejected_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "%lu\n", klp_target_rejected);
	return 0;
}

static int rejected_open(struct inode *inode, struct file *file)
{
	return single_open(file, klp_target_rejected_show, NULL);
}

static const struct file_operations rejected_fops = {
	.owner = THIS_MODULE,
	.open = rejected_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
};

static int __init lpshim_klp_target_init(void)
{
	klp_target_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	if (IS_ERR(klp_target_dir)) {
		pr_err("cannot create debugfs directory " KBUILD_MODNAME " (%ld)\n",
		       PTR_ERR(klp_target_dir));
		return PTR_ERR(klp_target_dir);
	}
	debugfs_create_file("name", 0600, klp_target_dir, NULL, &name_fops);
	debugfs_create_file("rejected", 0400, klp_target_dir, NULL, &rejected_fops);
	pr_info("loaded\n");
	return 0;
}

static void __exit lpshim_klp_target_exit(void)
{
	debugfs_remove_recursive(klp_target_dir);
	pr_info("unloaded\n");
}

module_init(lpshim_klp_target_init);
module_exit(lpshim_klp_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: a module whose static code the klp examples fix");
