/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lpshim_target - functions for live patches to replace, for tests and benchmarks.
 *
 * Patch modules (lpshim ones and upstream livepatch ones) include this header to replace the
 * functions below in object "lpshim_target". A replacement that must behave like the original
 * (sleep until released, park until unparked) uses the inline helpers here, so that it sleeps
 * inside its own body exactly as the original does. docs/test-target.md is the user manual.
 */
#ifndef LPSHIM_TARGET_H
#define LPSHIM_TARGET_H

#include <linux/atomic.h>
#include <linux/compiler.h>
#include <linux/cpu.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/types.h>
#include <linux/wait.h>

/* Tokens of the two-stage protocol; 0 means "stage 1 has not run". */
#define LPSHIM_TARGET_TOKEN_NONE	0UL
#define LPSHIM_TARGET_TOKEN_V1		0x4c505631UL	/* "LPV1" */
#define LPSHIM_TARGET_TOKEN_V2		0x4c505632UL	/* "LPV2" */

/**
 * struct lpshim_target_call - state of one two-stage call of the consistency checker
 * @token: written by lpshim_target_stage1(), checked by lpshim_target_stage2()
 */
struct lpshim_target_call {
	unsigned long token;
};

/**
 * struct lpshim_target_waits - wait state shared by the originals and their replacements
 * @sleep_wq: tasks in lpshim_target_sleep() wait here
 * @sleep_gen: release generation; each write of 1 to debugfs sleep_release bumps it
 * @sleepers: number of tasks inside lpshim_target_wait_released()
 * @park_wq: the park kthread waits here, inside and outside lpshim_target_kthread_park()
 * @park_requested: set and cleared by writes to debugfs kthread_park
 * @park_inside: true while the park kthread is inside lpshim_target_park_wait()
 * @idle_requested: set and cleared by writes to debugfs idle_inject
 * @idle_version: which version of lpshim_target_idle_inject() the idle kthread is inside:
 *		0 outside, 1 the original, a replacement's own number otherwise
 *
 * Lock-free: writers store a flag or bump the generation, then wake_up() the queue; the
 * wake_up() and the set_current_state() inside wait_event*() order the store against the
 * sleeper's check of the condition.
 */
struct lpshim_target_waits {
	wait_queue_head_t sleep_wq;
	atomic_long_t sleep_gen;
	atomic_t sleepers;
	wait_queue_head_t park_wq;
	bool park_requested;
	bool park_inside;
	bool idle_requested;
	int idle_version;
};

extern struct lpshim_target_waits lpshim_target_waits;

/**
 * lpshim_target_wait_released() - sleep interruptibly until the next release
 *
 * Inline so that the sleep happens in the body of the function that calls it: the original
 * lpshim_target_sleep() and its replacements. Counted in debugfs "sleepers" meanwhile.
 *
 * Return: 0 when released, -ERESTARTSYS when a signal interrupted the sleep.
 */
static inline int lpshim_target_wait_released(void)
{
	struct lpshim_target_waits *w = &lpshim_target_waits;
	long gen = atomic_long_read(&w->sleep_gen);
	int ret;

	atomic_inc(&w->sleepers);
	ret = wait_event_interruptible(w->sleep_wq, atomic_long_read(&w->sleep_gen) != gen);
	atomic_dec(&w->sleepers);
	return ret;
}

/**
 * lpshim_target_park_wait() - keep the park kthread here until it is unparked or stopped
 *
 * Inline so that the sleep happens in the body of the function that calls it: the original
 * lpshim_target_kthread_park() and its replacements; call it from the park kthread only.
 * Spurious wake-ups (a live-patch "kick") sleep again; only kthread_park=0 or
 * kthread_stop() leave.
 */
static inline void lpshim_target_park_wait(void)
{
	struct lpshim_target_waits *w = &lpshim_target_waits;

	WRITE_ONCE(w->park_inside, true);
	wait_event_interruptible(w->park_wq,
				 !READ_ONCE(w->park_requested) || kthread_should_stop());
	WRITE_ONCE(w->park_inside, false);
}

/**
 * lpshim_target_idle_loop() - inject idle until debugfs idle_inject is set to 0
 * @version: the number of the version of lpshim_target_idle_inject() that calls it (1: the
 *	     original), recorded while it injects so that the probe timer can check interrupts
 *
 * Inline so that the idle injection happens in the body of the function that calls it: the
 * original lpshim_target_idle_inject() and its replacements; call it from the idle kthread only
 * (play_idle_precise() wants a SCHED_FIFO kthread bound to one CPU). Each round is 10 ms of
 * play_idle_precise(), during which the kthread runs the idle loop with PF_IDLE set, as
 * idle-injection drivers (powerclamp, idle_inject) do, then 3-4 ms asleep. Without the sleep
 * the kthread used up the RT budget (sched_rt_runtime_us) and was throttled in the middle of a
 * round; the round's timer then set TIF_NEED_RESCHED on whatever task ran instead
 * (idle_inject_timer_fn() assumes current is the injecting task) without the per-CPU
 * preempt flag, and that task, a cat in exit_mmap() here, looped in zap_pte_range() without
 * being preempted for minutes (a soft lockup, docs/testing.md).
 */
static inline void lpshim_target_idle_loop(int version)
{
	struct lpshim_target_waits *w = &lpshim_target_waits;

	WRITE_ONCE(w->idle_version, version);
	while (READ_ONCE(w->idle_requested) && !kthread_should_stop()) {
		play_idle_precise(10 * NSEC_PER_MSEC, U64_MAX);
		usleep_range(3000, 4000);
	}
	WRITE_ONCE(w->idle_version, 0);
}

/**
 * lpshim_target_version() - the version tag shown by debugfs "version"
 *
 * Return: "original" in the original.
 */
const char *lpshim_target_version(void);

/**
 * lpshim_target_sleep() - sleep interruptibly until debugfs "sleep_release" is written
 *
 * Called by read() of /dev/lpshim_target_sleep; sleeps in its own body.
 *
 * Return: 0 when released, -ERESTARTSYS on a signal (SIGSTOP/SIGCONT restarts the read).
 */
int lpshim_target_sleep(void);

/**
 * lpshim_target_sleep_tag() - version tag of a completed sleep read
 *
 * Called by the same read() after lpshim_target_sleep() returned, so it shows the version
 * in force for the reading task when it woke.
 *
 * Return: "original" in the original.
 */
const char *lpshim_target_sleep_tag(void);

/**
 * lpshim_target_kthread_park() - where kthread "lpshim_tgt_park" sleeps while parked
 *
 * Returns when debugfs "kthread_park" is set to 0 or the kthread is stopped.
 */
void lpshim_target_kthread_park(void);

/**
 * lpshim_target_idle_inject() - where kthread "lpshim_tgt_idle" injects idle
 *
 * Calls lpshim_target_idle_loop(1): returns when debugfs "idle_inject" is set to 0 or the
 * kthread is stopped.
 */
void lpshim_target_idle_inject(void);

/**
 * lpshim_target_busy_step() - a tiny unit of work of the busy kthread; never yields
 */
void lpshim_target_busy_step(void);

/**
 * lpshim_target_busy_work() - a tiny unit of work with a cond_resched() in the middle
 *
 * The busy kthread gives up its CPU only here, so this function is on its stack whenever
 * it is not running.
 */
void lpshim_target_busy_work(void);

/**
 * lpshim_target_bench_fn() - the benchmark's call target
 * @i: loop index
 *
 * Return: @i in the original; a replacement returns @i plus its own version offset.
 */
unsigned long lpshim_target_bench_fn(unsigned long i);

/**
 * lpshim_target_bench_twin() - bench_fn's twin, which nothing patches: the benchmark's baseline
 * @i: loop index
 *
 * Return: @i.
 */
unsigned long lpshim_target_bench_twin(unsigned long i);

/**
 * lpshim_target_stage1() - first stage of a checked call
 * @c: the call
 *
 * The original writes %LPSHIM_TARGET_TOKEN_V1 into @c->token.
 */
void lpshim_target_stage1(struct lpshim_target_call *c);

/**
 * lpshim_target_stage2() - second stage of a checked call
 * @c: the call
 *
 * Return: 0 in the original when @c->token is %LPSHIM_TARGET_TOKEN_V1, else -EPROTO.
 */
int lpshim_target_stage2(struct lpshim_target_call *c);

/**
 * lpshim_target_check_call() - one checked call: stage 1, a short sleep, stage 2
 * @c: the call, token %LPSHIM_TARGET_TOKEN_NONE on entry
 *
 * This function holds the call's state across the sleep (usleep_range(50, 100)), so a
 * patch that changes the token protocol must replace it too, even with the same body: then
 * no task can switch versions between the two stages. A patch that leaves it out is the
 * checker's negative control (it may count mixed calls).
 *
 * Return: the result of lpshim_target_stage2().
 */
int lpshim_target_check_call(struct lpshim_target_call *c);

#endif /* LPSHIM_TARGET_H */
