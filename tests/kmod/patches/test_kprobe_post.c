// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_kprobe_post - a kprobe on vmlinux's cmdline_proc_show(), as upstream's
 * tools/testing/selftests/livepatch/test_modules/test_klp_kprobe.c (2024)
 *
 * cmdline_proc_show() starts with its ftrace call, so the kprobe is armed through ftrace; with a
 * post_handler (the default) kprobes arms it with an IPMODIFY ftrace_ops, which makes it a
 * second user wanting to redirect the function: lpshim must refuse to patch it (EBUSY).
 * Without one (has_post_handler=0) the kprobe uses plain ftrace ops and lpshim must patch the
 * function as usual. The handlers do nothing: the probe only has to be there.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>

static bool has_post_handler = true;
module_param(has_post_handler, bool, 0444);
MODULE_PARM_DESC(has_post_handler, "register the kprobe with a post_handler (default=true)");

static int pre_handler(struct kprobe *p, struct pt_regs *regs)
{
	return 0;
}

static void post_handler(struct kprobe *p, struct pt_regs *regs, unsigned long flags)
{
}

static struct kprobe kp = {
	.symbol_name = "cmdline_proc_show",
	.pre_handler = pre_handler,
};

static int test_kprobe_post_init(void)
{
	if (has_post_handler)
		kp.post_handler = post_handler;
	return register_kprobe(&kp);
}

static void test_kprobe_post_exit(void)
{
	unregister_kprobe(&kp);
}

module_init(test_kprobe_post_init);
module_exit(test_kprobe_post_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: a kprobe on cmdline_proc_show, with or without a post_handler");
