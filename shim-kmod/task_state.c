// SPDX-License-Identifier: GPL-2.0-only
/*
 * task_state.c - the table of per-task patch states of a transition (task_state.h)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

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

	spin_lock_irqsave(&table->lock, flags);
	entry = list_first_entry_or_null(&table->pool, struct lpshim_task, list);
	if (entry) {
		list_del(&entry->list);
		table->nr_pool--;
		table->nr_taken++;
	}
	spin_unlock_irqrestore(&table->lock, flags);
	if (entry || !gfp)
		return entry;

	entry = kmem_cache_alloc(lpshim_task_cache, gfp);
	if (entry) {
		spin_lock_irqsave(&table->lock, flags);
		table->nr_entries++;
		table->nr_entries_peak = max(table->nr_entries, table->nr_entries_peak);
		table->nr_taken++;
		spin_unlock_irqrestore(&table->lock, flags);
	}
	return entry;
}

static void lpshim_task_put_locked(struct lpshim_task_table *table, struct lpshim_task *entry)
{
	list_add(&entry->list, &table->pool);
	table->nr_pool++;
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
			WRITE_ONCE(old->state, state);
		lpshim_task_put_locked(table, entry);
		return old;
	}
	entry->task = task;
	entry->state = state;
	entry->reason = LPSHIM_BLOCK_NONE;
	entry->work_queued = false;
	entry->exiting = false;
	entry->blocked_func = 0;
	INIT_LIST_HEAD(&entry->list);
	/* Publishes the fields: no reader can still see @entry from a previous use. */
	hlist_add_head_rcu(&entry->node, &table->buckets[hash_ptr(task, table->bits)]);
	return entry;
}

struct lpshim_task *lpshim_task_table_adopt(struct lpshim_task_table *table,
					    struct task_struct *task)
{
	struct lpshim_task *entry = lpshim_task_get(table, 0);
	unsigned long flags;

	if (!entry)
		return NULL;
	spin_lock_irqsave(&table->lock, flags);
	entry = lpshim_task_insert_locked(table, task, entry, READ_ONCE(table->orphan_state),
					  false);
	spin_unlock_irqrestore(&table->lock, flags);
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
	state = lpshim_task_patch_state(table, current);
	entry = lpshim_debug_fail_task_alloc(current) ? NULL :
		lpshim_task_get(table, GFP_ATOMIC | __GFP_NOWARN);

	spin_lock_irqsave(&table->lock, flags);
	if (entry) {
		/* A pass that saw the task on the list may have recorded it: it has not run. */
		lpshim_task_insert_locked(table, task, entry, state, true);
	} else {
		old = lpshim_task_lookup(table, task);
		if (old)
			WRITE_ONCE(old->state, state);
		else
			table->nr_lost++;
	}
	spin_unlock_irqrestore(&table->lock, flags);
	if (state == READ_ONCE(lpshim_target_state) && (entry || old))
		trace_lpshim_task_switch(task->pid, state, LPSHIM_SWITCH_FORK);
}

/*
 * A task exits (sched_process_exit, current, still on the task list): release_task() will take
 * it off the list while it still runs the end of do_exit(), out of the passes' sight; its entry
 * goes on the exiting list, where they look too. An orphan gets an entry first; one that cannot
 * have one is remembered until it is freed, and the orphan state stays what it is meanwhile.
 */
static void lpshim_exit_probe(void *data, struct task_struct *task)
{
	struct lpshim_task_table *table = rcu_dereference_sched(lpshim_tasks);
	struct lpshim_task *entry, *new = NULL;
	unsigned long flags;
	int i;

	if (!table)
		return;
	if (!lpshim_task_lookup(table, task))
		new = lpshim_task_get(table, GFP_ATOMIC | __GFP_NOWARN);

	spin_lock_irqsave(&table->lock, flags);
	entry = lpshim_task_lookup(table, task);
	if (!entry && new) {
		entry = lpshim_task_insert_locked(table, task, new, READ_ONCE(table->orphan_state),
						  false);
	} else if (new) {
		lpshim_task_put_locked(table, new);
	}
	if (entry) {
		if (!entry->exiting) {
			entry->exiting = true;
			list_add(&entry->list, &table->exiting);
			table->nr_exiting++;
		}
	} else {
		for (i = 0; i < LPSHIM_UNTRACKED_EXITS && table->untracked_exits[i]; i++)
			;
		if (i < LPSHIM_UNTRACKED_EXITS)
			table->untracked_exits[i] = task;
		else
			table->untracked_overflow = true;
	}
	spin_unlock_irqrestore(&table->lock, flags);
}

/*
 * The task is gone for good (an RCU callback after its last schedule and release_task()): its
 * pointer may now be reused. Its entry waits in the graveyard for readers to be done with it.
 */
static void lpshim_free_probe(void *data, struct task_struct *task)
{
	struct lpshim_task_table *table = rcu_dereference_sched(lpshim_tasks);
	struct lpshim_task *entry;
	unsigned long flags;
	int i;

	if (!table)
		return;
	spin_lock_irqsave(&table->lock, flags);
	entry = lpshim_task_lookup(table, task);
	if (entry) {
		hlist_del_rcu(&entry->node);
		if (entry->exiting) {
			list_del(&entry->list);
			table->nr_exiting--;
		}
		list_add(&entry->list, &table->graveyard);
		table->nr_graveyard++;
	} else {
		for (i = 0; i < LPSHIM_UNTRACKED_EXITS; i++)
			if (table->untracked_exits[i] == task)
				table->untracked_exits[i] = NULL;
	}
	spin_unlock_irqrestore(&table->lock, flags);
}

void lpshim_task_table_refill(struct lpshim_task_table *table)
{
	struct lpshim_task *entry, *tmp;
	unsigned int n, want, have;
	LIST_HEAD(reclaim);
	LIST_HEAD(excess);

	lockdep_assert_held(&lpshim_mutex);
	spin_lock_irq(&table->lock);
	list_splice_init(&table->graveyard, &reclaim);
	n = table->nr_graveyard;
	table->nr_graveyard = 0;
	want = max(LPSHIM_POOL_MIN, table->nr_taken);
	table->nr_taken = 0;
	spin_unlock_irq(&table->lock);

	if (n) {
		/* No handler, probe or switch point may still walk past them. */
		lpshim_synchronize();
		spin_lock_irq(&table->lock);
		list_splice(&reclaim, &table->pool);
		table->nr_pool += n;
		spin_unlock_irq(&table->lock);
	}

	for (have = READ_ONCE(table->nr_pool); have < want; have++) {
		entry = kmem_cache_alloc(lpshim_task_cache, GFP_KERNEL | __GFP_NOWARN);
		if (!entry)
			break;	/* the pass leaves what it cannot record pending */
		spin_lock_irq(&table->lock);
		lpshim_task_put_locked(table, entry);
		table->nr_entries++;
		table->nr_entries_peak = max(table->nr_entries, table->nr_entries_peak);
		spin_unlock_irq(&table->lock);
	}

	spin_lock_irq(&table->lock);
	while (table->nr_pool > 2 * want) {
		entry = list_first_entry(&table->pool, struct lpshim_task, list);
		list_move(&entry->list, &excess);
		table->nr_pool--;
		table->nr_entries--;
	}
	spin_unlock_irq(&table->lock);
	list_for_each_entry_safe(entry, tmp, &excess, list)
		kmem_cache_free(lpshim_task_cache, entry);
}

unsigned int lpshim_task_table_exiting(struct lpshim_task_table *table, int target,
				       struct task_struct **tasks, unsigned int max)
{
	struct lpshim_task *entry;
	unsigned int n = 0;
	unsigned long flags;

	spin_lock_irqsave(&table->lock, flags);
	list_for_each_entry(entry, &table->exiting, list) {
		if (n == max)
			break;
		/* The free probe unlinks it under this lock before the task can go. */
		if (READ_ONCE(entry->state) != target)
			tasks[n++] = get_task_struct(entry->task);
	}
	spin_unlock_irqrestore(&table->lock, flags);
	return n;
}

bool lpshim_task_table_settle_orphans(struct lpshim_task_table *table, int target)
{
	bool settled;
	int i;

	if (READ_ONCE(table->orphan_state) == target)
		return true;
	spin_lock_irq(&table->lock);
	settled = !table->untracked_overflow;
	for (i = 0; i < LPSHIM_UNTRACKED_EXITS && settled; i++)
		settled = !table->untracked_exits[i];
	if (settled)
		WRITE_ONCE(table->orphan_state, target);
	spin_unlock_irq(&table->lock);
	return settled;
}

unsigned int lpshim_task_table_force(struct lpshim_task_table *table, int target)
{
	struct lpshim_task *entry;
	unsigned int i, forced = 0;

	spin_lock_irq(&table->lock);
	for (i = 0; i < (1U << table->bits); i++) {
		hlist_for_each_entry(entry, &table->buckets[i], node) {
			if (entry->state == target)
				continue;
			WRITE_ONCE(entry->state, target);
			trace_lpshim_task_switch(entry->task->pid, target, LPSHIM_SWITCH_FORCE);
			forced++;
		}
	}
	WRITE_ONCE(table->orphan_state, target);
	spin_unlock_irq(&table->lock);
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
	spin_lock_init(&table->lock);
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
	spin_lock_irq(&table->lock);
	for (i = 0; i < LPSHIM_UNTRACKED_EXITS; i++)
		untracked += !!table->untracked_exits[i];
	seq_printf(m, "transition %s\norphan_state %d\nentries %u\nentries_peak %u\nentry_size %u\n"
		   "pool %u\nexiting %u\ngraveyard %u\nlost %lu\nuntracked_exits %u%s\n",
		   lpshim_state_name(lpshim_target_state), table->orphan_state, table->nr_entries,
		   table->nr_entries_peak, kmem_cache_size(lpshim_task_cache), table->nr_pool,
		   table->nr_exiting, table->nr_graveyard, table->nr_lost, untracked,
		   table->untracked_overflow ? "+" : "");
	spin_unlock_irq(&table->lock);
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
	{ &lpshim_ksyms.tp_task_newtask, lpshim_newtask_probe },
	{ &lpshim_ksyms.tp_sched_process_exit, lpshim_exit_probe },
	{ &lpshim_ksyms.tp_sched_process_free, lpshim_free_probe },
};

static void lpshim_unregister_task_probes(int n)
{
	while (n--)
		tracepoint_probe_unregister(*lpshim_task_probes[n].tp, lpshim_task_probes[n].probe,
					    NULL);
	tracepoint_synchronize_unregister();
}

int lpshim_task_state_init(void)
{
	int cpu, i, ret;

	/* Created at boot for every possible CPU; they never change. */
	for_each_possible_cpu(cpu)
		per_cpu(lpshim_idle_task, cpu) = lpshim_ksyms.idle_task(cpu);

	lpshim_task_cache = KMEM_CACHE(lpshim_task, 0);
	if (!lpshim_task_cache)
		return -ENOMEM;
	for (i = 0; i < ARRAY_SIZE(lpshim_task_probes); i++) {
		ret = tracepoint_probe_register(*lpshim_task_probes[i].tp,
						lpshim_task_probes[i].probe, NULL);
		if (ret) {
			lpshim_unregister_task_probes(i);
			kmem_cache_destroy(lpshim_task_cache);
			return ret;
		}
	}
	return 0;
}

void lpshim_task_state_exit(void)
{
	lpshim_unregister_task_probes(ARRAY_SIZE(lpshim_task_probes));
	/* A table's RCU callback is lpshim's code, and frees into the cache: wait for the last. */
	rcu_barrier();
	kmem_cache_destroy(lpshim_task_cache);
}
