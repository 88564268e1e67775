/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * debug.h - what the debug build of lpshim.ko (-DLPSHIM_DEBUG) adds: test hooks that make races
 * deterministic, and invariant checks that WARN. The production build compiles every hook to
 * nothing; its handler is the same code without them.
 *
 * The hooks are module parameters, all off by default, each one-shot unless it says otherwise
 * (docs/testing.md, "The debug build"):
 *
 *   test_delay_after_top=FUNC:MS	the next handler call of FUNC that finds a function in
 *					transition on top of its func_stack busy-waits MS ms
 *					between reading the top and reading its mark
 *   test_sleep_after_choice=FUNC:MS[:TGID]
 *					the next handler call of FUNC from a sleepable context
 *					(by process TGID, if given) sleeps MS ms after it chose
 *					where the call goes, before the call gets there (a task
 *					preempted in the ftrace trampoline)
 *   test_table_delay_ms=MS		the next transition sleeps MS ms while it sets up its
 *					table of task states, between publishing it and
 *					recording the tasks in it
 *   test_pass_delay_ms=MS		the next pass of a transition sleeps MS ms before it
 *					walks the tasks, holding lpshim_mutex as a pass over
 *					many tasks on a slow machine does
 *   test_fail_task_alloc=TGID		the next task that process TGID creates gets no entry,
 *					as if none could be allocated
 *   test_switch_work_delay_ms=MS	the next return-to-user switch attempt sleeps MS ms
 *					once its task took it off its queue
 *   test_free_delay_ms=MS		the next patch freed sleeps MS ms before its sysfs entry
 *					goes (listed, disabled, no longer in transition) and MS
 *					ms again before it lets go of its module (no longer
 *					listed, its module still in use); the second sleep
 *					disarms it (patches freed meanwhile sleep the first)
 *   test_fail_exit_record=TGID	the next task of process TGID that exits gets no exit
 *					record, as if none could be allocated
 *   test_fail_switch_work=TGID	the next return-to-user switch attempt queued for a task
 *					of process TGID cannot be allocated
 *   test_ibt_sealed=NAME		at load, the helper NAME reads as sealed against
 *					indirect calls by IBT (ksyms.c), as on a CPU that
 *					enforces IBT; given to insmod, not one-shot
 *
 * The invariant checks: a function in transition reached by a task whose state the table does
 * not know; a completed transition that left a task in the other state; a patch module freed
 * while a task's stack holds its code.
 */
#ifndef _LPSHIM_DEBUG_H
#define _LPSHIM_DEBUG_H

#include <linux/types.h>

struct lpshim_func;
struct lpshim_patch;
struct task_struct;

#ifdef LPSHIM_DEBUG

void lpshim_debug_delay_after_top(struct lpshim_func *func);
bool lpshim_debug_sleep_after_choice(unsigned long ip);
void lpshim_debug_table_delay(void);
void lpshim_debug_pass_delay(void);
bool lpshim_debug_fail_task_alloc(struct task_struct *creator);
void lpshim_debug_switch_work_delay(void);
void lpshim_debug_free_delay(bool released);
bool lpshim_debug_fail_exit_record(struct task_struct *task);
bool lpshim_debug_fail_switch_work(struct task_struct *task);
bool lpshim_debug_ibt_sealed(const char *name);

void lpshim_debug_check_module_unused(struct lpshim_patch *patch);

#define LPSHIM_DEBUG_WARN_ON_ONCE(cond) WARN_ON_ONCE(cond)

#else /* !LPSHIM_DEBUG */

static __always_inline void lpshim_debug_delay_after_top(struct lpshim_func *func) { }
static __always_inline bool lpshim_debug_sleep_after_choice(unsigned long ip)
{
	return false;
}
static inline void lpshim_debug_table_delay(void) { }
static inline void lpshim_debug_pass_delay(void) { }
static inline bool lpshim_debug_fail_task_alloc(struct task_struct *creator) { return false; }
static inline void lpshim_debug_switch_work_delay(void) { }
static inline void lpshim_debug_free_delay(bool released) { }
static inline bool lpshim_debug_fail_exit_record(struct task_struct *task) { return false; }
static inline bool lpshim_debug_fail_switch_work(struct task_struct *task) { return false; }
static inline bool lpshim_debug_ibt_sealed(const char *name) { return false; }
static inline void lpshim_debug_check_module_unused(struct lpshim_patch *patch) { }

#define LPSHIM_DEBUG_WARN_ON_ONCE(cond) ((void)0)

#endif /* LPSHIM_DEBUG */

#endif /* _LPSHIM_DEBUG_H */
