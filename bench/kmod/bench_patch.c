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

/* lpshim's API mirrors upstream's: one set of tables serves both builds. */
#ifdef BENCH_KLP
#include <linux/livepatch.h>
#define BENCH_VERSION_DELTA 2
#define bench_func klp_func
#define bench_object klp_object
#define bench_patch klp_patch
#define bench_enable_patch klp_enable_patch
#else
#include <lpshim/lpshim.h>
#define BENCH_VERSION_DELTA 1
#define bench_func lpshim_func
#define bench_object lpshim_object
#define bench_patch lpshim_patch
#define bench_enable_patch lpshim_enable_patch
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

static struct bench_func funcs[] = {
	{ .old_name = "lpshim_target_bench_fn", .new_func = bench_fn, },
	{ .old_name = "lpshim_target_sleep", .new_func = bench_sleep, },
	{ }
};

static struct bench_object objs[] = {
	{ .name = "lpshim_target", .funcs = funcs, },
	{ }
};

static struct bench_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init bench_patch_init(void)
{
	return bench_enable_patch(&patch);
}

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
