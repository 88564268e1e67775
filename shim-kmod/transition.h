/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * transition.h - the per-task consistency model: moving every task between the unpatched and
 * patched states of one patch (docs/consistency-model.md)
 */
#ifndef _LPSHIM_TRANSITION_H
#define _LPSHIM_TRANSITION_H

#include <lpshim/lpshim.h>

#include "debug.h"
#include "task_state.h"

#define LPSHIM_UNDEFINED	(-1)

/* The patch in transition, or NULL. lpshim_mutex. */
extern struct lpshim_patch *lpshim_transition_patch;
/* LPSHIM_PATCHED or LPSHIM_UNPATCHED during a transition, else LPSHIM_UNDEFINED. */
extern int lpshim_target_state;

/*
 * The state of the current task, for the ftrace handler: lock-free, O(1), no allocation,
 * nothing traceable. Interrupts run in the context of the task they interrupt and so use its
 * state. Only asked while a function is marked in transition, when the table is published.
 */
static __always_inline int lpshim_current_patch_state(void)
{
	struct lpshim_task_table *table = rcu_dereference_raw(lpshim_tasks);

	if (unlikely(!table)) {
		LPSHIM_DEBUG_WARN_ON_ONCE(1);
		return READ_ONCE(lpshim_target_state);
	}
	/* Once a pass recorded every task, only a lost creation makes an orphan. */
	LPSHIM_DEBUG_WARN_ON_ONCE(READ_ONCE(table->all_recorded) && !READ_ONCE(table->nr_lost) &&
				  !lpshim_is_cpu_idle_task(current) &&
				  !lpshim_task_lookup(table, current));
	return lpshim_task_patch_state(table, current);
}

const char *lpshim_state_name(int state);

/* The transition's lifecycle; all with lpshim_mutex held. */
int lpshim_init_transition(struct lpshim_patch *patch, int state);
void lpshim_start_transition(void);
void lpshim_queue_first_pass(void);
void lpshim_cancel_transition(void);
void lpshim_reverse_transition(void);
void lpshim_force_transition(void);
/* An object of the patch in transition was loaded or unloaded: recompute what to check. */
void lpshim_transition_objects_changed(void);
/* Wake the tasks that still block the transition (sysfs "signal"). */
void lpshim_kick_transition(void);

/* debugfs "tasks": one line per task not yet in the target state. lpshim_mutex held. */
struct seq_file;
void lpshim_show_pending_tasks(struct seq_file *m);
/* debugfs "stats": the passes' walks under tasklist_lock since lpshim was loaded. lpshim_mutex. */
void lpshim_show_transition_stats(struct seq_file *m);
/* debugfs "task_states", debug build only. lpshim_mutex held. */
void lpshim_show_task_states(struct seq_file *m);

int lpshim_transition_init(void);
void lpshim_transition_exit(void);

#endif /* _LPSHIM_TRANSITION_H */
