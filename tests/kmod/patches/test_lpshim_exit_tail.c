// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_exit_tail - replaces proc_exit_connector(), which do_exit() calls after
 * exit_notify(): after release_task() took an exiting thread off the task list. Its replacement
 * sends no proc connector event (nothing listens in the test guest). For the exiting-task
 * cases of tests/vm/cases/lpshim-task-tracking.sh.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/sched.h>
#include <lpshim/lpshim.h>

static void exit_tail_proc_exit_connector(struct task_struct *task)
{
}

static struct lpshim_func funcs[] = {
	{ .old_name = "proc_exit_connector", .new_func = exit_tail_proc_exit_connector, },
	{ }
};

static struct lpshim_object objs[] = {
	{ .name = NULL, .funcs = funcs, },
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_lpshim_exit_tail_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit test_lpshim_exit_tail_exit(void)
{
}

module_init(test_lpshim_exit_tail_init);
module_exit(test_lpshim_exit_tail_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: a patch of a function of do_exit()'s tail");
LPSHIM_PATCH_MODULE();
