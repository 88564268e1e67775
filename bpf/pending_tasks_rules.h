/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The pending map's rules, as pure functions of an entry (or none) and the event: the BPF
 * programs of pending_tasks.bpf.c act on what they return, and tests/unit/test_pending_tasks
 * drives them through the races of bpf/pending_tasks.bpf.c's top comment, in plain C++.
 */
#ifndef LIVEPATCHD_BPF_PENDING_TASKS_RULES_H
#define LIVEPATCHD_BPF_PENDING_TASKS_RULES_H

#include "pending_tasks.h"

#ifdef __bpf__
#define PENDING_RULE static __always_inline
#else
#define PENDING_RULE static inline
#endif

enum pending_step {
	PENDING_STEP_NONE,      /* leave the map as it is */
	PENDING_STEP_UPDATE,    /* update the entry in place (reason, function, pass) */
	PENDING_STEP_INSERT,    /* a fresh entry, first seen now */
	PENDING_STEP_TOMBSTONE, /* "switched in this epoch" */
	PENDING_STEP_DELETE,    /* give the entry back */
};

/* lpshim_task_blocked for a task whose entry is p (NULL: none), in transition epoch epoch. */
PENDING_RULE enum pending_step pending_rule_blocked(const struct pending_task *p, __u32 epoch)
{
	if (p && (p->flags & PENDING_TASK_F_SWITCHED) && p->transition == epoch)
		/* It switched in this transition: a report of a pass that raced with its switch. */
		return PENDING_STEP_NONE;
	if (p && (p->transition == epoch || (p->flags & PENDING_TASK_F_WATCHED)))
		return PENDING_STEP_UPDATE;
	return PENDING_STEP_INSERT;
}

/*
 * lpshim_task_switch to state, the transition under way going to target (-1: unknown, as for
 * programs attached after its start, by a livepatchd restarted during it: a reversal since
 * would have been seen, as a start, so a switch then is a switch).
 */
PENDING_RULE enum pending_step pending_rule_switch(const struct pending_task *p, __s32 state,
						  __s32 target)
{
	if (target >= 0 && state != target)
		/* A late switch to the target before a reversal: the task is pending again. */
		return PENDING_STEP_NONE;
	if (p && (p->flags & PENDING_TASK_F_WATCHED))
		return PENDING_STEP_NONE;
	return PENDING_STEP_TOMBSTONE;
}

/* The iterator meets a living task's entry p: report it (UPDATE stands for "report"), keep it
 * silently, or give back a leftover of an earlier transition. */
PENDING_RULE enum pending_step pending_rule_report(const struct pending_task *p, __u32 epoch)
{
	if (p->flags & PENDING_TASK_F_WATCHED)
		return PENDING_STEP_UPDATE;
	if (p->transition != epoch)
		return PENDING_STEP_DELETE;
	if (p->flags & PENDING_TASK_F_SWITCHED)
		return PENDING_STEP_NONE; /* kept against a late task_blocked of this transition */
	return PENDING_STEP_UPDATE;
}

#endif /* LIVEPATCHD_BPF_PENDING_TASKS_RULES_H */
