/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * transition.h - moving tasks between the unpatched and patched states of one patch
 */
#ifndef _LPSHIM_TRANSITION_H
#define _LPSHIM_TRANSITION_H

#include <lpshim/lpshim.h>

#define LPSHIM_UNDEFINED	(-1)

/* The patch in transition, or NULL. lpshim_mutex. */
extern struct lpshim_patch *lpshim_transition_patch;
/* LPSHIM_PATCHED or LPSHIM_UNPATCHED during a transition, else LPSHIM_UNDEFINED. */
extern int lpshim_target_state;

/*
 * The state of the current task in the transition, for the ftrace handler: lock-free, O(1),
 * no allocation, notrace. Interrupts use the state of the task they interrupt.
 *
 * In this release every task moves to the target state at once when the transition starts;
 * the per-task consistency model replaces this.
 */
static __always_inline int lpshim_current_patch_state(void)
{
	return READ_ONCE(lpshim_target_state);
}

const char *lpshim_state_name(int state);

void lpshim_init_transition(struct lpshim_patch *patch, int state);
void lpshim_start_transition(void);
bool lpshim_try_complete_transition(void);
void lpshim_cancel_transition(void);
void lpshim_reverse_transition(void);
void lpshim_force_transition(void);

#endif /* _LPSHIM_TRANSITION_H */
