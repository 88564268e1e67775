// SPDX-License-Identifier: GPL-2.0-only
/*
 * task_state.c - the table of per-task patch states of a transition (task_state.h)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/log2.h>
#include <linux/sched/signal.h>
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

static struct lpshim_task_table *lpshim_table_locked(void)
{
	return rcu_dereference_protected(lpshim_tasks, lockdep_is_held(&lpshim_mutex));
}

/*
 * A child gets its parent's state before it can run: kernel_clone() fires sched_process_fork
 * before wake_up_new_task(). A child created before the table was published has no entry and
 * counts as switched (see lpshim_task_patch_state()).
 */
static void lpshim_fork_probe(void *data, struct task_struct *parent, struct task_struct *child)
{
	struct lpshim_task_table *table = rcu_dereference_sched(lpshim_tasks);
	struct lpshim_task *entry, *old;
	int target = READ_ONCE(lpshim_target_state);
	unsigned long flags;

	if (!table)
		return;
	entry = lpshim_debug_fail_task_alloc(parent) ? NULL :
		kzalloc(sizeof(*entry), GFP_ATOMIC | __GFP_NOWARN);
	if (!entry)
		return;		/* counts as switched: it has run nothing yet */
	entry->task = child;
	entry->state = lpshim_task_patch_state(parent, target);

	spin_lock_irqsave(&table->lock, flags);
	old = lpshim_task_lookup(table, child);
	if (old) {
		WRITE_ONCE(old->state, entry->state);
		kfree(entry);
		entry = old;
	} else {
		hlist_add_head_rcu(&entry->node, &table->buckets[hash_ptr(child, table->bits)]);
	}
	spin_unlock_irqrestore(&table->lock, flags);
	if (entry->state == target)
		trace_lpshim_task_switch(child->pid, target, LPSHIM_SWITCH_FORK);
}

/* The task is gone for good (an RCU callback): its pointer may now be reused. */
static void lpshim_free_probe(void *data, struct task_struct *task)
{
	struct lpshim_task_table *table = rcu_dereference_sched(lpshim_tasks);
	struct lpshim_task *entry;
	unsigned long flags;

	if (!table)
		return;
	spin_lock_irqsave(&table->lock, flags);
	entry = lpshim_task_lookup(table, task);
	if (entry) {
		hlist_del_rcu(&entry->node);
		list_add(&entry->graveyard, &table->graveyard);
	}
	spin_unlock_irqrestore(&table->lock, flags);
}

static void lpshim_free_entry(struct lpshim_task_table *table, struct lpshim_task *entry)
{
	if (entry < table->entries || entry >= table->entries + table->nr_entries)
		kfree(entry);
}

static void lpshim_free_table(struct lpshim_task_table *table)
{
	struct lpshim_task *entry, *tmp;
	struct hlist_node *n;
	unsigned int i;

	for (i = 0; i < (1U << table->bits); i++)
		hlist_for_each_entry_safe(entry, n, &table->buckets[i], node)
			lpshim_free_entry(table, entry);
	list_for_each_entry_safe(entry, tmp, &table->graveyard, graveyard)
		lpshim_free_entry(table, entry);
	kvfree(table->entries);
	kvfree(table);
}

/* An RCU callback: entries are few besides @entries, and vfree() defers itself from softirq. */
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

/*
 * Fill @table with an entry in state @state for every task, from its preallocated entries
 * (nothing can be allocated under tasklist_lock). Return false when they ran out.
 */
static bool lpshim_fill_table(struct lpshim_task_table *table, int state)
{
	struct task_struct *g, *t;
	struct lpshim_task *entry;
	unsigned int used = 0;
	bool enough = true;

	read_lock(lpshim_ksyms.tasklist_lock);
	for_each_process_thread(g, t) {
		if (used == table->nr_entries) {
			enough = false;
			break;
		}
		entry = &table->entries[used++];
		entry->task = t;
		entry->state = state;
		hlist_add_head(&entry->node, &table->buckets[hash_ptr(t, table->bits)]);
	}
	read_unlock(lpshim_ksyms.tasklist_lock);
	return enough;
}

int lpshim_task_table_create(int target)
{
	struct lpshim_task_table *table;
	unsigned int n, bits;
	int cpu;

	lockdep_assert_held(&lpshim_mutex);
	if (WARN_ON_ONCE(lpshim_table_locked()))
		return -EBUSY;
retry:
	n = lpshim_count_tasks();
	n += n / 8 + 64;	/* tasks forked while the entries are allocated */
	bits = ilog2(roundup_pow_of_two(2 * n));
	table = kvzalloc(struct_size(table, buckets, 1U << bits), GFP_KERNEL);
	if (!table)
		return -ENOMEM;
	table->entries = kvcalloc(n, sizeof(*table->entries), GFP_KERNEL);
	if (!table->entries) {
		kvfree(table);
		return -ENOMEM;
	}
	table->nr_entries = n;
	table->bits = bits;
	spin_lock_init(&table->lock);
	INIT_LIST_HEAD(&table->graveyard);
	if (!lpshim_fill_table(table, !target)) {
		lpshim_free_table(table);
		goto retry;
	}

	for_each_possible_cpu(cpu)
		per_cpu(lpshim_idle_state, cpu) = !target;
	lpshim_debug_table_delay();

	/*
	 * Publish the filled table (and the idle states) before any function is marked in
	 * transition. The smp_wmb() in lpshim_init_transition() orders this store before those
	 * marks; it pairs with the second smp_rmb() in lpshim_ftrace_handler().
	 */
	rcu_assign_pointer(lpshim_tasks, table);
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

/*
 * The fork and free probes stay registered while lpshim is loaded and return at once outside
 * a transition: registering them per transition rewrote hot kernel code (their tracepoints'
 * jump labels) at every transition, and on 6.12 under TCG a CPU then executed a stale int3.
 */
int lpshim_task_state_init(void)
{
	int ret;

	ret = tracepoint_probe_register(lpshim_ksyms.tp_sched_process_fork, lpshim_fork_probe, NULL);
	if (ret)
		return ret;
	ret = tracepoint_probe_register(lpshim_ksyms.tp_sched_process_free, lpshim_free_probe, NULL);
	if (ret) {
		tracepoint_probe_unregister(lpshim_ksyms.tp_sched_process_fork, lpshim_fork_probe,
					    NULL);
		tracepoint_synchronize_unregister();
	}
	return ret;
}

void lpshim_task_state_exit(void)
{
	tracepoint_probe_unregister(lpshim_ksyms.tp_sched_process_fork, lpshim_fork_probe, NULL);
	tracepoint_probe_unregister(lpshim_ksyms.tp_sched_process_free, lpshim_free_probe, NULL);
	tracepoint_synchronize_unregister();
	/* A table's RCU callback is lpshim's code: wait until the last one has returned. */
	rcu_barrier();
}
