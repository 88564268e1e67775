// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_callbacks_busy - lib/livepatch/test_klp_callbacks_busy.c (6.1), ported to lpshim
 *
 * A plain module whose init starts a work item running busymod_work_func(), the function
 * test_lpshim_callbacks_demo replaces. With block_transition=Y the worker stays inside
 * busymod_work_func() (sleeping 20 ms at a time) until the parameter is cleared or the module
 * unloads, which keeps a patching transition open; otherwise init waits until it is done, so
 * that its lines come before init returns.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/workqueue.h>
#include <linux/delay.h>
#include <linux/completion.h>

/* load/run-time control from sysfs writer  */
static bool block_transition;
module_param(block_transition, bool, 0644);
MODULE_PARM_DESC(block_transition, "block_transition (default=false)");

static void busymod_work_func(struct work_struct *work);
static DECLARE_WORK(work, busymod_work_func);
static DECLARE_COMPLETION(busymod_work_started);

static void busymod_work_func(struct work_struct *work)
{
	pr_info("%s enter\n", __func__);
	complete(&busymod_work_started);

	/* Sleep here, on the stack of the function to patch, until told to leave. */
	while (READ_ONCE(block_transition))
		msleep(20);

	pr_info("%s exit\n", __func__);
}

static int test_lpshim_callbacks_busy_init(void)
{
	pr_info("%s\n", __func__);
	schedule_work(&work);

	/* Wait until busymod_work_func() runs, so that it is on the worker's stack. */
	wait_for_completion(&busymod_work_started);

	/* Not blocking: let it finish, so that its lines come before init returns. */
	if (!block_transition)
		flush_work(&work);

	return 0;
}

static void test_lpshim_callbacks_busy_exit(void)
{
	WRITE_ONCE(block_transition, false);
	flush_work(&work);
	pr_info("%s\n", __func__);
}

module_init(test_lpshim_callbacks_busy_init);
module_exit(test_lpshim_callbacks_busy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: busy target module for the callbacks demo");
