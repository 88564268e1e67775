// SPDX-License-Identifier: GPL-2.0-only
/*
 * transition.c - the per-task consistency model (docs/consistency-model.md)
 *
 * During a transition every task runs either all the old code of the patch or all the new:
 * the ftrace handler chooses by the calling task's state (task_state.h). A task switches to the
 * target state only when no function the transition changes is on its stack, and no call is on
 * its way into one (it called a function's ftrace location and has not arrived), at one of
 * these switch points:
 *
 *  - stack: the transition work checks the reliable stack of each task that is not running
 *    (inside task_call_func(), which pins it), retried on a short period that backs off;
 *  - user-return: a pending user task checks its own stack on its way back to user mode
 *    (a task_work queued for pending tasks only: no slow path for other syscalls);
 *  - sched: a pending task that schedules out checks its own stack (sched_switch), so a
 *    kernel thread that sleeps or calls cond_resched() outside the patch switches;
 *  - idle: a CPU's idle task checks its own stack when it schedules out (a no-op work queued
 *    on its CPU makes it); an offline CPU's idle task runs nothing and switches at once;
 *  - creation: a new task starts in its creator's state (task_state.c).
 *
 * The transition completes when a pass finds every task in the target state: every task on
 * the task list, every exiting task that release_task() took off it but that still runs, and
 * every task without an entry (an orphan, in the table's orphan state). A pass walks the tasks
 * under RCU, giving up the CPU when another task waits for it, and switches what it can. That
 * walk sees every task that was on the list all along it, but may miss one created behind it:
 * such a task got an entry in its creator's state, which the table counts, or was lost (no
 * entry could be had), which the table counts too. So when the walk found every task recorded
 * and switched, no creation was lost since it began, and no entry is counted in the other
 * state, every task is in the target state; the orphan state is then set to the target in the
 * same section of the table's lock, which creations take to read their creator's state
 * (lpshim_task_table_settle()). After a lost creation, or when the walk lost its place three
 * times, a walk under tasklist_lock decides, as upstream's does: no task can be created during
 * it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/task_work.h>
#include <linux/tracepoint.h>
#include <linux/workqueue.h>

#include "core.h"
#include "debug.h"
#include "ksyms.h"
#include "patch.h"
#include "task_state.h"
#include "transition.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

static unsigned int transition_retry_ms = 10;
module_param(transition_retry_ms, uint, 0644);
MODULE_PARM_DESC(transition_retry_ms,
		 "first retry period of a transition in ms (default 10); doubles every 5 attempts, up to 1 s");

struct lpshim_patch *lpshim_transition_patch;
int lpshim_target_state = LPSHIM_UNDEFINED;

/* Attempts of the transition in progress, and when it started. lpshim_mutex. */
static unsigned int lpshim_attempts;
static u64 lpshim_transition_start_ns;

static void lpshim_transition_work_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(lpshim_transition_work, lpshim_transition_work_fn);
/*
 * The workqueue of the transition work: an unbound one, so that the scheduler may run a pass on
 * an idle CPU. A pass's walk under tasklist_lock (after a lost creation) has preemption off
 * for all of it outside PREEMPT_RT; on a per-CPU worker it would take the CPU its timer fired
 * on, from whatever ran there (often livepatchd's event loop, which the pass's tracepoints had
 * just woken), while another CPU sat idle. Nothing in a pass depends on its CPU.
 */
#define lpshim_transition_wq system_unbound_wq

const char *lpshim_state_name(int state)
{
	return state == LPSHIM_PATCHED ? "patching" : "unpatching";
}

/* --- what the stack check looks for -------------------------------------------------------- */

struct lpshim_range {
	unsigned long start, end;
	struct lpshim_func *func;
};

/**
 * struct lpshim_ranges - the code a task in the non-target state may be running
 * @target:	the state the ranges are for
 * @nr:		number of ranges
 * @rcu:	freed after readers (switch points, RCU-sched) are done
 * @r:		sorted by start, not overlapping
 *
 * Patching: the implementation each function of the patch replaces (the previous patch's, or
 * the original). Unpatching: the patch's own. Both: the return address of each function's
 * ftrace call, where a task waits that the handler already sent somewhere, preempted in the
 * ftrace trampoline before it got there. A task with a return address in one of them cannot
 * switch yet.
 */
struct lpshim_ranges {
	int target;
	unsigned int nr;
	struct rcu_head rcu;
	struct lpshim_range r[];
};

/* Published with rcu_assign_pointer() under lpshim_mutex; NULL outside a transition. */
static struct lpshim_ranges __rcu *lpshim_ranges;

#define LPSHIM_MAX_STACK_ENTRIES 100
/* One stack buffer per CPU, used with interrupts disabled only. */
static DEFINE_PER_CPU(unsigned long[LPSHIM_MAX_STACK_ENTRIES], lpshim_stack_entries);

static int lpshim_cmp_range(const void *a, const void *b)
{
	const struct lpshim_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void lpshim_add_range(struct lpshim_ranges *ranges, unsigned long start,
			     unsigned long size, struct lpshim_func *func)
{
	ranges->r[ranges->nr++] = (struct lpshim_range){ start, start + size, func };
}

static void lpshim_update_ranges(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;
	struct lpshim_ranges *ranges, *old;
	struct lpshim_object *obj;
	struct lpshim_func *func;
	unsigned int nr = 0;
	unsigned long addr, size, ret_addr;

	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			nr++;
	ranges = kvzalloc(struct_size(ranges, r, 2 * nr), GFP_KERNEL | __GFP_NOFAIL);
	ranges->target = lpshim_target_state;
	lpshim_for_each_object(patch, obj) {
		if (!obj->patched)
			continue;
		lpshim_for_each_func(obj, func) {
			if (!lpshim_func_in_transition(func))
				continue;
			if (ranges->target == LPSHIM_PATCHED) {
				lpshim_func_prev_impl(func, &addr, &size);
			} else {
				addr = (unsigned long)func->new_func;
				size = func->new_size;
			}
			lpshim_add_range(ranges, addr, size, func);
			/* Unless the range just added covers it (the original is the one checked). */
			ret_addr = func->ip + MCOUNT_INSN_SIZE;
			if (ret_addr < addr || ret_addr >= addr + size)
				lpshim_add_range(ranges, ret_addr, 1, func);
		}
	}
	sort(ranges->r, ranges->nr, sizeof(ranges->r[0]), lpshim_cmp_range, NULL);

	old = rcu_replace_pointer(lpshim_ranges, ranges, lockdep_is_held(&lpshim_mutex));
	if (old)
		kvfree_rcu(old, rcu);
}

static void lpshim_free_ranges(void)
{
	struct lpshim_ranges *old;

	old = rcu_replace_pointer(lpshim_ranges, NULL, lockdep_is_held(&lpshim_mutex));
	if (old)
		kvfree_rcu(old, rcu);
}

static struct lpshim_func *lpshim_range_hit(struct lpshim_ranges *ranges, unsigned long addr)
{
	unsigned int lo = 0, hi = ranges->nr, mid;

	/*
	 * The last range starting at or below addr. Ranges do not overlap: those of distinct
	 * functions cannot, and a ftrace return address is added only outside its own range.
	 */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ranges->r[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && addr < ranges->r[lo - 1].end)
		return ranges->r[lo - 1].func;
	return NULL;
}

/*
 * Check the stack of @task (pinned, or current) against @ranges. Interrupts disabled (the
 * per-CPU buffer). Return 0 when clean, or the reason, with the function found in *@hit.
 */
static int lpshim_check_stack(struct task_struct *task, struct lpshim_ranges *ranges,
			      struct lpshim_func **hit)
{
	unsigned long *entries = *this_cpu_ptr(&lpshim_stack_entries);
	int nr, i;

	nr = lpshim_ksyms.stack_trace_save_tsk_reliable(task, entries, LPSHIM_MAX_STACK_ENTRIES);
	if (nr < 0)
		return LPSHIM_BLOCK_UNRELIABLE_STACK;
	for (i = 0; i < nr; i++) {
		*hit = lpshim_range_hit(ranges, entries[i]);
		if (*hit)
			return LPSHIM_BLOCK_SLEEPING_IN_FUNC;
	}
	return LPSHIM_BLOCK_NONE;
}

/* --- switching one task ------------------------------------------------------------------- */

/*
 * Where the state of @task lives: its entry, or its CPU's idle state. An orphan in @target
 * needs no entry: the orphan state itself is returned, which callers never write, as it is
 * @target already. Another orphan gets an entry from the table's pool first; NULL when there
 * is none left (it stays pending), or when @task is dead: one from the exiting list that its
 * free probe took out of the table meanwhile runs nothing, and must not be recorded again.
 */
static int *lpshim_state_slot(struct lpshim_task_table *table, struct task_struct *task,
			      int target, struct lpshim_task **entry)
{
	*entry = NULL;
	if (lpshim_is_cpu_idle_task(task))
		return per_cpu_ptr(&lpshim_idle_state, task_cpu(task));
	*entry = lpshim_task_lookup(table, task);
	if (*entry)
		return &(*entry)->state;
	if (READ_ONCE(table->orphan_state) == target)
		return &table->orphan_state;
	if (READ_ONCE(task->__state) & TASK_DEAD)
		return NULL;
	*entry = lpshim_task_table_adopt(table, task);
	return *entry ? &(*entry)->state : NULL;
}

static void lpshim_note_blocked(struct task_struct *task, struct lpshim_task *entry, int reason,
				struct lpshim_func *hit)
{
	unsigned long func = hit ? hit->old_func : 0;

	if (entry) {
		WRITE_ONCE(entry->reason, reason);
		WRITE_ONCE(entry->blocked_func, func);
	}
	trace_lpshim_task_blocked(task->pid, reason, func, lpshim_attempts);
}

/*
 * Try to switch @task, which is current or pinned by task_call_func(), with interrupts
 * disabled. It stays pending when it is an orphan the pool has no entry for.
 */
static void lpshim_switch_task_locked(struct task_struct *task, int how)
{
	struct lpshim_task_table *table = rcu_dereference_sched(lpshim_tasks);
	struct lpshim_ranges *ranges = rcu_dereference_sched(lpshim_ranges);
	struct lpshim_func *hit = NULL;
	struct lpshim_task *entry;
	int *state, reason;

	if (!table || !ranges)
		return;
	state = lpshim_state_slot(table, task, ranges->target, &entry);
	/* The orphan state is the table's to set (settle, force), never a switch point's. */
	if (!state || READ_ONCE(*state) == ranges->target || state == &table->orphan_state)
		return;
	if (task != current && lpshim_ksyms.task_curr(task)) {
		reason = LPSHIM_BLOCK_RUNNING;
	} else {
		reason = lpshim_check_stack(task, ranges, &hit);
		if (!reason) {
			/*
			 * The task's next run sees this: it is pinned (the scheduler's locks order
			 * it before the task runs again) or it is current.
			 */
			if (entry)
				lpshim_task_set_state(table, entry, ranges->target);
			else	/* a CPU's idle task */
				WRITE_ONCE(*state, ranges->target);
			trace_lpshim_task_switch(task->pid, ranges->target, how);
			return;
		}
	}
	lpshim_note_blocked(task, entry, reason, hit);
}

static int lpshim_switch_pinned(struct task_struct *task, void *arg)
{
	lpshim_switch_task_locked(task, LPSHIM_SWITCH_STACK);
	return 0;
}

/* A switch point in the context of the current task. */
static void lpshim_switch_current(int how)
{
	unsigned long flags;

	local_irq_save(flags);
	lpshim_switch_task_locked(current, how);
	local_irq_restore(flags);
}

/* --- user-return switch point: a task_work for pending user tasks --------------------------- */

/**
 * struct lpshim_switch_work - a switch attempt queued on a task's return to user mode
 * @cb:		the task_work
 * @task:	the task (referenced until the work runs or is cancelled)
 * @node:	entry in lpshim_works
 *
 * Each holds a reference on lpshim: a work that its task took off its queue cannot be
 * cancelled, and may wait behind the task's other works for as long as they take; lpshim's
 * unload is then refused ("in use"), never made to wait for it.
 */
struct lpshim_switch_work {
	struct callback_head cb;
	struct task_struct *task;
	struct list_head node;
};

/* Queued works, so that they can be cancelled when the transition ends. */
static LIST_HEAD(lpshim_works);
static DEFINE_SPINLOCK(lpshim_works_lock);

static void lpshim_free_switch_work(struct lpshim_switch_work *work)
{
	put_task_struct(work->task);
	kfree(work);
	/*
	 * The last thing lpshim's code does for this work; returning from here is covered by
	 * lpshim_transition_exit()'s synchronize_rcu_tasks().
	 */
	module_put(THIS_MODULE);
}

static void lpshim_switch_work_fn(struct callback_head *cb)
{
	struct lpshim_switch_work *work = container_of(cb, struct lpshim_switch_work, cb);
	struct lpshim_task_table *table;
	struct lpshim_task *entry;
	unsigned long flags;

	lpshim_debug_switch_work_delay();
	spin_lock_irqsave(&lpshim_works_lock, flags);
	list_del(&work->node);
	spin_unlock_irqrestore(&lpshim_works_lock, flags);

	local_irq_save(flags);
	table = rcu_dereference_sched(lpshim_tasks);
	entry = table ? lpshim_task_lookup(table, current) : NULL;
	if (entry)
		WRITE_ONCE(entry->work_queued, false);
	lpshim_switch_task_locked(current, LPSHIM_SWITCH_USER_RETURN);
	local_irq_restore(flags);

	lpshim_free_switch_work(work);
}

/*
 * Queue a switch attempt for @task's return to user mode. TWA_SIGNAL also wakes it from an
 * interruptible sleep (the "fake signal": the syscall restarts transparently after the switch).
 */
static bool lpshim_queue_switch_work(struct task_struct *task, enum task_work_notify_mode mode)
{
	struct lpshim_switch_work *work;
	unsigned long flags;

	if (!try_module_get(THIS_MODULE))
		return false;	/* unloading: no transition can be in progress */
	work = lpshim_debug_fail_switch_work(task) ? NULL :
	       kzalloc(sizeof(*work), GFP_ATOMIC | __GFP_NOWARN);
	if (!work) {
		module_put(THIS_MODULE);
		return false;	/* the next attempt tries again */
	}
	init_task_work(&work->cb, lpshim_switch_work_fn);
	work->task = get_task_struct(task);
	spin_lock_irqsave(&lpshim_works_lock, flags);
	list_add(&work->node, &lpshim_works);
	spin_unlock_irqrestore(&lpshim_works_lock, flags);
	if (task_work_add(task, &work->cb, mode)) {
		/* exiting: it will not return to user mode */
		spin_lock_irqsave(&lpshim_works_lock, flags);
		list_del(&work->node);
		spin_unlock_irqrestore(&lpshim_works_lock, flags);
		lpshim_free_switch_work(work);
		return false;
	}
	return true;
}

/*
 * What task_work_add(TWA_SIGNAL) does to notify: the task leaves an interruptible sleep, its
 * syscall restarts transparently, and it runs its task works on the way to user mode.
 */
static void lpshim_notify_signal(struct task_struct *task)
{
	if (!test_and_set_tsk_thread_flag(task, TIF_NOTIFY_SIGNAL) &&
	    !lpshim_ksyms.wake_up_state(task, TASK_INTERRUPTIBLE))
		kick_process(task);
}

static bool lpshim_match_work(struct callback_head *cb, void *data)
{
	return cb == data;
}

/*
 * Cancel the works still queued. One its task has already taken off its queue is about to run:
 * it finds no transition (or checks against the next one, which is as safe) and frees itself.
 * Never wait for it here: its task may need this CPU to run it.
 */
static void lpshim_cancel_switch_works(void)
{
	struct lpshim_switch_work *work, *tmp;
	unsigned long flags;
	LIST_HEAD(cancelled);

	spin_lock_irqsave(&lpshim_works_lock, flags);
	list_for_each_entry_safe(work, tmp, &lpshim_works, node)
		if (lpshim_ksyms.task_work_cancel_match(work->task, lpshim_match_work, &work->cb))
			list_move(&work->node, &cancelled);
	spin_unlock_irqrestore(&lpshim_works_lock, flags);

	list_for_each_entry_safe(work, tmp, &cancelled, node)
		lpshim_free_switch_work(work);
}

/* --- sched and idle switch points ---------------------------------------------------------- */

/*
 * prev is current, about to schedule out: its stack is as still as it gets. For a CPU's idle
 * task this is its idle-loop switch point.
 */
static void lpshim_sched_switch_probe(void *data, bool preempt, struct task_struct *prev,
				      struct task_struct *next, unsigned int prev_state)
{
	lpshim_switch_task_locked(prev, lpshim_is_cpu_idle_task(prev) ? LPSHIM_SWITCH_IDLE :
									 LPSHIM_SWITCH_SCHED);
}

/*
 * An idle CPU's idle task is running, so the transition cannot check it; a no-op work queued on
 * that CPU makes it schedule out, and it checks itself at the sched switch point. (A cpu_idle
 * probe would rewrite the idle path's code at every transition: a CPU halted in it resumed
 * into a half-patched instruction on 6.12 under TCG.)
 */
static DEFINE_PER_CPU(struct work_struct, lpshim_idle_work);
/* Idle works a pass queued that have not seen their CPU switch yet. */
static atomic_t lpshim_idle_works_pending = ATOMIC_INIT(0);

static void lpshim_idle_work_fn(struct work_struct *work)
{
	/*
	 * Scheduling this work took the idle task through its switch point. If it switched,
	 * and it was the last idle CPU the pass waited for, try to complete now rather than at
	 * the next retry: an idle CPU is what the first pass of almost every transition still
	 * waits for. Only the last one does: one pass per idle CPU would walk every task that
	 * many times in a row on a large machine. (If it could not switch, the next retry queues
	 * this work again; kicking then would spin.) The work runs on the CPU it was queued on,
	 * unless that CPU went offline, and a pass switches an offline CPU's idle task anyway.
	 */
	if (READ_ONCE(lpshim_target_state) != LPSHIM_UNDEFINED &&
	    this_cpu_read(lpshim_idle_state) == READ_ONCE(lpshim_target_state) &&
	    atomic_dec_and_test(&lpshim_idle_works_pending))
		mod_delayed_work(lpshim_transition_wq, &lpshim_transition_work, 0);
}

/*
 * The sched probe stays registered while lpshim is loaded (see lpshim_task_state_init() for
 * why not per transition); outside a transition it returns after one pointer check.
 */

/* --- the transition ------------------------------------------------------------------------ */

/*
 * Try to switch @task from the transition work. Return whether it is in the target state.
 * A pending user task gets a switch attempt queued for its return to user mode.
 */
static bool lpshim_try_switch_task(struct lpshim_task_table *table, struct task_struct *task)
{
	struct lpshim_task *entry;
	int *state;

	state = lpshim_state_slot(table, task, lpshim_target_state, &entry);
	if (!state)
		return false;		/* an orphan the pool had no entry for: next pass */
	if (READ_ONCE(*state) == lpshim_target_state)
		return true;
	if (task == current)
		lpshim_switch_current(LPSHIM_SWITCH_STACK);
	else
		lpshim_ksyms.task_call_func(task, lpshim_switch_pinned, NULL);
	if (READ_ONCE(*state) == lpshim_target_state)
		return true;

	/*
	 * The flag before the work: the work may run, and clear it, before queueing returns. One
	 * that could not be queued clears it again, so that the next pass (or a kick) tries again.
	 */
	if (entry && !(task->flags & PF_KTHREAD) && !entry->work_queued) {
		WRITE_ONCE(entry->work_queued, true);
		if (!lpshim_queue_switch_work(task, TWA_RESUME))
			WRITE_ONCE(entry->work_queued, false);
	}
	return false;
}

/* Exiting tasks checked per pass; more wait for the next one. */
#define LPSHIM_EXITING_BATCH 64

/*
 * Tasks that release_task() took off the task list run on to the end of do_exit(): they are
 * on the table's exiting list until they are freed. Return how many are not switched.
 */
static unsigned int lpshim_switch_exiting_tasks(struct lpshim_task_table *table)
{
	struct task_struct *tasks[LPSHIM_EXITING_BATCH];
	unsigned int n, i, pending = 0;

	n = lpshim_task_table_exiting(table, lpshim_target_state, tasks, ARRAY_SIZE(tasks));
	for (i = 0; i < n; i++) {
		pending += !lpshim_try_switch_task(table, tasks[i]);
		put_task_struct(tasks[i]);
	}
	if (n == ARRAY_SIZE(tasks))
		pending++;	/* there may be more */
	return pending;
}

/* Tasks a walk under RCU visits at most between two of its breaks (below). */
#define LPSHIM_WALK_BATCH 1024
/* Walks under RCU a pass makes, each losing its place, before it walks under tasklist_lock. */
#define LPSHIM_WALK_TRIES 3

/*
 * Whether the last pass ended for a writer waiting for lpshim_mutex: the next one does not, so
 * that writers as frequent as a pass is long (livepatchd's kicks, every 500 ms) cannot keep
 * every pass from reaching the end of the task list. lpshim_mutex.
 */
static bool lpshim_pass_ended_for_writer;

/*
 * Walks of the whole task list under tasklist_lock, preemption off, that passes made to
 * conclude, since lpshim was loaded (debugfs "stats"). lpshim_mutex.
 */
static unsigned long lpshim_tasklist_walks;

/*
 * Give up the CPU in the middle of an RCU walk of the task list that stands on thread @t of
 * @g, after @visited tasks, if another task waits for it, and every LPSHIM_WALK_BATCH tasks
 * in any case (under full preemption the walk is preempted without ever seeing need_resched(),
 * and one read side would span all of it, holding up grace periods). Return 0 when the walk
 * can go on from there, -EAGAIN when it cannot (@t or @g left the list meanwhile, or an exec
 * made another thread @g's leader: their links may lead to tasks freed since), -EINTR when a
 * writer waits for lpshim_mutex.
 */
static int lpshim_walk_break(struct task_struct *g, struct task_struct *t, unsigned int visited)
{
	bool can_go_on;

	if (atomic_read(&lpshim_mutex_writers) && !lpshim_pass_ended_for_writer)
		return -EINTR;
	if (!need_resched() && visited % LPSHIM_WALK_BATCH)
		return 0;
	get_task_struct(g);
	get_task_struct(t);
	rcu_read_unlock();
	cond_resched();
	rcu_read_lock();
	/*
	 * Under tasklist_lock, which __unhash_process() and de_thread() hold to take a task off
	 * the list or to put another leader in @g's place: what they did before is seen, and what
	 * they do after frees nothing before this RCU read side ends.
	 */
	read_lock(lpshim_ksyms.tasklist_lock);
	can_go_on = pid_alive(g) && pid_alive(t) && g->group_leader == g;
	read_unlock(lpshim_ksyms.tasklist_lock);
	put_task_struct(t);
	put_task_struct(g);
	return can_go_on ? 0 : -EAGAIN;
}

/*
 * A pass's first walk: try to switch every task, under RCU, giving up the CPU whenever another
 * task waits for it. With tens of thousands of pending tasks a walk takes hundreds of
 * milliseconds under emulation: under tasklist_lock it kept its CPU from all that was queued
 * there, livepatchd's event loop included. It may miss a task created behind it: that all are
 * switched, the table's counts conclude (lpshim_task_table_settle()). Return how many it found
 * pending (when it lost its place after finding some, too), or lpshim_walk_break()'s error when
 * it stopped early.
 */
static int lpshim_switch_tasks_preemptible(struct lpshim_task_table *table)
{
	struct task_struct *g, *t;
	unsigned int visited = 0;
	int pending = 0, err;

	rcu_read_lock();
	for_each_process_thread(g, t) {
		pending += !lpshim_try_switch_task(table, t);
		err = lpshim_walk_break(g, t, ++visited);
		if (err) {
			/* Lost its place after finding tasks pending: no pass can complete. */
			if (err == -EINTR || !pending)
				pending = err;
			goto out;
		}
	}
out:
	rcu_read_unlock();
	return pending;
}

static unsigned int lpshim_switch_tasks(void)
{
	struct lpshim_task_table *table = rcu_dereference_protected(lpshim_tasks, 1);
	struct task_struct *g, *t;
	unsigned int pending = 0, idle_pending = 0;
	bool recorded = true;
	unsigned long lost;
	int cpu, left, orphan_state, tries;

	lpshim_task_table_refill(table);

	/*
	 * Tasks still pending: this pass cannot complete the transition, and has done what the
	 * locked walk below would have. A writer waiting for lpshim_mutex: the pass ends for it,
	 * and the next one starts over (and does not end for a writer). None: the walk saw every
	 * task that was on the list all along it recorded and switched, and the table's counts
	 * decide (lpshim_task_table_settle()), unless a task created meanwhile got no entry; then,
	 * or when the walk lost its place LPSHIM_WALK_TRIES times, the locked walk decides. That
	 * walk holds tasklist_lock, preemption off, for a lookup per task: 150 ms for 30,000 tasks
	 * under TCG.
	 */
	for (tries = 1; ; tries++) {
		lost = lpshim_task_table_lost(table);
		orphan_state = READ_ONCE(table->orphan_state);
		left = lpshim_switch_tasks_preemptible(table);
		/*
		 * Lost its place (the task it stood on was released during a break) before it found
		 * any pending: walk again from the start, so that threads exiting in numbers do not
		 * cost the locked walk. A few times, and not while a writer waits for lpshim_mutex
		 * (the kick of a stalled transition does): the locked walk is then shorter.
		 */
		if (left != -EAGAIN || tries == LPSHIM_WALK_TRIES ||
		    atomic_read(&lpshim_mutex_writers))
			break;
	}
	lpshim_pass_ended_for_writer = left == -EINTR;
	if (left == -EINTR)
		return 1;
	if (left > 0) {
		pending = left + lpshim_switch_exiting_tasks(table);
		goto idle_tasks;
	}
	if (!left) {
		pending = lpshim_switch_exiting_tasks(table);
		if (pending)
			goto idle_tasks;
		switch (lpshim_task_table_settle(table, lpshim_target_state, lost)) {
		case 0:
			/* In the target, an orphan passes for switched without an entry. */
			if (orphan_state != lpshim_target_state)
				WRITE_ONCE(table->all_recorded, true);
			goto idle_tasks;
		case -EAGAIN:
			pending = 1;
			goto idle_tasks;
		}
	}

	/* Under tasklist_lock no task can be created: none is missed by this walk. */
	lpshim_tasklist_walks++;
	read_lock(lpshim_ksyms.tasklist_lock);
	for_each_process_thread(g, t) {
		pending += !lpshim_try_switch_task(table, t);
		recorded &= !!lpshim_task_lookup(table, t);
	}
	pending += lpshim_switch_exiting_tasks(table);
	/*
	 * Every task is switched: a task created from now on without an entry must be in the
	 * target state too. Under tasklist_lock, before any is.
	 */
	if (!pending && !lpshim_task_table_settle_orphans(table, lpshim_target_state))
		pending++;	/* an exiting orphan may run in the orphan state: wait */
	read_unlock(lpshim_ksyms.tasklist_lock);
	if (recorded)
		WRITE_ONCE(table->all_recorded, true);

idle_tasks:
	cpus_read_lock();
	for_each_possible_cpu(cpu) {
		int *state = per_cpu_ptr(&lpshim_idle_state, cpu);

		if (READ_ONCE(*state) == lpshim_target_state)
			continue;
		if (!cpu_online(cpu)) {
			/* An offline CPU runs nothing: its idle task can switch. */
			WRITE_ONCE(*state, lpshim_target_state);
			continue;
		}
		if (!lpshim_try_switch_task(table, lpshim_ksyms.idle_task(cpu)))
			idle_pending++;
	}
	/* Idle now: make each schedule out, through its switch point. */
	atomic_set(&lpshim_idle_works_pending, idle_pending);
	for_each_online_cpu(cpu)
		if (READ_ONCE(per_cpu(lpshim_idle_state, cpu)) != lpshim_target_state)
			schedule_work_on(cpu, per_cpu_ptr(&lpshim_idle_work, cpu));
	cpus_read_unlock();
	return pending + idle_pending;
}

/*
 * Retry soon at first (what a first pass still waits for is most often a task running on
 * another CPU, which is gone from it milliseconds later), then back off to upstream's period
 * of 1 s: a pass walks every task.
 */
static void lpshim_schedule_retry(void)
{
	/* A writable parameter: bounded so that the shift cannot overflow. */
	unsigned int first = clamp(READ_ONCE(transition_retry_ms), 1U, 60000U);
	unsigned int ms = min(first << min(lpshim_attempts / 5, 7U), max(first, 1000U));

	queue_delayed_work(lpshim_transition_wq, &lpshim_transition_work, msecs_to_jiffies(ms));
}

int lpshim_init_transition(struct lpshim_patch *patch, int state)
{
	struct lpshim_object *obj;
	struct lpshim_func *func;
	int ret;

	lockdep_assert_held(&lpshim_mutex);
	if (WARN_ON_ONCE(lpshim_target_state != LPSHIM_UNDEFINED))
		return -EBUSY;

	lpshim_transition_patch = patch;
	WRITE_ONCE(lpshim_target_state, state);
	lpshim_attempts = 0;
	lpshim_transition_start_ns = ktime_get_ns();

	if (!patch->immediate) {
		ret = lpshim_task_table_create(state);
		if (ret) {
			lpshim_transition_patch = NULL;
			WRITE_ONCE(lpshim_target_state, LPSHIM_UNDEFINED);
			return ret;
		}
	}

	/*
	 * Task states (the table) before the functions' marks. Pairs with the second smp_rmb()
	 * in lpshim_ftrace_handler().
	 */
	smp_wmb();

	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			if (!lpshim_func_immediate(patch, func))
				lpshim_func_set_transition(func, true);
	return 0;
}

void lpshim_start_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;

	lockdep_assert_held(&lpshim_mutex);
	pr_notice("'%s': starting %s transition\n", patch->mod->name,
		  lpshim_state_name(lpshim_target_state));
	if (rcu_access_pointer(lpshim_tasks))
		lpshim_update_ranges();
	trace_lpshim_transition_start(patch->mod->name, lpshim_target_state, 0);
}

static void lpshim_end_transition_tracking(void)
{
	if (!rcu_access_pointer(lpshim_tasks))
		return;
	lpshim_cancel_switch_works();
	lpshim_task_table_destroy();
	lpshim_free_ranges();
}

#ifdef LPSHIM_DEBUG
/* The debug build's check at completion: every task, exiting or not, and orphan, switched. */
static void lpshim_debug_check_complete(void)
{
	struct lpshim_task_table *table = rcu_dereference_protected(lpshim_tasks, 1);
	struct task_struct *exiting[1];
	struct task_struct *g, *t;
	int cpu;

	if (!table)
		return;
	read_lock(lpshim_ksyms.tasklist_lock);
	for_each_process_thread(g, t) {
		if (lpshim_task_patch_state(table, t) != lpshim_target_state) {
			pr_err("debug: task %d (%s) is not in the target state at completion\n",
			       t->pid, t->comm);
			WARN_ON_ONCE(1);
			break;
		}
	}
	read_unlock(lpshim_ksyms.tasklist_lock);
	if (lpshim_task_table_exiting(table, lpshim_target_state, exiting, 1)) {
		pr_err("debug: exiting task %d (%s) is not in the target state at completion\n",
		       exiting[0]->pid, exiting[0]->comm);
		put_task_struct(exiting[0]);
		WARN_ON_ONCE(1);
	}
	WARN_ON_ONCE(READ_ONCE(table->orphan_state) != lpshim_target_state);
	for_each_possible_cpu(cpu)
		WARN_ON_ONCE(per_cpu(lpshim_idle_state, cpu) != lpshim_target_state);
}
#else
static inline void lpshim_debug_check_complete(void) { }
#endif

static void lpshim_complete_transition(unsigned int forced_tasks)
{
	struct lpshim_patch *patch = lpshim_transition_patch;
	struct lpshim_object *obj;
	struct lpshim_func *func;
	int state = lpshim_target_state;

	lpshim_debug_check_complete();
	if (patch->replace && state == LPSHIM_PATCHED) {
		lpshim_discard_replaced_patches(patch);
		lpshim_discard_nops(patch);
	}
	if (state == LPSHIM_UNPATCHED) {
		lpshim_unpatch_objects(patch);
		/*
		 * A handler that read one of these functions off the top of its func_stack just
		 * before it left must not see its mark cleared: it would take the function for
		 * a settled one and run the patch being removed in a task that already runs the
		 * version below. No barrier orders a load that happened before the pop; wait for
		 * those handlers to return, as upstream's klp_complete_transition() does.
		 */
		lpshim_synchronize();
	}

	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			lpshim_func_set_transition(func, false);
	/* No handler may still act on a mark it read before it was cleared. */
	lpshim_synchronize();
	lpshim_end_transition_tracking();

	cancel_delayed_work(&lpshim_transition_work);
	trace_lpshim_transition_end(patch->mod->name, state, forced_tasks,
				    ktime_get_ns() - lpshim_transition_start_ns);
	WRITE_ONCE(lpshim_target_state, LPSHIM_UNDEFINED);
	lpshim_transition_patch = NULL;

	if (state == LPSHIM_PATCHED)
		lpshim_post_patch_callbacks(patch);
	else
		lpshim_post_unpatch_callbacks(patch);
	pr_notice("'%s': %s complete\n", patch->mod->name, lpshim_state_name(state));

	if (state == LPSHIM_UNPATCHED)
		lpshim_free_patch_async(patch);
}

/* A pass: complete the transition, or retry later. lpshim_mutex held. */
static void lpshim_try_complete_transition(void)
{
	lockdep_assert_held(&lpshim_mutex);
	if (WARN_ON_ONCE(!lpshim_transition_patch))
		return;

	if (rcu_access_pointer(lpshim_tasks)) {
		lpshim_debug_pass_delay();
		if (lpshim_switch_tasks()) {
			lpshim_attempts++;
			lpshim_schedule_retry();
			return;
		}
	}
	lpshim_complete_transition(0);
}

static void lpshim_transition_work_fn(struct work_struct *work)
{
	mutex_lock(&lpshim_mutex);
	if (lpshim_transition_patch)
		lpshim_try_complete_transition();
	mutex_unlock(&lpshim_mutex);
}

/*
 * Queue a started (or reversed) transition's first pass for the transition work. Upstream runs
 * it in the write that started the transition; here the write returns once the transition has
 * started: a pass walks every task, seconds with tens of thousands of them on a slow machine,
 * and the writer (finit_module() of a patch, a write to enabled: a service's event loop) would
 * wait that long. A transition without a task table (an immediate patch) has nothing to walk
 * and completes at once.
 */
void lpshim_queue_first_pass(void)
{
	lockdep_assert_held(&lpshim_mutex);
	if (rcu_access_pointer(lpshim_tasks))
		mod_delayed_work(lpshim_transition_wq, &lpshim_transition_work, 0);
	else
		lpshim_try_complete_transition();
}

/*
 * Undo an enable that failed after lpshim_init_transition() and before it started, once the
 * caller took the patch's functions off their func_stacks (lpshim_unpatch_objects()).
 */
void lpshim_cancel_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;
	struct lpshim_object *obj;
	struct lpshim_func *func;

	lockdep_assert_held(&lpshim_mutex);
	/*
	 * As in lpshim_complete_transition(): a handler that read a popped function off the top
	 * of a func_stack that is not empty must return before the function's mark is cleared,
	 * or it sends a task in the state below into the code of the module whose init fails.
	 */
	lpshim_synchronize();
	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			lpshim_func_set_transition(func, false);
	lpshim_synchronize();
	lpshim_end_transition_tracking();
	WRITE_ONCE(lpshim_target_state, LPSHIM_UNDEFINED);
	lpshim_transition_patch = NULL;
}

/*
 * The opposite of the current target. Task states are absolute (patched or unpatched), so the
 * handler needs no barrier for the flip. A switch point that checked a task against the old
 * target's ranges would write the old target after a pass counted the task in the new one:
 * the reversal waits such writes out (below). The orphan state does not change.
 */
void lpshim_reverse_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;
	int from = lpshim_target_state;

	lockdep_assert_held(&lpshim_mutex);
	pr_notice("'%s': reversing transition from %s to %s\n", patch->mod->name,
		  lpshim_state_name(from), lpshim_state_name(!from));
	patch->enabled = !patch->enabled;
	WRITE_ONCE(lpshim_target_state, !from);
	lpshim_attempts = 0;
	if (rcu_access_pointer(lpshim_tasks)) {
		lpshim_update_ranges();
		/*
		 * A switch point that read the old ranges (interrupts off) would write the old
		 * target after a pass found its task in the new one: the counts could not tell,
		 * and the transition would complete under it. Wait it out, as upstream's
		 * klp_reverse_transition() does with klp_synchronize_transition().
		 */
		lpshim_synchronize();
	}
	/* As upstream, the reversed transition starts anew (and says so). */
	pr_notice("'%s': starting %s transition\n", patch->mod->name,
		  lpshim_state_name(lpshim_target_state));
	trace_lpshim_transition_start(patch->mod->name, lpshim_target_state, 0);
	lpshim_queue_first_pass();
}

/* Move every remaining task to the target state now: this breaks the consistency model. */
void lpshim_force_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;
	struct lpshim_task_table *table = rcu_dereference_protected(lpshim_tasks, 1);
	unsigned int forced = 0;
	int cpu;

	lockdep_assert_held(&lpshim_mutex);
	if (table) {
		forced = lpshim_task_table_force(table, lpshim_target_state);
		for_each_possible_cpu(cpu) {
			if (per_cpu(lpshim_idle_state, cpu) != lpshim_target_state) {
				per_cpu(lpshim_idle_state, cpu) = lpshim_target_state;
				forced++;
			}
		}
	}
	pr_warn("'%s': forcing %u remaining tasks to the %s state\n", patch->mod->name, forced,
		lpshim_target_state == LPSHIM_PATCHED ? "patched" : "unpatched");
	/* The module of a forced patch, or of every patch it replaces, can never be removed. */
	patch->keep_module = true;
	if (patch->replace && lpshim_target_state == LPSHIM_PATCHED) {
		struct lpshim_patch *old;

		list_for_each_entry(old, &lpshim_patches, list)
			old->keep_module = true;
	}
	lpshim_synchronize();
	lpshim_complete_transition(forced);
}

void lpshim_transition_objects_changed(void)
{
	lockdep_assert_held(&lpshim_mutex);
	if (lpshim_transition_patch && rcu_access_pointer(lpshim_ranges))
		lpshim_update_ranges();
}

/*
 * The kick: wake what still blocks the transition, invisibly to it. User tasks get a fake
 * signal (an interruptible sleep ends with -ERESTARTSYS, the task switches on its way to user
 * mode and the syscall restarts); kernel threads are woken from interruptible sleeps, or made
 * to reschedule so that they pass the sched switch point. Uninterruptible sleepers stay.
 */
void lpshim_kick_transition(void)
{
	struct lpshim_task_table *table = rcu_dereference_protected(lpshim_tasks, 1);
	struct lpshim_task *entry;
	struct task_struct *g, *t;

	lockdep_assert_held(&lpshim_mutex);
	if (!table)
		return;
	read_lock(lpshim_ksyms.tasklist_lock);
	for_each_process_thread(g, t) {
		if (lpshim_task_patch_state(table, t) == lpshim_target_state)
			continue;
		entry = lpshim_task_lookup(table, t);
		if (!(t->flags & PF_KTHREAD) && entry && READ_ONCE(entry->work_queued)) {
			/* One switch work per task: make the one it has run now. */
			lpshim_notify_signal(t);
		} else if (!(t->flags & PF_KTHREAD)) {
			if (entry)
				WRITE_ONCE(entry->work_queued, true);
			if (!lpshim_queue_switch_work(t, TWA_SIGNAL) && entry)
				WRITE_ONCE(entry->work_queued, false);
		} else if (!lpshim_ksyms.wake_up_state(t, TASK_INTERRUPTIBLE)) {
			set_tsk_need_resched(t);
			kick_process(t);
		}
	}
	read_unlock(lpshim_ksyms.tasklist_lock);
	/* Now, not in a second: the kicked tasks need a moment to reach their switch point. */
	mod_delayed_work(lpshim_transition_wq, &lpshim_transition_work, msecs_to_jiffies(10));
}

static const char *const lpshim_block_reason_names[] = {
	[LPSHIM_BLOCK_NONE] = "not-checked-yet",
	[LPSHIM_BLOCK_RUNNING] = "running",
	[LPSHIM_BLOCK_SLEEPING_IN_FUNC] = "sleeping-in-function",
	[LPSHIM_BLOCK_UNRELIABLE_STACK] = "unreliable-stack",
};

static void lpshim_show_pending_task(struct seq_file *m, struct task_struct *t,
				     struct lpshim_task *entry)
{
	u8 reason = entry ? READ_ONCE(entry->reason) : LPSHIM_BLOCK_NONE;

	char comm[TASK_COMM_LEN];

	/*
	 * A task names itself (prctl(PR_SET_NAME)): escaped, so that no name can end a line and
	 * forge or hide one (%pE: a newline prints as "\n", other control bytes as octal "\ooo";
	 * a space stays a space).
	 */
	get_task_comm(comm, t);
	seq_printf(m, "%d %d %*pE %s %ps\n", t->pid, t->tgid, (int)strlen(comm), comm,
		   lpshim_block_reason_names[reason],
		   (void *)(entry ? READ_ONCE(entry->blocked_func) : 0));
}

/*
 * One line per task not yet in the target state: those on the task list, then exiting ones
 * that release_task() took off it.
 */
void lpshim_show_pending_tasks(struct seq_file *m)
{
	struct lpshim_task_table *table = rcu_dereference_protected(lpshim_tasks, 1);
	struct task_struct *g, *t;

	lockdep_assert_held(&lpshim_mutex);
	if (!table)
		return;
	rcu_read_lock();
	for_each_process_thread(g, t) {
		if (lpshim_task_patch_state(table, t) == lpshim_target_state)
			continue;
		lpshim_show_pending_task(m, t, lpshim_task_lookup(table, t));
	}
	rcu_read_unlock();
	lpshim_task_table_show_exiting(table, lpshim_target_state, m, lpshim_show_pending_task);
}

void lpshim_show_transition_stats(struct seq_file *m)
{
	lockdep_assert_held(&lpshim_mutex);
	seq_printf(m, "tasklist_walks %lu\n", lpshim_tasklist_walks);
}

#ifdef LPSHIM_DEBUG
/*
 * debugfs "task_states" (debug build): the transition's target and orphan state, then one line
 * per task: tid, comm, and its state as the handler reads it ("entry 0|1", or "orphan 0|1").
 * lpshim_mutex held.
 */
void lpshim_show_task_states(struct seq_file *m)
{
	struct lpshim_task_table *table = rcu_dereference_protected(lpshim_tasks, 1);
	struct task_struct *g, *t;
	struct lpshim_task *entry;

	lockdep_assert_held(&lpshim_mutex);
	seq_printf(m, "target %d\n", lpshim_target_state);
	if (!table)
		return;
	seq_printf(m, "orphan_state %d\n", READ_ONCE(table->orphan_state));
	rcu_read_lock();
	for_each_process_thread(g, t) {
		entry = lpshim_task_lookup(table, t);
		if (entry)
			seq_printf(m, "%d %s entry %d\n", t->pid, t->comm, READ_ONCE(entry->state));
		else
			seq_printf(m, "%d %s orphan %d\n", t->pid, t->comm,
				   READ_ONCE(table->orphan_state));
	}
	rcu_read_unlock();
}
#endif

int lpshim_transition_init(void)
{
	int cpu, ret;

	for_each_possible_cpu(cpu)
		INIT_WORK(per_cpu_ptr(&lpshim_idle_work, cpu), lpshim_idle_work_fn);
	ret = lpshim_task_state_init();
	if (ret)
		return ret;
	ret = tracepoint_probe_register(lpshim_ksyms.tp_sched_switch, lpshim_sched_switch_probe,
					NULL);
	if (ret)
		lpshim_task_state_exit();
	return ret;
}

/*
 * Patch modules pin lpshim, and so does every queued or running switch work: no transition
 * can be in progress at unload, and no work is left.
 */
void lpshim_transition_exit(void)
{
	int cpu;

	tracepoint_probe_unregister(lpshim_ksyms.tp_sched_switch, lpshim_sched_switch_probe, NULL);
	lpshim_task_state_exit();	/* synchronizes: no probe runs after this */
	/* Idle works first: one may queue the transition work. */
	for_each_possible_cpu(cpu)
		flush_work(per_cpu_ptr(&lpshim_idle_work, cpu));
	cancel_delayed_work_sync(&lpshim_transition_work);
	WARN_ON_ONCE(!list_empty_careful(&lpshim_works));
	/* A switch work that just dropped its reference may still be returning through our code. */
	synchronize_rcu_tasks();
}
