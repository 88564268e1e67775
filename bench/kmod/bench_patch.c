// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_patch - the benchmarks' patch of lpshim_target, built twice from this one source so that
 * lpshim and upstream livepatch run identical replacement code (bench/meson.build):
 *
 *   bench_lpshim  an lpshim patch module
 *   bench_klp     an upstream livepatch module (-DBENCH_KLP)
 *
 * It replaces lpshim_target_bench_fn (the call whose cost is measured; lpshim's version returns
 * i + 1, upstream's i + 2, the convention of docs/test-target.md, so a benchmark can tell which
 * ran) and lpshim_target_sleep (a task asleep in it holds the transition open).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#ifdef BENCH_KLP
#include <linux/livepatch.h>
#define BENCH_VERSION_DELTA 2
#else
#include <lpshim/lpshim.h>
#define BENCH_VERSION_DELTA 1
#endif

#include "lpshim_target.h"

static noinline unsigned long bench_fn(unsigned long i)
{
	return i + BENCH_VERSION_DELTA;
}

static int bench_sleep(void)
{
	return lpshim_target_wait_released();
}

#ifdef BENCH_KLP
static struct klp_func funcs[] = {
	{ .old_name = "lpshim_target_bench_fn", .new_func = bench_fn, },
	{ .old_name = "lpshim_target_sleep", .new_func = bench_sleep, },
	{ }
};

static struct klp_object objs[] = {
	{ .name = "lpshim_target", .funcs = funcs, },
	{ }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init bench_patch_init(void)
{
	return klp_enable_patch(&patch);
}
#else
static struct lpshim_func funcs[] = {
	{ .old_name = "lpshim_target_bench_fn", .new_func = bench_fn, },
	{ .old_name = "lpshim_target_sleep", .new_func = bench_sleep, },
	{ }
};

static struct lpshim_object objs[] = {
	{ .name = "lpshim_target", .funcs = funcs, },
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init bench_patch_init(void)
{
	return lpshim_enable_patch(&patch);
}
#endif

static void __exit bench_patch_exit(void)
{
}

module_init(bench_patch_init);
module_exit(bench_patch_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("livepatchd benchmarks: lpshim_target's bench_fn and sleep, replaced");
#ifdef BENCH_KLP
MODULE_INFO(livepatch, "Y");
#else
LPSHIM_PATCH_MODULE();
#endif
