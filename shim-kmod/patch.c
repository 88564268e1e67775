// SPDX-License-Identifier: GPL-2.0-only
/*
 * patch.c - redirect patched functions through ftrace; a func_stack per function
 *
 * One ftrace_ops serves all of lpshim. Its filter holds the ftrace location (ip) of every
 * function some enabled patch replaces; adding or removing functions is one filter update per
 * patch, not one per function (registering an ftrace_ops costs ~10 ms and unregistering one
 * 50-115 ms under TCG). The handler finds the function by ip: in lpshim_top, an index that
 * gives the top of the func_stack in one load, else in the hash table of lpshim_ops.
 *
 * Each lpshim_ops has a func_stack: the lpshim_funcs of every patch that replaces that function,
 * newest first. The newest wins, so disabling the top patch brings back the previous patch's
 * version, not the original. During a transition the handler may use the entry below the top
 * for tasks that have not switched yet (transition.c).
 *
 * FTRACE_OPS_FL_IPMODIFY is exclusive per function: a function that upstream livepatch or a
 * kprobe with a post handler already redirects is refused with EBUSY, and they are refused on
 * ours. FTRACE_OPS_FL_PERMANENT makes ftrace refuse kernel.ftrace_enabled=0 while a function is
 * patched (and refuse our registration while it is 0), as for upstream livepatch.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/ftrace.h>
#include <linux/hashtable.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/version.h>
#include <linux/workqueue.h>

#include "core.h"
#include "debug.h"
#include "ksyms.h"
#include "patch.h"
#include "transition.h"

/**
 * struct lpshim_ops - one patched function
 * @node:	entry in lpshim_ops_table
 * @ip:		the function's ftrace location, the hash key
 * @func_stack:	lpshim_func.stack_node of each patch replacing it, newest first
 *
 * Writers hold lpshim_mutex; the handler reads @node and @func_stack locklessly in its
 * preemption-disabled region, so an lpshim_ops is freed only after lpshim_synchronize().
 */
struct lpshim_ops {
	struct hlist_node node;
	unsigned long ip;
	struct list_head func_stack;
};

#define LPSHIM_OPS_HASH_BITS 10
static DEFINE_HASHTABLE(lpshim_ops_table, LPSHIM_OPS_HASH_BITS);
/* Number of entries in lpshim_ops_table, i.e. of ips in lpshim_fops' filter. lpshim_mutex. */
static unsigned int lpshim_nr_ops;

/*
 * The handler's index: one slot per bucket of lpshim_ops_table, holding the top of the
 * func_stack of the first lpshim_ops in that bucket, or lpshim_no_top. The handler takes the
 * slot's function when its ip is the one called: one load, where the table costs the bucket,
 * the lpshim_ops and its func_stack, against upstream's one ftrace_ops per function. For
 * another function of the same bucket it falls back to the table.
 *
 * Written under lpshim_mutex by lpshim_index_refresh() after every change to a func_stack or
 * a bucket, before the lpshim_synchronize() that lets a removed function's memory go, so a
 * slot only ever shows a function that is, or was in this grace period, on top of its stack.
 *
 * lpshim_no_top is an empty slot's function: its ip, 0, is no ftrace location, so the
 * handler's one check of the ip also covers an empty slot (a branch fewer on every call).
 */
static struct lpshim_func lpshim_no_top;
static struct lpshim_func __rcu *lpshim_top[1 << LPSHIM_OPS_HASH_BITS] = {
	[0 ... (1 << LPSHIM_OPS_HASH_BITS) - 1] = RCU_INITIALIZER(&lpshim_no_top),
};

static void lpshim_ftrace_handler(unsigned long ip, unsigned long parent_ip,
				  struct ftrace_ops *fops, struct ftrace_regs *fregs);

static struct ftrace_ops lpshim_fops = {
	.func = lpshim_ftrace_handler,
	.flags = FTRACE_OPS_FL_DYNAMIC | FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT
#ifndef CONFIG_DYNAMIC_FTRACE_WITH_ARGS
		 | FTRACE_OPS_FL_SAVE_REGS
#endif
	,
};
/* lpshim_fops is registered with ftrace, i.e. lpshim_nr_ops > 0. lpshim_mutex. */
static bool lpshim_fops_registered;

static __always_inline unsigned int lpshim_bucket(unsigned long ip)
{
	return hash_min(ip, LPSHIM_OPS_HASH_BITS);
}

static __always_inline struct lpshim_ops *lpshim_find_ops_rcu(unsigned long ip)
{
	struct lpshim_ops *ops;

	hash_for_each_possible_rcu_notrace(lpshim_ops_table, ops, node, ip)
		if (ops->ip == ip)
			return ops;
	return NULL;
}

static __always_inline void lpshim_set_ip(struct ftrace_regs *fregs, unsigned long ip)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
	ftrace_instruction_pointer_set(fregs, ip);
#else
	ftrace_regs_set_instruction_pointer(fregs, ip);
#endif
}

/*
 * Runs at the entry of every patched function, in any context, possibly where RCU is not
 * watching. The recursion lock disables preemption: that region is the read side that
 * lpshim_synchronize() waits for. It must call nothing that ftrace traces.
 */
static void notrace lpshim_ftrace_handler(unsigned long ip, unsigned long parent_ip,
					  struct ftrace_ops *fops, struct ftrace_regs *fregs)
{
	struct lpshim_ops *ops;
	struct lpshim_func *func;
	unsigned long redirect;
	int bit;

	bit = ftrace_test_recursion_trylock(ip, parent_ip);
	if (WARN_ON_ONCE(bit < 0))
		return;

	func = rcu_dereference_raw_check(lpshim_top[lpshim_bucket(ip)]);
	if (unlikely(func->ip != ip)) {
		ops = lpshim_find_ops_rcu(ip);
		/*
		 * A function with no lpshim_ops has no patch left or none yet: a task preempted in
		 * the ftrace trampoline may get here after it left the filter and the table
		 * (lpshim_unpatch_funcs()), and a function joins the filter before its
		 * lpshim_ops is published (lpshim_patch_funcs()). The original is right.
		 */
		if (unlikely(!ops))
			goto unlock;
		func = list_first_or_null_rcu(&ops->func_stack, struct lpshim_func, stack_node);
		if (WARN_ON_ONCE(!func))
			goto unlock;
	}
	lpshim_debug_delay_after_top(func);

	/*
	 * Read func->redirect after the top of the func_stack (from lpshim_top or the stack).
	 * Pairs with the smp_wmb() in lpshim_patch_funcs() (marked in transition before the func
	 * is pushed), so a function being pushed is never taken for a settled one. One being
	 * popped is not either: lpshim_complete_transition() waits for this handler before
	 * settling it.
	 */
	smp_rmb();
	/* One load says both whether @func is in transition and, if not, where to go. */
	redirect = READ_ONCE(func->redirect);
	if (unlikely(redirect == LPSHIM_REDIRECT_TRANSITION)) {
		/*
		 * Read the task's state after the mark. Pairs with the smp_wmb() in
		 * lpshim_init_transition(): the states are initialised before any function is
		 * marked in transition.
		 */
		smp_rmb();
		if (lpshim_current_patch_state() == LPSHIM_UNPATCHED) {
			/* This task still runs what the transition's patch replaces. */
			struct list_head *stack = &func->ops->func_stack;

			func = list_entry_rcu(func->stack_node.next, struct lpshim_func, stack_node);
			if (&func->stack_node == stack)
				goto unlock;	/* the original */
		}
		redirect = lpshim_func_target(func);
	}

	/* 0: a NOP, which stands for the original. */
	if (likely(redirect))
		lpshim_set_ip(fregs, redirect);
unlock:
	ftrace_test_recursion_unlock(bit);
	lpshim_debug_sleep_after_choice(ip);
}

/*
 * lpshim_synchronize() makes every online CPU run a no-op work, as upstream livepatch's
 * klp_synchronize_transition() does: a CPU that schedules has left any preemption-disabled
 * region, so every handler that started before has returned. synchronize_rcu_tasks_rude() is
 * not enough: 6.12 builds it as a no-op on x86 (ARCH_WANTS_NO_INSTR), and on 6.1 each of its
 * grace periods starts at least 100 ms after the previous one ended.
 * The works are lpshim_mutex's: every caller holds it.
 */
static DEFINE_PER_CPU(struct work_struct, lpshim_sync_work);

static void lpshim_sync_fn(struct work_struct *work)
{
}

void lpshim_synchronize(void)
{
	int cpu;

	lockdep_assert_held(&lpshim_mutex);
	/* No CPU comes online between queueing and flushing: an offline CPU runs no handler. */
	cpus_read_lock();
	for_each_online_cpu(cpu) {
		struct work_struct *work = per_cpu_ptr(&lpshim_sync_work, cpu);

		INIT_WORK(work, lpshim_sync_fn);
		schedule_work_on(cpu, work);
	}
	for_each_online_cpu(cpu)
		flush_work(per_cpu_ptr(&lpshim_sync_work, cpu));
	cpus_read_unlock();
}

static struct lpshim_ops *lpshim_find_ops(unsigned long ip)
{
	struct lpshim_ops *ops;

	lockdep_assert_held(&lpshim_mutex);
	hash_for_each_possible(lpshim_ops_table, ops, node, ip)
		if (ops->ip == ip)
			return ops;
	return NULL;
}

/* Point the slot of @ip's bucket at the top of the bucket's first func_stack. */
static void lpshim_index_refresh(unsigned long ip)
{
	unsigned int bucket = lpshim_bucket(ip);
	struct lpshim_ops *first;
	struct lpshim_func *top = NULL;

	lockdep_assert_held(&lpshim_mutex);
	first = hlist_entry_safe(lpshim_ops_table[bucket].first, struct lpshim_ops, node);
	if (first)
		top = list_first_entry_or_null(&first->func_stack, struct lpshim_func, stack_node);
	/* Publishes the function's fields and its mark, ->redirect (see lpshim_patch_funcs()). */
	rcu_assign_pointer(lpshim_top[bucket], top ?: &lpshim_no_top);
}

/* Add @nr ips to the filter of lpshim_fops and register it if it was not; one ftrace update. */
static int lpshim_ftrace_add(unsigned long *ips, unsigned int nr)
{
	int ret;

	ret = ftrace_set_filter_ips(&lpshim_fops, ips, nr, 0, 0);
	if (ret || lpshim_fops_registered)
		return ret;
	ret = register_ftrace_function(&lpshim_fops);
	if (ret) {
		WARN_ON_ONCE(ftrace_set_filter_ips(&lpshim_fops, ips, nr, 1, 0));
		return ret;
	}
	lpshim_fops_registered = true;
	return 0;
}

/* Remove @nr ips from lpshim_fops; unregister it when they were the last. */
static void lpshim_ftrace_remove(unsigned long *ips, unsigned int nr, bool last)
{
	/*
	 * An ops with an empty filter would trace every function: unregister first when the
	 * filter is about to become empty.
	 */
	if (last) {
		WARN_ON_ONCE(unregister_ftrace_function(&lpshim_fops));
		lpshim_fops_registered = false;
	}
	WARN_ON_ONCE(ftrace_set_filter_ips(&lpshim_fops, ips, nr, 1, 0));
}

/*
 * The batch was refused with EBUSY: find which function conflicts with another ftrace user,
 * so the message can name it. Bisect with a probe ops that also asks for IPMODIFY; every probe
 * costs a register and an unregister, hence not one per function.
 */
static void notrace lpshim_probe_handler(unsigned long ip, unsigned long parent_ip,
					 struct ftrace_ops *fops, struct ftrace_regs *fregs)
{
}

static unsigned long lpshim_find_conflict(unsigned long *ips, unsigned int nr)
{
	struct ftrace_ops probe = {
		.func = lpshim_probe_handler,
		.flags = FTRACE_OPS_FL_IPMODIFY
#ifndef CONFIG_DYNAMIC_FTRACE_WITH_ARGS
			 | FTRACE_OPS_FL_SAVE_REGS
#endif
		,
	};
	unsigned int lo = 0, hi = nr, mid;
	bool busy;

	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (ftrace_set_filter_ips(&probe, ips + lo, mid - lo, 0, 1))
			break;
		busy = register_ftrace_function(&probe) == -EBUSY;
		if (!busy)
			unregister_ftrace_function(&probe);
		if (busy)
			hi = mid;
		else
			lo = mid;
	}
	ftrace_free_filter(&probe);
	return ips[lo];
}

static struct lpshim_func *lpshim_func_of_ip(struct lpshim_func **funcs, unsigned int nr,
					     unsigned long ip)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (funcs[i]->ip == ip)
			return funcs[i];
	return funcs[0];
}

static void lpshim_report_ftrace_error(struct lpshim_func **funcs, unsigned int nr,
				       unsigned long *ips, unsigned int nr_ips, int err)
{
	struct lpshim_func *func;

	if (err == -EBUSY && !READ_ONCE(*lpshim_ksyms.ftrace_enabled)) {
		pr_err("cannot redirect functions: ftrace is disabled (kernel.ftrace_enabled=0)\n");
		return;
	}
	if (err == -EBUSY) {
		func = lpshim_func_of_ip(funcs, nr, lpshim_find_conflict(ips, nr_ips));
		pr_err("function '%s' is already redirected by another ftrace user (upstream livepatch, or a kprobe with a post handler)\n",
		       func->old_name);
		return;
	}
	pr_err("failed to register ftrace handler for function '%s' (%d)\n", funcs[0]->old_name,
	       err);
}

/* The new lpshim_ops of @ip among the first @nr of @new_ops, or NULL. */
static struct lpshim_ops *lpshim_find_new_ops(struct lpshim_ops **new_ops, unsigned int nr,
					      unsigned long ip)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (new_ops[i]->ip == ip)
			return new_ops[i];
	return NULL;
}

/*
 * Nothing a handler can see changes until nothing can fail any more: the ips that no patch
 * redirected yet join the filter first, while the handler finds no lpshim_ops for them (and
 * lets their calls run the original); only then are the functions pushed and the new
 * lpshim_ops published. A failed enable therefore never made its code reachable, which matters
 * for an immediate function: nothing would keep a task from entering it.
 */
int lpshim_patch_funcs(struct lpshim_func **funcs, unsigned int nr)
{
	struct lpshim_ops *ops, **new_ops;
	unsigned long *ips;
	unsigned int i, nr_new = 0;
	int ret = 0;

	lockdep_assert_held(&lpshim_mutex);
	if (!nr)
		return 0;

	new_ops = kcalloc(nr, sizeof(*new_ops), GFP_KERNEL);
	ips = kcalloc(nr, sizeof(*ips), GFP_KERNEL);
	if (!new_ops || !ips) {
		ret = -ENOMEM;
		goto out;
	}

	for (i = 0; i < nr; i++) {
		struct lpshim_func *func = funcs[i];

		if (WARN_ON_ONCE(func->patched || !func->ip)) {
			ret = -EINVAL;
			goto free_new;
		}
		if (lpshim_find_ops(func->ip) || lpshim_find_new_ops(new_ops, nr_new, func->ip))
			continue;
		ops = kzalloc(sizeof(*ops), GFP_KERNEL);
		if (!ops) {
			ret = -ENOMEM;
			goto free_new;
		}
		ops->ip = func->ip;
		INIT_LIST_HEAD(&ops->func_stack);
		new_ops[nr_new] = ops;
		ips[nr_new++] = ops->ip;
	}

	if (nr_new) {
		ret = lpshim_ftrace_add(ips, nr_new);
		if (ret) {
			lpshim_report_ftrace_error(funcs, nr, ips, nr_new, ret);
			goto free_new;
		}
		lpshim_nr_ops += nr_new;
	}

	/*
	 * Make the func's mark (->redirect, set by lpshim_init_transition()) visible before the
	 * func can be seen on a func_stack. Pairs with the first smp_rmb() in
	 * lpshim_ftrace_handler().
	 */
	smp_wmb();

	for (i = 0; i < nr; i++) {
		struct lpshim_func *func = funcs[i];

		ops = lpshim_find_ops(func->ip);
		if (!ops) {
			/* A new one: its stack is not empty when the handler can find it. */
			ops = lpshim_find_new_ops(new_ops, nr_new, func->ip);
			list_add_rcu(&func->stack_node, &ops->func_stack);
			hash_add_rcu(lpshim_ops_table, &ops->node, ops->ip);
		} else {
			list_add_rcu(&func->stack_node, &ops->func_stack);
		}
		func->ops = ops;
		func->patched = true;
		lpshim_index_refresh(func->ip);
	}
	goto out;

free_new:
	for (i = 0; i < nr_new; i++)
		kfree(new_ops[i]);
out:
	kfree(new_ops);
	kfree(ips);
	return ret;
}

void lpshim_unpatch_funcs(struct lpshim_func **funcs, unsigned int nr)
{
	struct lpshim_ops *ops, **gone;
	unsigned long *ips;
	unsigned int i, nr_gone = 0;

	lockdep_assert_held(&lpshim_mutex);
	if (!nr)
		return;

	/* Unpatching must not fail: fall back to one function at a time if memory is short. */
	gone = kcalloc(nr, sizeof(*gone), GFP_KERNEL | __GFP_NOFAIL);
	ips = kcalloc(nr, sizeof(*ips), GFP_KERNEL | __GFP_NOFAIL);

	for (i = 0; i < nr; i++) {
		struct lpshim_func *func = funcs[i];

		if (!func->patched)
			continue;
		ops = lpshim_find_ops(func->ip);
		if (WARN_ON_ONCE(!ops))
			continue;
		func->patched = false;
		if (list_is_singular(&ops->func_stack)) {
			/* Leaves ftrace first: the handler must never find an empty stack. */
			gone[nr_gone] = ops;
			ips[nr_gone++] = ops->ip;
			continue;
		}
		list_del_rcu(&func->stack_node);
	}

	if (nr_gone) {
		lpshim_ftrace_remove(ips, nr_gone, nr_gone == lpshim_nr_ops);
		lpshim_nr_ops -= nr_gone;
		for (i = 0; i < nr_gone; i++)
			hash_del_rcu(&gone[i]->node);
	}
	for (i = 0; i < nr; i++)
		lpshim_index_refresh(funcs[i]->ip);
	if (nr_gone) {
		lpshim_synchronize();
		/* Unreachable now: the last func leaves the stack without readers to see it empty. */
		for (i = 0; i < nr_gone; i++) {
			list_del(gone[i]->func_stack.next);
			kfree(gone[i]);
		}
	}
	kfree(gone);
	kfree(ips);
}

void lpshim_func_prev_impl(struct lpshim_func *func, unsigned long *addr, unsigned long *size)
{
	struct lpshim_func *prev;

	*addr = func->old_func;
	*size = func->old_size;
	if (WARN_ON_ONCE(!func->patched) || func->stack_node.next == &func->ops->func_stack)
		return;
	prev = list_entry(func->stack_node.next, struct lpshim_func, stack_node);
	if (!prev->nop) {
		*addr = (unsigned long)prev->new_func;
		*size = prev->new_size;
	}
}

void lpshim_patch_exit(void)
{
	WARN_ON_ONCE(lpshim_nr_ops || lpshim_fops_registered);
	ftrace_free_filter(&lpshim_fops);
}
