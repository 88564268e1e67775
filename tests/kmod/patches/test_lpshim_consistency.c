// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_consistency - version 2 of lpshim_target's functions, for the per-task
 * consistency model's tests (tests/vm/cases/lpshim-consistency.sh)
 *
 * Replaces the functions a task can sleep in (the sleep device, the parked kthread), the busy
 * kthread's step (not its work: the kthread yields outside the patch, so it can switch), and the
 * consistency checker's stage1, stage2 and the call that holds them together. Built a second
 * time with -DLPSHIM_TEST_IMMEDIATE as test_lpshim_consistency_immediate: the same patch
 * without the consistency model, the checker's negative control.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/delay.h>
#include <lpshim/lpshim.h>

#include "lpshim_target.h"

static const char *v2_version(void)
{
	return "v2";
}

static int v2_sleep(void)
{
	return lpshim_target_wait_released();
}

static const char *v2_sleep_tag(void)
{
	return "v2";
}

static void v2_kthread_park(void)
{
	lpshim_target_park_wait();
}

static void v2_idle_inject(void)
{
	lpshim_target_idle_loop(2);
}

static void v2_busy_step(void)
{
	cpu_relax();
}

static void v2_stage1(struct lpshim_target_call *c)
{
	c->token = LPSHIM_TARGET_TOKEN_V2;
}

static int v2_stage2(struct lpshim_target_call *c)
{
	return c->token == LPSHIM_TARGET_TOKEN_V2 ? 0 : -EPROTO;
}

/* The same body as the original: a version that calls this patch's stages. */
static int v2_check_call(struct lpshim_target_call *c)
{
	int ret;

	lpshim_target_stage1(c);
	usleep_range(50, 100);
	ret = lpshim_target_stage2(c);
	return ret;
}

static struct lpshim_func funcs[] = {
	{ .old_name = "lpshim_target_version", .new_func = v2_version, },
	{ .old_name = "lpshim_target_sleep", .new_func = v2_sleep, },
	{ .old_name = "lpshim_target_sleep_tag", .new_func = v2_sleep_tag, },
	{ .old_name = "lpshim_target_kthread_park", .new_func = v2_kthread_park, },
	{ .old_name = "lpshim_target_idle_inject", .new_func = v2_idle_inject, },
	{ .old_name = "lpshim_target_busy_step", .new_func = v2_busy_step, },
	{ .old_name = "lpshim_target_stage1", .new_func = v2_stage1, },
	{ .old_name = "lpshim_target_stage2", .new_func = v2_stage2, },
	{ .old_name = "lpshim_target_check_call", .new_func = v2_check_call, },
	{ }
};

static struct lpshim_object objs[] = {
	{ .name = "lpshim_target", .funcs = funcs, },
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
#ifdef LPSHIM_TEST_IMMEDIATE
	.immediate = true,
#endif
};

static int __init test_lpshim_consistency_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit test_lpshim_consistency_exit(void)
{
}

module_init(test_lpshim_consistency_init);
module_exit(test_lpshim_consistency_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: version 2 of lpshim_target for the consistency model");
LPSHIM_PATCH_MODULE();
