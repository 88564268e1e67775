// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_dsleep: a function that any user can make a task sleep in, uninterruptibly, for
 * the daemon's stall policy (tests/vm/cases/daemon-robustness.sh, issue 17). It stands for an
 * unprivileged user's task parked in a patched function by their own FUSE mount that never
 * answers: a task in D state, which no rung of the remediation ladder moves.
 *
 *   /dev/test_lpshim_dsleep  r (anyone): the read sleeps in test_lpshim_dsleep_wait() until
 *                            released (or the task is killed), then returns 0 bytes
 *                            w (root):   "1" releases every sleeper
 *
 * The wait is killable (TASK_KILLABLE, shown as D): it ends on SIGKILL, so a test can always
 * clean up, and the hung-task detector (which looks at TASK_UNINTERRUPTIBLE alone) says
 * nothing however long it lasts. An open file pins the module (fops.owner).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/wait.h>

static DECLARE_WAIT_QUEUE_HEAD(dsleep_wq);
static atomic_long_t dsleep_gen = ATOMIC_LONG_INIT(0);

int test_lpshim_dsleep_wait(void);

/* The target: keeps its name and its own ftrace call site (as lpshim_target's targets). */
noinline __noclone __noipa int test_lpshim_dsleep_wait(void)
{
	const long gen = atomic_long_read(&dsleep_gen);

	/* Pairs with the wake_up_all() in dsleep_write(). */
	return wait_event_killable(dsleep_wq, atomic_long_read(&dsleep_gen) != gen);
}
EXPORT_SYMBOL_GPL(test_lpshim_dsleep_wait);

static ssize_t dsleep_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
{
	int ret = test_lpshim_dsleep_wait();

	return ret ? ret : 0;
}

static ssize_t dsleep_write(struct file *file, const char __user *buf, size_t count,
			    loff_t *pos)
{
	atomic_long_inc(&dsleep_gen);
	wake_up_all(&dsleep_wq);
	return count;
}

static const struct file_operations dsleep_fops = {
	.owner = THIS_MODULE,
	.read = dsleep_read,
	.write = dsleep_write,
	.llseek = noop_llseek,
};

static struct miscdevice dsleep_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "test_lpshim_dsleep",
	.fops = &dsleep_fops,
	.mode = 0644,
};

static int __init test_lpshim_dsleep_init(void)
{
	return misc_register(&dsleep_dev);
}

static void __exit test_lpshim_dsleep_exit(void)
{
	misc_deregister(&dsleep_dev);
}

module_init(test_lpshim_dsleep_init);
module_exit(test_lpshim_dsleep_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: a function any user can sleep in uninterruptibly");
