// SPDX-License-Identifier: GPL-2.0-only
/*
 * task_state.c - the table of per-task patch states of a transition (task_state.h)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hashtable.h>
#include <linux/log2.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/tracepoint.h>

#include "core.h"
#include "debug.h"
#include "ksyms.h"
#include "patch.h"
#include "task_state.h"
#include "trace.h"
#include "transition.h"

struct lpshim_task_table __rcu *lpshim_tasks;
DEFINE_PER_CPU(int, lpshim_idle_state);
DEFINE_PER_CPU(struct task_struct *, lpshim_idle_task);

static struct kmem_cache *lpshim_task_cache;

/*
 * The exit registry: every task between sched_process_exit and sched_process_free, whether a
 * transition is in progress or not. A task that started exiting before a transition's table
 * was published may already be off the task list, out of the passes' sight, and still run the
 * end of do_exit(); the new table learns of it here (lpshim_task_table_adopt_exiting()).
 * Records are allocated without sleeping; a task whose record cannot be is kept by pointer in
 * a fixed array instead, until it is freed, and adopted like a recorded one. Only when that
 * array is full too is a task lost: the registry says so for good (lpshim_exits_lost), and no
 * table can settle its orphan state any more (a task lpshim does not know of may run in it);
 * transitions then complete only by force, until lpshim is reloaded.
 */
struct lpshim_exit_record {
	struct hlist_node node;
	struct task_struct *task;
};

#define LPSHIM_EXIT_REGISTRY_BITS 8
static DEFINE_HASHTABLE(lpshim_exit_registry, LPSHIM_EXIT_REGISTRY_BITS);
#define LPSHIM_UNRECORDED_EXITS 64
/*
 * Protects lpshim_exit_registry, lpshim_exits_unrecorded and lpshim_exits_lost; taken with
 * interrupts off.
 */
static DEFINE_RAW_SPINLOCK(lpshim_exit_registry_lock);
static struct task_struct *lpshim_exits_unrecorded[LPSHIM_UNRECORDED_EXITS];
static bool lpshim_exits_lost;
static struct kmem_cache *lpshim_exit_record_cache;

/*
 * The pool keeps at least this many free entries, and as many as were taken from it since the
 * previous refill (the creations of a retry period); it is trimmed above twice that. With the
 * entries of the tasks freed in a retry period waiting in the graveyard, a transition holds
 * about one entry per live task plus three retry periods' worth of creations, however long it
 * stays open (docs/consistency-model.md).
 */
#define LPSHIM_POOL_MIN		256U

static struct lpshim_task_table *lpshim_table_locked(void)
{
	return rcu_dereference_protected(lpshim_tasks, lockdep_is_held(&lpshim_mutex));
}

/*
 * A free entry: from the pool, else allocated with @gfp (0: the pool only; the sched_switch
 * probe must not allocate under the runqueue lock). NULL when neither worked.
 */
static struct lpshim_task *lpshim_task_get(struct lpshim_task_table *table, gfp_t gfp)
{
	struct lpshim_task *entry;
	unsigned long flags;

	raw_spin_lock_irqsave(&table->lock, flags);
	entry = list_first_entry_or_null(&table->pool, struct lpshim_task, list);
	if (entry) {
		list_del(&entry->list);
		table->nr_pool--;
		table->nr_taken++;
	}
	raw_spin_unlock_irqrestore(&table->lock, flags);
	if (entry || !gfp)
		return entry;

	entry = kmem_cache_alloc(lpshim_task_cache, gfp);
	if (entry) {
		raw_spin_lock_irqsave(&table->lock, flags);
		table->nr_entries++;
		table->nr_entries_peak = max(table->nr_entries, table->nr_entries_peak);
		table->nr_taken++;
		raw_spin_unlock_irqrestore(&table->lock, flags);
	}
	return entry;
}

static void lpshim_task_put_locked(struct lpshim_task_table *table, struct lpshim_task *entry)
{
	list_add(&entry->list, &table->pool);
	table->nr_pool++;
}

/* Forget @task among the exiting orphans that had no entry. table->lock held. */
static void lpshim_forget_untracked_locked(struct lpshim_task_table *table,
					   struct task_struct *task)
{
	int i;

	for (i = 0; i < LPSHIM_UNTRACKED_EXITS; i++)
		if (table->untracked_exits[i] == task)
			table->untracked_exits[i] = NULL;
}

/*
 * @entry's task is exiting (PF_EXITING is set in do_exit() before sched_process_exit): it
 * goes on the exiting list, which the passes walk after release_task() took it off the task
 * list. table->lock held.
 */
static void lpshim_mark_exiting_locked(struct lpshim_task_table *table, struct lpshim_task *entry)
{
	if (entry->exiting)
		return;
	entry->exiting = true;
	list_add(&entry->list, &table->exiting);
	table->nr_exiting++;
	lpshim_forget_untracked_locked(table, entry->task);
}

/*
 * Record @task in @state with @entry, unless it has an entry already: then that one is
 * returned (its state set to @state if @overwrite) and @entry goes back to the pool.
 * table->lock held.
 */
static struct lpshim_task *lpshim_task_insert_locked(struct lpshim_task_table *table,
						     struct task_struct *task,
						     struct lpshim_task *entry, int state,
						     bool overwrite)
{
	struct lpshim_task *old = lpshim_task_lookup(table, task);

	if (old) {
		if (overwrite)
			lpshim_task_set_state(table, old, state);
		lpshim_task_put_locked(table, entry);
		return old;
	}
	entry->task = task;
	/* Counted before it is on the buckets: lpshim_task_set_state(). */
	atomic_inc(&table->nr_in_state[state]);
	entry->state = state;
	entry->reason = LPSHIM_BLOCK_NONE;
	entry->work_queued = false;
	entry->exiting = false;
	entry->blocked_func = 0;
	INIT_LIST_HEAD(&entry->list);
	/* Publishes the fields: no reader can still see @entry from a previous use. */
	hlist_add_head_rcu(&entry->node, &table->buckets[hash_ptr(task, table->bits)]);
	if (READ_ONCE(task->flags) & PF_EXITING)
		lpshim_mark_exiting_locked(table, entry);
	return entry;
}

struct lpshim_task *lpshim_task_table_adopt(struct lpshim_task_table *table,
					    struct task_struct *task)
{
	struct lpshim_task *entry = lpshim_task_get(table, 0);
	unsigned long flags;

	if (!entry)
		return NULL;
	raw_spin_lock_irqsave(&table->lock, flags);
	entry = lpshim_task_insert_locked(table, task, entry, READ_ONCE(table->orphan_state),
					  false);
	raw_spin_unlock_irqrestore(&table->lock, flags);
	return entry;
}

/*
 * A task is created (task_newtask, in copy_process() for every creator, after the task is on
 * the task list and before it first runs): it gets its creator's state, so that a fork storm
 * cannot keep a transition open. Any state is consistent for it, since it has run nothing: one
 * whose entry cannot be had stays an orphan, pending until a pass records and checks it.
 */
static void lpshim_newtask_probe(void *data, struct task_struct *task, unsigned long clone_flags)
{
	struct lpshim_task_table *table = rcu_dereference_sched(lpshim_tasks);
	struct lpshim_task *entry, *old = NULL;
	unsigned long flags;
	int state;

	if (!table)
		return;
	entry = lpshim_debug_fail_task_alloc(current) ? NULL :
		lpshim_task_get(table, GFP_NOWAIT | __GFP_NOWARN);

	raw_spin_lock_irqsave(&table->lock, flags);
	/* Under the lock: a force that ran meanwhile changed the creator's state too. */
	state = lpshim_task_patch_state(table, current);
	if (entry) {
		/* A pass that saw the task on the list may have recorded it: it has not run. */
		lpshim_task_insert_locked(table, task, entry, state, true);
	} else {
		old = lpshim_task_lookup(table, task);
		if (old)
			lpshim_task_set_state(table, old, state);
		else
			table->nr_lost++;
	}
	raw_spin_unlock_irqrestore(&table->lock, flags);
	if (state == READ_ONCE(lpshim_target_state) && (entry || old))
		trace_lpshim_task_switch(task->pid, state, LPSHIM_SWITCH_FORK);
}

/*
 * A task exits (sched_process_exit, current, still on the task list): release_task() will take
 * it off the list while it still runs the end of do_exit(), out of the passes' sight; its entry
 * goes on the exiting list, where they look too. An orphan gets an entry first; one that cannot
 * have one is remembered until it is freed, and the orphan state stays what it is meanwhile.
 */
/*
 * Record exiting @task in the table, with an entry (@new, or the one it has) on the exiting
 * list, or else among the untracked exits. @new goes back to the pool if unused. table->lock
 * held.
 */
static void lpshim_table_add_exiting_locked(struct lpshim_task_table *table,
					    struct task_struct *task, struct lpshim_task *new)
{
	struct lpshim_task *entry = lpshim_task_lookup(table, task);
	int i;

	if (!entry && new) {
		entry = lpshim_task_insert_locked(table, task, new, READ_ONCE(table->orphan_state),
						  false);
	} else if (new) {
		lpshim_task_put_locked(table, new);
	}
	if (entry) {
		lpshim_mark_exiting_locked(table, entry);
		return;
	}
	for (i = 0; i < LPSHIM_UNTRACKED_EXITS; i++)
		if (table->untracked_exits[i] == task)
			return;
	for (i = 0; i < LPSHIM_UNTRACKED_EXITS && table->untracked_exits[i]; i++)
		;
	if (i < LPSHIM_UNTRACKED_EXITS)
		table->untracked_exits[i] = task;
	else
		table->untracked_overflow = true;
	table->nr_lost++;
}

/* Record @task in the exit registry, unless it is there already. */
static void lpshim_exit_registry_add(struct task_struct *task)
{
	struct lpshim_exit_record *record, *old;
	unsigned long flags;
	bool lost = false;
	int i, free_slot = -1;

	record = lpshim_debug_fail_exit_record(task) ? NULL :
		 kmem_cache_alloc(lpshim_exit_record_cache, GFP_NOWAIT | __GFP_NOWARN);
	raw_spin_lock_irqsave(&lpshim_exit_registry_lock, flags);
	hash_for_each_possible(lpshim_exit_registry, old, node, (unsigned long)task)
		if (old->task == task)
			goto known;
	for (i = 0; i < LPSHIM_UNRECORDED_EXITS; i++) {
		if (lpshim_exits_unrecorded[i] == task)
			goto known;
		if (!lpshim_exits_unrecorded[i] && free_slot < 0)
			free_slot = i;
	}
	if (record) {
		record->task = task;
		hash_add(lpshim_exit_registry, &record->node, (unsigned long)task);
	} else if (free_slot >= 0) {
		lpshim_exits_unrecorded[free_slot] = task;
	} else {
		lost = !lpshim_exits_lost;
		lpshim_exits_lost = true;
	}
	raw_spin_unlock_irqrestore(&lpshim_exit_registry_lock, flags);
	if (lost)
		pr_warn("lost track of an exiting task (out of memory): transitions cannot complete by themselves until lpshim is reloaded\n");
	return;
known:
	raw_spin_unlock_irqrestore(&lpshim_exit_registry_lock, flags);
	if (record)
		kmem_cache_free(lpshim_exit_record_cache, record);
}

static void lpshim_exit_probe(void *data, struct task_struct *task)
{
	struct lpshim_task_table *table;
	struct lpshim_task *new = NULL;
	unsigned long flags;

	/*
	 * The registry first, then the table: a table published after the registry's lock was
	 * let go of is seen below; one published before that finds this task in the registry
	 * (lpshim_task_table_adopt_exiting() takes the lock after publishing).
	 */
	lpshim_exit_registry_add(task);

	table = rcu_dereference_sched(lpshim_tasks);
	if (!table)
		return;
	if (!lpshim_task_lookup(table, task))
		new = lpshim_task_get(table, GFP_NOWAIT | __GFP_NOWARN);
	raw_spin_lock_irqsave(&table->lock, flags);
	lpshim_table_add_exiting_locked(table, task, new);
	raw_spin_unlock_irqrestore(&table->lock, flags);
}

/* The exit registry forgets @task, if it knew of it. */
static void lpshim_exit_registry_forget(struct task_struct *task)
{
	struct lpshim_exit_record *record, *found = NULL;
	unsigned long flags;
	int i;

	raw_spin_lock_irqsave(&lpshim_exit_registry_lock, flags);
	hash_for_each_possible(lpshim_exit_registry, record, node, (unsigned long)task) {
		if (record->task == task) {
			hash_del(&record->node);
			found = record;
			break;
		}
	}
	for (i = 0; !found && i < LPSHIM_UNRECORDED_EXITS; i++) {
		if (lpshim_exits_unrecorded[i] == task) {
			lpshim_exits_unrecorded[i] = NULL;
			break;
		}
	}
	raw_spin_unlock_irqrestore(&lpshim_exit_registry_lock, flags);
	if (found)
		kmem_cache_free(lpshim_exit_record_cache, found);
}

/* An exiting task that a new table learns of gets an entry from the pool, if it has one. */
static void lpshim_table_adopt_exiting_locked(struct lpshim_task_table *table,
					      struct task_struct *task)
{
	struct lpshim_task *entry;

	entry = list_first_entry_or_null(&table->pool, struct lpshim_task, list);
	if (entry) {
		list_del(&entry->list);
		table->nr_pool--;
	}
	lpshim_table_add_exiting_locked(table, task, entry);
}

/*
 * A new table learns of the tasks that were exiting before it was published: each gets an
 * entry on its exiting list (an orphan, in the orphan state) or an untracked slot. Called
 * right after publication, with the pool full. A record that could not be allocated, or a task
 * that exited before lpshim was loaded, is unknown: docs/consistency-model.md.
 */
static void lpshim_task_table_adopt_exiting(struct lpshim_task_table *table)
{
	struct lpshim_exit_record *record;
	unsigned int bkt;
	int i;

	raw_spin_lock_irq(&lpshim_exit_registry_lock);
	raw_spin_lock(&table->lock);
	hash_for_each(lpshim_exit_registry, bkt, record, node)
		lpshim_table_adopt_exiting_locked(table, record->task);
	for (i = 0; i < LPSHIM_UNRECORDED_EXITS; i++)
		if (lpshim_exits_unrecorded[i])
			lpshim_table_adopt_exiting_locked(table, lpshim_exits_unrecorded[i]);
	if (lpshim_exits_lost)
		table->untracked_overflow = true;
	raw_spin_unlock(&table->lock);
	raw_spin_unlock_irq(&lpshim_exit_registry_lock);
}

/*
 * The task is gone for good (an RCU callback after its last schedule and release_task()): its
 * pointer may now be reused. Its entry waits in the graveyard for readers to be done with it.
 */
static void lpshim_free_probe(void *data, struct task_struct *task)
{
	struct lpshim_task_table *table;
	struct lpshim_task *entry;
	unsigned long flags;

	lpshim_exit_registry_forget(task);
	table = rcu_dereference_sched(lpshim_tasks);
	if (!table)
		return;
	raw_spin_lock_irqsave(&table->lock, flags);
	entry = lpshim_task_lookup(table, task);
	if (entry) {
		hlist_del_rcu(&entry->node);
		/* A switch point that looked it up before no longer changes it: no count is off. */
		atomic_dec(&table->nr_in_state[xchg(&entry->state, LPSHIM_TASK_GONE)]);
		if (entry->exiting) {
			list_del(&entry->list);
			table->nr_exiting--;
		}
		list_add(&entry->list, &table->graveyard);
		table->nr_graveyard++;
	}
	lpshim_forget_untracked_locked(table, task);
	raw_spin_unlock_irqrestore(&table->lock, flags);
}

void lpshim_task_table_refill(struct lpshim_task_table *table)
{
	struct lpshim_task *entry, *tmp;
	unsigned int n, want, have;
	LIST_HEAD(reclaim);
	LIST_HEAD(excess);

	lockdep_assert_held(&lpshim_mutex);
	raw_spin_lock_irq(&table->lock);
	list_splice_init(&table->graveyard, &reclaim);
	n = table->nr_graveyard;
	table->nr_graveyard = 0;
	want = max(LPSHIM_POOL_MIN, table->nr_taken);
	table->nr_taken = 0;
	raw_spin_unlock_irq(&table->lock);

	if (n) {
		/* No handler, probe or switch point may still walk past them. */
		lpshim_synchronize();
		raw_spin_lock_irq(&table->lock);
		list_splice(&reclaim, &table->pool);
		table->nr_pool += n;
		raw_spin_unlock_irq(&table->lock);
	}

	for (have = READ_ONCE(table->nr_pool); have < want; have++) {
		entry = kmem_cache_alloc(lpshim_task_cache, GFP_KERNEL | __GFP_NOWARN);
		if (!entry)
			break;	/* the pass leaves what it cannot record pending */
		raw_spin_lock_irq(&table->lock);
		lpshim_task_put_locked(table, entry);
		table->nr_entries++;
		table->nr_entries_peak = max(table->nr_entries, table->nr_entries_peak);
		raw_spin_unlock_irq(&table->lock);
	}

	raw_spin_lock_irq(&table->lock);
	while (table->nr_pool > 2 * want) {
		entry = list_first_entry(&table->pool, struct lpshim_task, list);
		list_move(&entry->list, &excess);
		table->nr_pool--;
		table->nr_entries--;
	}
	raw_spin_unlock_irq(&table->lock);
	list_for_each_entry_safe(entry, tmp, &excess, list)
		kmem_cache_free(lpshim_task_cache, entry);
}

unsigned int lpshim_task_table_exiting(struct lpshim_task_table *table, int target,
				       struct task_struct **tasks, unsigned int max)
{
	struct lpshim_task *entry;
	unsigned int n = 0;
	unsigned long flags;

	raw_spin_lock_irqsave(&table->lock, flags);
	list_for_each_entry(entry, &table->exiting, list) {
		if (n == max)
			break;
		/* The free probe unlinks it under this lock before the task can go. */
		if (READ_ONCE(entry->state) != target)
			tasks[n++] = get_task_struct(entry->task);
	}
	raw_spin_unlock_irqrestore(&table->lock, flags);
	return n;
}

void lpshim_task_table_show_exiting(struct lpshim_task_table *table, int target,
				    struct seq_file *m,
				    void (*show)(struct seq_file *m, struct task_struct *t,
						 struct lpshim_task *entry))
{
	struct lpshim_task *entry;

	raw_spin_lock_irq(&table->lock);
	list_for_each_entry(entry, &table->exiting, list)
		if (READ_ONCE(entry->state) != target && !pid_alive(entry->task))
			show(m, entry->task, entry);
	raw_spin_unlock_irq(&table->lock);
}

/*
 * Make @target the orphan state unless it is another and an exiting orphan may still run in
 * it. table->lock held.
 */
static bool lpshim_task_table_settle_orphans_locked(struct lpshim_task_table *table, int target)
{
	int i;

	if (table->orphan_state == target)
		return true;
	if (table->untracked_overflow)
		return false;
	for (i = 0; i < LPSHIM_UNTRACKED_EXITS; i++)
		if (table->untracked_exits[i])
			return false;
	WRITE_ONCE(table->orphan_state, target);
	return true;
}

bool lpshim_task_table_settle_orphans(struct lpshim_task_table *table, int target)
{
	bool settled;

	if (READ_ONCE(table->orphan_state) == target)
		return true;
	raw_spin_lock_irq(&table->lock);
	settled = lpshim_task_table_settle_orphans_locked(table, target);
	raw_spin_unlock_irq(&table->lock);
	return settled;
}

unsigned long lpshim_task_table_lost(struct lpshim_task_table *table)
{
	unsigned long lost;

	/*
	 * Under the lock: a creation whose loss is counted here was on the task list before,
	 * and the walk that follows sees it.
	 */
	raw_spin_lock_irq(&table->lock);
	lost = table->nr_lost;
	raw_spin_unlock_irq(&table->lock);
	return lost;
}

int lpshim_task_table_settle(struct lpshim_task_table *table, int target, unsigned long lost)
{
	int ret = 0;

	/*
	 * The creation probe reads its creator's state and records the child, or counts it
	 * lost, under the lock: before this section, with the creator in @target (no entry is
	 * counted in the other state, and an orphan creator was lost or seen), or after it, in
	 * @target too.
	 */
	raw_spin_lock_irq(&table->lock);
	if (table->nr_lost != lost)
		ret = -ESTALE;
	else if (atomic_read(&table->nr_in_state[!target]) ||
		 !lpshim_task_table_settle_orphans_locked(table, target))
		ret = -EAGAIN;
	raw_spin_unlock_irq(&table->lock);
	return ret;
}

unsigned int lpshim_task_table_force(struct lpshim_task_table *table, int target)
{
	struct lpshim_task *entry;
	unsigned int i, forced = 0;

	raw_spin_lock_irq(&table->lock);
	for (i = 0; i < (1U << table->bits); i++) {
		hlist_for_each_entry(entry, &table->buckets[i], node) {
			if (READ_ONCE(entry->state) == target)
				continue;
			lpshim_task_set_state(table, entry, target);
			trace_lpshim_task_switch(entry->task->pid, target, LPSHIM_SWITCH_FORCE);
			forced++;
		}
	}
	WRITE_ONCE(table->orphan_state, target);
	raw_spin_unlock_irq(&table->lock);
	return forced;
}

static void lpshim_free_list(struct list_head *list)
{
	struct lpshim_task *entry, *tmp;

	list_for_each_entry_safe(entry, tmp, list, list)
		kmem_cache_free(lpshim_task_cache, entry);
}

static void lpshim_free_table(struct lpshim_task_table *table)
{
	struct lpshim_task *entry;
	struct hlist_node *n;
	unsigned int i;

	for (i = 0; i < (1U << table->bits); i++)
		hlist_for_each_entry_safe(entry, n, &table->buckets[i], node)
			kmem_cache_free(lpshim_task_cache, entry);
	/* The exiting entries are in the buckets too: freed above. */
	lpshim_free_list(&table->graveyard);
	lpshim_free_list(&table->pool);
	kvfree(table);
}

/* An RCU callback: vfree() defers itself from softirq. */
static void lpshim_free_table_rcu(struct rcu_head *rcu)
{
	lpshim_free_table(container_of(rcu, struct lpshim_task_table, rcu));
}

static unsigned int lpshim_count_tasks(void)
{
	struct task_struct *g, *t;
	unsigned int n = 0;

	read_lock(lpshim_ksyms.tasklist_lock);
	for_each_process_thread(g, t)
		n++;
	read_unlock(lpshim_ksyms.tasklist_lock);
	return n;
}

/* @n entries into the empty pool of @table, in bulk. */
static int lpshim_fill_pool(struct lpshim_task_table *table, unsigned int n)
{
	void **objs;
	unsigned int i;
	int got;

	objs = kvmalloc_array(n, sizeof(*objs), GFP_KERNEL);
	if (!objs)
		return -ENOMEM;
	got = kmem_cache_alloc_bulk(lpshim_task_cache, GFP_KERNEL, n, objs);
	for (i = 0; i < got; i++)
		list_add(&((struct lpshim_task *)objs[i])->list, &table->pool);
	table->nr_pool = table->nr_entries = table->nr_entries_peak = got;
	kvfree(objs);
	return got ? 0 : -ENOMEM;
}

int lpshim_task_table_create(int target)
{
	struct lpshim_task_table *table;
	unsigned int n, bits;
	int cpu, ret;

	lockdep_assert_held(&lpshim_mutex);
	if (WARN_ON_ONCE(lpshim_table_locked()))
		return -EBUSY;
	n = lpshim_count_tasks();
	n += n / 8 + 64;	/* tasks created before the first pass records them all */
	bits = ilog2(roundup_pow_of_two(2 * n));
	table = kvzalloc(struct_size(table, buckets, 1U << bits), GFP_KERNEL);
	if (!table)
		return -ENOMEM;
	table->bits = bits;
	table->orphan_state = !target;
	raw_spin_lock_init(&table->lock);
	INIT_LIST_HEAD(&table->pool);
	INIT_LIST_HEAD(&table->exiting);
	INIT_LIST_HEAD(&table->graveyard);
	ret = lpshim_fill_pool(table, n);
	if (ret) {
		lpshim_free_table(table);
		return ret;
	}

	for_each_possible_cpu(cpu)
		per_cpu(lpshim_idle_state, cpu) = !target;

	/*
	 * Publish the table (and the idle states) before any function is marked in transition,
	 * and before the first pass records the tasks: from here on every created task gets an
	 * entry, and a task not recorded yet is an orphan, in the state it ran so far. The
	 * smp_wmb() in lpshim_init_transition() orders this store before the marks; it pairs
	 * with the second smp_rmb() in lpshim_ftrace_handler().
	 */
	rcu_assign_pointer(lpshim_tasks, table);
	/*
	 * A task created now is put on the task list under tasklist_lock, then its creation
	 * probe reads lpshim_tasks: with this empty section, either the probe sees the table or
	 * the first pass's walk (under RCU) sees the task, an orphan it records.
	 */
	read_lock(lpshim_ksyms.tasklist_lock);
	read_unlock(lpshim_ksyms.tasklist_lock);
	lpshim_task_table_adopt_exiting(table);
	lpshim_debug_table_delay();
	return 0;
}

void lpshim_task_table_destroy(void)
{
	struct lpshim_task_table *table = lpshim_table_locked();

	if (!table)
		return;
	RCU_INIT_POINTER(lpshim_tasks, NULL);
	/* Readers: the handler (preemption-disabled, maybe where RCU is not watching)... */
	lpshim_synchronize();
	/*
	 * ...and the probes and switch points (RCU-sched), which may still insert or remove:
	 * the table goes after a grace period, without holding up the transition's completion.
	 */
	call_rcu(&table->rcu, lpshim_free_table_rcu);
}

void lpshim_task_table_show_stats(struct seq_file *m)
{
	struct lpshim_task_table *table = lpshim_table_locked();
	unsigned int untracked = 0, i;

	if (!table) {
		seq_puts(m, "transition none\n");
		return;
	}
	raw_spin_lock_irq(&table->lock);
	for (i = 0; i < LPSHIM_UNTRACKED_EXITS; i++)
		untracked += !!table->untracked_exits[i];
	seq_printf(m, "transition %s\norphan_state %d\nentries %u\nentries_peak %u\nentry_size %u\n"
		   "pool %u\nexiting %u\ngraveyard %u\nlost %lu\nuntracked_exits %u%s\n",
		   lpshim_state_name(lpshim_target_state), table->orphan_state, table->nr_entries,
		   table->nr_entries_peak, kmem_cache_size(lpshim_task_cache), table->nr_pool,
		   table->nr_exiting, table->nr_graveyard, table->nr_lost, untracked,
		   table->untracked_overflow ? "+" : "");
	raw_spin_unlock_irq(&table->lock);
}

/*
 * The probes stay registered while lpshim is loaded and return at once outside a transition:
 * registering them per transition rewrote hot kernel code (their tracepoints' jump labels) at
 * every transition, and on 6.12 under TCG a CPU then executed a stale int3.
 */
static const struct {
	struct tracepoint **tp;
	void *probe;
} lpshim_task_probes[] = {
	/*
	 * The free probe before the exit probe: a task recorded at its exit is then always
	 * forgotten at its free, never left in the registry as a pointer that memory reuse turns
	 * into garbage for the next table to adopt.
	 */
	{ &lpshim_ksyms.tp_sched_process_free, lpshim_free_probe },
	{ &lpshim_ksyms.tp_task_newtask, lpshim_newtask_probe },
	{ &lpshim_ksyms.tp_sched_process_exit, lpshim_exit_probe },
};

static void lpshim_unregister_task_probes(int n)
{
	while (n--)
		tracepoint_probe_unregister(*lpshim_task_probes[n].tp, lpshim_task_probes[n].probe,
					    NULL);
	tracepoint_synchronize_unregister();
}

/*
 * Tasks that were exiting when the probes were registered and are still on the task list; one
 * already off it is unknown (docs/consistency-model.md).
 */
static void lpshim_exit_registry_fill(void)
{
	struct task_struct *g, *t;

	read_lock(lpshim_ksyms.tasklist_lock);
	for_each_process_thread(g, t)
		if (READ_ONCE(t->flags) & PF_EXITING)
			lpshim_exit_registry_add(t);
	read_unlock(lpshim_ksyms.tasklist_lock);
}

static void lpshim_exit_registry_destroy(void)
{
	struct lpshim_exit_record *record;
	struct hlist_node *tmp;
	unsigned int bkt;

	hash_for_each_safe(lpshim_exit_registry, bkt, tmp, record, node) {
		hash_del(&record->node);
		kmem_cache_free(lpshim_exit_record_cache, record);
	}
	kmem_cache_destroy(lpshim_exit_record_cache);
}

int lpshim_task_state_init(void)
{
	int cpu, i, ret;

	/* Created at boot for every possible CPU; they never change. */
	for_each_possible_cpu(cpu)
		per_cpu(lpshim_idle_task, cpu) = lpshim_ksyms.idle_task(cpu);

	lpshim_task_cache = KMEM_CACHE(lpshim_task, 0);
	lpshim_exit_record_cache = KMEM_CACHE(lpshim_exit_record, 0);
	if (!lpshim_task_cache || !lpshim_exit_record_cache) {
		ret = -ENOMEM;
		goto err;
	}
	for (i = 0; i < ARRAY_SIZE(lpshim_task_probes); i++) {
		ret = tracepoint_probe_register(*lpshim_task_probes[i].tp,
						lpshim_task_probes[i].probe, NULL);
		if (ret) {
			lpshim_unregister_task_probes(i);
			goto err;
		}
	}
	lpshim_exit_registry_fill();
	return 0;
err:
	/* Empty: the exit probe, registered last, recorded nothing; this also destroys its cache. */
	if (lpshim_exit_record_cache)
		lpshim_exit_registry_destroy();
	kmem_cache_destroy(lpshim_task_cache);
	return ret;
}

void lpshim_task_state_exit(void)
{
	lpshim_unregister_task_probes(ARRAY_SIZE(lpshim_task_probes));
	/* A table's RCU callback is lpshim's code, and frees into the cache: wait for the last. */
	rcu_barrier();
	kmem_cache_destroy(lpshim_task_cache);
	lpshim_exit_registry_destroy();
}
