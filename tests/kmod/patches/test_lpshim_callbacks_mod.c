// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_callbacks_mod - lib/livepatch/test_klp_callbacks_mod.c (6.1), ported to lpshim
 *
 * A plain module that test_lpshim_callbacks_demo names as a patch object: it only logs its
 * init and exit, so that the callback lines can be placed around them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>

static int test_lpshim_callbacks_mod_init(void)
{
	pr_info("%s\n", __func__);
	return 0;
}

static void test_lpshim_callbacks_mod_exit(void)
{
	pr_info("%s\n", __func__);
}

module_init(test_lpshim_callbacks_mod_init);
module_exit(test_lpshim_callbacks_mod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: target module for the callbacks demo");
