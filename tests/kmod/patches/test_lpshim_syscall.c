// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_syscall - patches the getpid syscall, for "getpid patched while CPU-bound
 * processes hammer it" (upstream's test-syscall.sh, on lpshim): the hammering tasks never sleep
 * in the kernel, so only the return-to-user switch point can move them.
 *
 * The parameter "calls" counts the calls of the patched version.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/sched.h>
#include <linux/ptrace.h>
#include <lpshim/lpshim.h>

static atomic_long_t patched_calls = ATOMIC_LONG_INIT(0);

static int calls_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&patched_calls));
}

static const struct kernel_param_ops calls_ops = { .get = calls_get };
module_param_cb(calls, &calls_ops, NULL, 0444);
MODULE_PARM_DESC(calls, "calls of the patched getpid");

static long lpshim_sys_getpid(const struct pt_regs *regs)
{
	atomic_long_inc(&patched_calls);
	return task_tgid_vnr(current);
}

static struct lpshim_func funcs[] = {
	{ .old_name = "__x64_sys_getpid", .new_func = lpshim_sys_getpid, },
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

static int __init test_lpshim_syscall_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit test_lpshim_syscall_exit(void)
{
}

module_init(test_lpshim_syscall_init);
module_exit(test_lpshim_syscall_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: the getpid syscall, patched");
LPSHIM_PATCH_MODULE();
