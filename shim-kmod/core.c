// SPDX-License-Identifier: GPL-2.0-only
/*
 * core.c - lpshim module lifecycle and the sysfs root
 *
 * sysfs ABI (Documentation in docs/sysfs-abi.md):
 *   /sys/kernel/lpshim/            one directory per patch will live here
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kobject.h>

#include "ksyms.h"

#define LPSHIM_VERSION "0.1.0"

static struct kobject *lpshim_root_kobj;

static int __init lpshim_init(void)
{
	int ret;

	ret = lpshim_ksyms_init();
	if (ret)
		goto out;

	lpshim_root_kobj = kobject_create_and_add("lpshim", kernel_kobj);
	if (!lpshim_root_kobj) {
		pr_err("cannot create /sys/kernel/lpshim\n");
		ret = -ENOMEM;
		goto out;
	}
	pr_info("loaded (version %s)\n", LPSHIM_VERSION);
out:
	return ret;
}

static void __exit lpshim_exit(void)
{
	kobject_put(lpshim_root_kobj);
	pr_info("unloaded\n");
}

module_init(lpshim_init);
module_exit(lpshim_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim: live patching shim for livepatchd");
MODULE_VERSION(LPSHIM_VERSION);
