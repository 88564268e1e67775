// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_klp_compat - a patch module written for upstream livepatch, built for lpshim
 *
 * This source is written against upstream's <linux/livepatch.h>: klp_func, klp_object,
 * klp_patch, klp_enable_patch(), callbacks that take a struct klp_object *, klp_shadow_*().
 * The one line that differs is the include: <lpshim/klp-compat.h> in its place makes every
 * klp_* name the lpshim_* one (docs/writing-patches.md, "Sources written for upstream
 * livepatch").
 *
 * It replaces vmlinux's version_proc_show(), which prints the kernel's linux_proc_banner (not
 * exported: lpshim-klp-convert turns the reference into a livepatch relocation), and adds a
 * second line that counts the reads since the patch was applied, in a shadow variable attached
 * to init_uts_ns:
 *
 *	$ insmod lpshim_example_klp_compat.ko
 *	$ cat /proc/version
 *	Linux version 6.1.0-57-amd64 ...
 *	lpshim_example_klp_compat: read 1 time(s)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/utsname.h>
/* was: #include <linux/livepatch.h> */
#include <lpshim/klp-compat.h>

#define READS_SHADOW_ID 1

static int livepatch_version_proc_show(struct seq_file *m, void *v)
{
	unsigned long *reads = klp_shadow_get(&init_uts_ns, READS_SHADOW_ID);

	seq_printf(m, linux_proc_banner,
		   utsname()->sysname,
		   utsname()->release,
		   utsname()->version);
	if (reads)
		seq_printf(m, "%s: read %lu time(s)\n", THIS_MODULE->name, ++*reads);
	return 0;
}

static int pre_patch_callback(struct klp_object *obj)
{
	pr_info("%s: %s\n", __func__, obj->name ? obj->name : "vmlinux");
	if (!klp_shadow_alloc(&init_uts_ns, READS_SHADOW_ID, sizeof(unsigned long), GFP_KERNEL,
			      NULL, NULL))
		return -ENOMEM;
	return 0;
}

static void post_patch_callback(struct klp_object *obj)
{
	pr_info("%s: %s\n", __func__, obj->name ? obj->name : "vmlinux");
}

static void pre_unpatch_callback(struct klp_object *obj)
{
	pr_info("%s: %s\n", __func__, obj->name ? obj->name : "vmlinux");
}

static void post_unpatch_callback(struct klp_object *obj)
{
	pr_info("%s: %s\n", __func__, obj->name ? obj->name : "vmlinux");
	klp_shadow_free(&init_uts_ns, READS_SHADOW_ID, NULL);
}

static struct klp_func funcs[] = {
	{
		.old_name = "version_proc_show",
		.new_func = livepatch_version_proc_show,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
		.callbacks = {
			.pre_patch = pre_patch_callback,
			.post_patch = post_patch_callback,
			.pre_unpatch = pre_unpatch_callback,
			.post_unpatch = post_unpatch_callback,
		},
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int livepatch_init(void)
{
	return klp_enable_patch(&patch);
}

static void livepatch_exit(void)
{
}

module_init(livepatch_init);
module_exit(livepatch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
