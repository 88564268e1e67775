/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * task_state.h - lpshim's own per-task patch state
 *
 * task_struct's patch_state and TIF_PATCH_PENDING belong to the in-kernel livepatch, which
 * stays usable beside lpshim, so lpshim keeps the state of each task in a table of its own,
 * keyed by the task_struct pointer. The table exists only during a transition: outside one the
 * handler never asks for a task's state.
 *
 * Every task has an absolute state, patched or unpatched: what it runs. A reversal changes the
 * target, never a task's state. A task the table has no entry for (an orphan: one that existed
 * before the table and was not recorded yet, or one created while no entry could be allocated)
 * is in the table's orphan_state, which is the state every task had before the transition, and
 * the passes give it an entry before they check it. Each CPU's idle task has a per-CPU state;
 * idle-injection kthreads, which also carry PF_IDLE, are tasks like any other.
 *
 * Entries are created when a task is (task_newtask fires inside copy_process() for every
 * creator: fork, clone, kernel threads, io_uring and vhost workers), with their creator's state.
 * An entry goes when its task is freed (sched_process_free, after its last schedule and after
 * release_task()), before the memory can hold another task, so neither pid nor pointer reuse can
 * leak a state; it is reused only after lpshim_synchronize(), since a lockless reader may still
 * walk past it. docs/consistency-model.md argues why each case is safe.
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
 * @work_queued: a switch attempt on its return to user mode is queued
 * @exiting:	the task is past do_exit()'s sched_process_exit: @list is on the table's exiting
 * @blocked_func: the function of the patch found on its stack, if that is the reason
 * @list:	entry in the table's pool, exiting or graveyard list (the table lock)
 */
struct lpshim_task {
	struct hlist_node node;
	struct task_struct *task;
	int state;
	u8 reason;
	bool work_queued;
	bool exiting;
	unsigned long blocked_func;
	struct list_head list;
};

/* Exiting tasks that got no entry, remembered by pointer until they are freed */
#define LPSHIM_UNTRACKED_EXITS	16

/**
 * struct lpshim_task_table - the states of all tasks of one transition
 * @bits:	log2 of the number of buckets
 * @orphan_state: the state of a task with no entry; the handler reads it locklessly. It changes
 *		only when a pass found no task in it that is not in the target state
 *		(lpshim_task_table_settle_orphans(), lpshim_task_table_settle()), or when the
 *		transition is forced
 * @lock:	protects the buckets against concurrent writers (creation, exit and free of tasks
 *		run concurrently with the transition work), the lists and the counters below;
 *		taken with interrupts off, inside the runqueue lock (the sched_switch probe): never
 *		take a scheduler lock under it
 * @pool:	free entries, ready to be inserted without allocating
 * @exiting:	entries of tasks past sched_process_exit, not yet freed: release_task() takes
 *		them off the task list while they still run, so the passes look here too
 * @graveyard:	entries of freed tasks: a lockless reader may still walk past them, so they
 *		go back to @pool only after lpshim_synchronize() (lpshim_task_table_refill())
 * @nr_entries:	entries allocated, wherever they are
 * @nr_entries_peak: the most there were at once
 * @nr_pool:	entries in @pool
 * @nr_exiting:	entries in @exiting
 * @nr_graveyard: entries in @graveyard
 * @nr_taken:	entries taken from @pool or allocated since the last refill
 * @nr_lost:	tasks that got no entry when they were created or began to exit (none
 *		could be had): orphans lpshim did not record
 * @nr_in_state: entries on the buckets in each state, never fewer than there are: raised
 *		before an entry enters a state, lowered after it left it
 *		(lpshim_task_set_state()); atomic, as switch points write without @lock
 * @untracked_exits: exiting orphans that got no entry, until they are freed
 * @untracked_overflow: more of those than @untracked_exits holds were seen: @orphan_state can
 *		never change again, so the transition can complete only towards it
 * @all_recorded: a pass found every task on the task list recorded (debug build's check)
 * @rcu:	frees the table once no reader can see it any more
 * @buckets:	the hash buckets
 */
struct lpshim_task_table {
	unsigned int bits;
	int orphan_state;
	raw_spinlock_t lock;
	struct list_head pool;
	struct list_head exiting;
	struct list_head graveyard;
	unsigned int nr_entries;
	unsigned int nr_entries_peak;
	unsigned int nr_pool;
	unsigned int nr_exiting;
	unsigned int nr_graveyard;
	unsigned int nr_taken;
	unsigned long nr_lost;
	atomic_t nr_in_state[2];
	struct task_struct *untracked_exits[LPSHIM_UNTRACKED_EXITS];
	bool untracked_overflow;
	bool all_recorded;
	struct rcu_head rcu;
	struct hlist_head buckets[];
};

/* The state of an entry its task's free took off the buckets: counted in no state. */
#define LPSHIM_TASK_GONE	(-1)

/*
 * Move @entry of @table to @state, unless its task was freed meanwhile (a switch point that
 * looked it up before). The count of @state goes up before the entry is in it (the
 * cmpxchg() is a full barrier), the count of its old state down after it left it: a pass
 * that finds no entry counted in a state knows that none is in it.
 */
static __always_inline void lpshim_task_set_state(struct lpshim_task_table *table,
						  struct lpshim_task *entry, int state)
{
	int old = READ_ONCE(entry->state);

	atomic_inc(&table->nr_in_state[state]);
	do {
		if (old == LPSHIM_TASK_GONE) {
			atomic_dec(&table->nr_in_state[state]);
			return;
		}
	} while (!try_cmpxchg(&entry->state, &old, state));
	atomic_dec(&table->nr_in_state[old]);
}

/* The table of the transition in progress, or NULL. Published with rcu_assign_pointer(). */
extern struct lpshim_task_table __rcu *lpshim_tasks;
DECLARE_PER_CPU(int, lpshim_idle_state);
/* Each CPU's own idle task, as idle_task(cpu) gives it: idle-injection kthreads are not. */
DECLARE_PER_CPU(struct task_struct *, lpshim_idle_task);

/* @task is the idle task of its CPU, whose state is per CPU (not an idle-injection kthread). */
static __always_inline bool lpshim_is_cpu_idle_task(struct task_struct *task)
{
	return unlikely(is_idle_task(task)) && task == per_cpu(lpshim_idle_task, task_cpu(task));
}

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
 * The state of @task during a transition: its entry's, its CPU's idle state, or the orphan
 * state. Called from the ftrace handler: lock-free, O(1), no allocation, nothing traceable.
 * @table is never NULL while a function is marked in transition (published before the marks,
 * freed after they are cleared and the handler waited out).
 */
static __always_inline int lpshim_task_patch_state(struct lpshim_task_table *table,
						   struct task_struct *task)
{
	struct lpshim_task *entry;

	if (lpshim_is_cpu_idle_task(task))
		return per_cpu(lpshim_idle_state, task_cpu(task));
	entry = lpshim_task_lookup(table, task);
	return entry ? READ_ONCE(entry->state) : READ_ONCE(table->orphan_state);
}

/*
 * Allocate and publish the table for a transition to @target: every task, idle tasks included,
 * starts in the other state, the tasks as orphans that the first pass records. lpshim_mutex.
 */
int lpshim_task_table_create(int target);
/*
 * Unpublish the table and free it after a grace period; lpshim_mutex held, after the
 * functions' marks were cleared.
 */
void lpshim_task_table_destroy(void);

/*
 * Before a pass: put the entries of tasks freed since the last one back in the pool (after
 * lpshim_synchronize()), and fill it up to what the pass and the creations until the next one
 * may need, or trim it. lpshim_mutex held, may sleep.
 */
void lpshim_task_table_refill(struct lpshim_task_table *table);

/*
 * The entry of @task, which has none yet (an orphan), recorded in the orphan state from the
 * pool: NULL when the pool is empty (the next refill makes room). No lock held.
 */
struct lpshim_task *lpshim_task_table_adopt(struct lpshim_task_table *table,
					    struct task_struct *task);

/*
 * Take a reference on up to @max tasks of the exiting list whose state is not @target, into
 * @tasks; return how many. The caller puts them.
 */
unsigned int lpshim_task_table_exiting(struct lpshim_task_table *table, int target,
				       struct task_struct **tasks, unsigned int max);

/*
 * Call @show for each task of the exiting list that is off the task list and not in @target.
 * lpshim_mutex held.
 */
struct seq_file;
void lpshim_task_table_show_exiting(struct lpshim_task_table *table, int target,
				    struct seq_file *m,
				    void (*show)(struct seq_file *m, struct task_struct *t,
						 struct lpshim_task *entry));

/*
 * A pass found every task in @target, under tasklist_lock (no task can be created meanwhile):
 * make @target the orphan state, so that a task created from now on without an entry is in
 * it, unless an exiting orphan that got no entry may still run. Return whether the orphan
 * state is @target.
 */
bool lpshim_task_table_settle_orphans(struct lpshim_task_table *table, int target);

/* How many tasks got no entry so far (@nr_lost), read before a pass's walk. */
unsigned long lpshim_task_table_lost(struct lpshim_task_table *table);

/*
 * The same without tasklist_lock: a walk under RCU found every task it saw recorded and in
 * @target, and no task was lost (@lost is lpshim_task_table_lost() from before that walk).
 * Every task created meanwhile then has an entry, and with no entry counted in the other
 * state, every task is in @target. Make @target the orphan state, in one section of the
 * table's lock with those checks, so that a creation lost after them is in @target too.
 * Return 0 when it is, -EAGAIN when an entry or an exiting orphan is not in @target yet,
 * -ESTALE when a task was lost since @lost: only a walk under tasklist_lock can tell then.
 */
int lpshim_task_table_settle(struct lpshim_task_table *table, int target, unsigned long lost);

/* Set every entry and the orphan state to @target (force); return how many entries moved. */
unsigned int lpshim_task_table_force(struct lpshim_task_table *table, int target);

/* debugfs "stats": what the table holds. lpshim_mutex held. */
void lpshim_task_table_show_stats(struct seq_file *m);

/* Register and unregister the creation, exit and free probes, for lpshim's lifetime. */
int lpshim_task_state_init(void);
void lpshim_task_state_exit(void);

#endif /* _LPSHIM_TASK_STATE_H */
