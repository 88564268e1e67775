/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * task_state.h - lpshim's own per-task patch state
 *
 * task_struct's patch_state and TIF_PATCH_PENDING belong to the in-kernel livepatch, which
 * stays usable beside lpshim, so lpshim keeps the state of each task in a table of its own,
 * keyed by the task_struct pointer. The table exists only during a transition: outside one the
 * handler never asks for a task's state. Idle tasks, which are not in the task list, have a
 * per-CPU state.
 *
 * Keying by pointer (not pid) means pid reuse cannot leak a state: an entry goes when its task
 * is freed (sched_process_free), before the memory can hold another task.
 */
#ifndef _LPSHIM_TASK_STATE_H
#define _LPSHIM_TASK_STATE_H

#include <linux/hash.h>
#include <linux/percpu.h>
#include <linux/rculist.h>
#include <linux/sched.h>

/* Why a task could not switch at its last check (debugfs "tasks", tracepoint task_blocked) */
enum lpshim_block_reason {
	LPSHIM_BLOCK_NONE,
	LPSHIM_BLOCK_RUNNING,		/* running on another CPU: its stack cannot be checked */
	LPSHIM_BLOCK_SLEEPING_IN_FUNC,	/* a function of the patch is on its stack */
	LPSHIM_BLOCK_UNRELIABLE_STACK,	/* the unwinder could not vouch for its stack */
};

/**
 * struct lpshim_task - the patch state of one task during a transition
 * @node:	entry in the table's bucket (RCU for readers, the table lock for writers)
 * @task:	the task (not referenced: the entry goes when the task is freed)
 * @state:	LPSHIM_PATCHED or LPSHIM_UNPATCHED, what the task runs
 * @reason:	why it was last found blocked (enum lpshim_block_reason)
 * @blocked_func: the function of the patch found on its stack, if that is the reason
 * @work_queued: a switch attempt on its return to user mode is queued
 * @graveyard:	entry in the table's list of entries of freed tasks
 */
struct lpshim_task {
	struct hlist_node node;
	struct task_struct *task;
	int state;
	u8 reason;
	bool work_queued;
	unsigned long blocked_func;
	struct list_head graveyard;
};

/**
 * struct lpshim_task_table - the states of all tasks of one transition
 * @bits:	log2 of the number of buckets
 * @lock:	serialises insertions and removals (fork and free run concurrently with the
 *		transition work); readers are lockless
 * @graveyard:	entries of freed tasks: a lockless reader may still walk past them, so they
 *		are freed only with the table, after lpshim_synchronize()
 * @entries:	the entries of the tasks that existed when the table was filled, in one
 *		allocation (a task forked later gets its own)
 * @nr_entries:	the size of @entries
 * @rcu:	frees the table once no reader can see it any more
 * @buckets:	the hash buckets
 */
struct lpshim_task_table {
	unsigned int bits;
	spinlock_t lock;
	struct list_head graveyard;
	struct lpshim_task *entries;
	unsigned int nr_entries;
	struct rcu_head rcu;
	struct hlist_head buckets[];
};

/* The table of the transition in progress, or NULL. Published with rcu_assign_pointer(). */
extern struct lpshim_task_table __rcu *lpshim_tasks;
DECLARE_PER_CPU(int, lpshim_idle_state);

static __always_inline struct lpshim_task *
lpshim_task_lookup(struct lpshim_task_table *table, struct task_struct *task)
{
	struct lpshim_task *entry;

	hlist_for_each_entry_rcu_notrace(entry, &table->buckets[hash_ptr(task, table->bits)], node)
		if (entry->task == task)
			return entry;
	return NULL;
}

/*
 * The state of @task during a transition to @target. A task with no entry was created after
 * the table was filled and before its fork was seen (or its entry could not be allocated): it
 * has run nothing yet, so no patched function can be on its stack, and it is in the target
 * state. Called from the ftrace handler: lock-free, O(1), no allocation, nothing traceable.
 */
static __always_inline int lpshim_task_patch_state(struct task_struct *task, int target)
{
	struct lpshim_task_table *table;
	struct lpshim_task *entry;

	if (unlikely(is_idle_task(task)))
		return per_cpu(lpshim_idle_state, task_cpu(task));
	table = rcu_dereference_raw(lpshim_tasks);
	if (!table)
		return target;
	entry = lpshim_task_lookup(table, task);
	return entry ? READ_ONCE(entry->state) : target;
}

/*
 * Allocate and fill the table for a transition to @target: every task (and idle task)
 * starts in the other state. lpshim_mutex held.
 */
int lpshim_task_table_create(int target);
/*
 * Unpublish the table and free it after a grace period; lpshim_mutex held, after the
 * functions' marks were cleared.
 */
void lpshim_task_table_destroy(void);

/* Register and unregister the fork and free probes, for lpshim's lifetime. */
int lpshim_task_state_init(void);
void lpshim_task_state_exit(void);

#endif /* _LPSHIM_TASK_STATE_H */
