// SPDX-License-Identifier: GPL-2.0-only
/*
 * transition.c - the transition of one patch between its unpatched and patched states
 *
 * A transition starts when a patch is enabled (target: patched) or disabled (target:
 * unpatched); while it runs, the functions of the patch are marked ->transition and the ftrace
 * handler asks which state the calling task is in. It completes when every task is in the
 * target state; then the marks are cleared and callbacks run.
 *
 * In this release every task is in the target state as soon as the transition starts, so a
 * transition completes in the call that started it. The per-task consistency model (per-task
 * states, stack checks, switch points) is built on this state machine.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#include "core.h"
#include "patch.h"
#include "transition.h"

struct lpshim_patch *lpshim_transition_patch;
int lpshim_target_state = LPSHIM_UNDEFINED;

const char *lpshim_state_name(int state)
{
	return state == LPSHIM_PATCHED ? "patching" : "unpatching";
}

/* Mark the functions of @patch (not immediate ones) as in transition towards @state. */
void lpshim_init_transition(struct lpshim_patch *patch, int state)
{
	struct lpshim_object *obj;
	struct lpshim_func *func;

	lockdep_assert_held(&lpshim_mutex);
	WARN_ON_ONCE(lpshim_target_state != LPSHIM_UNDEFINED);

	lpshim_transition_patch = patch;
	WRITE_ONCE(lpshim_target_state, state);

	/*
	 * Task states (here: the target state) before func->transition. Pairs with the second
	 * smp_rmb() in lpshim_ftrace_handler().
	 */
	smp_wmb();

	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			if (!lpshim_func_immediate(patch, func))
				func->transition = true;
}

void lpshim_start_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;

	lockdep_assert_held(&lpshim_mutex);
	pr_notice("'%s': starting %s transition\n", patch->mod->name,
		  lpshim_state_name(lpshim_target_state));
}

static void lpshim_complete_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;
	struct lpshim_object *obj;
	struct lpshim_func *func;
	int state = lpshim_target_state;

	if (patch->replace && state == LPSHIM_PATCHED) {
		lpshim_discard_replaced_patches(patch);
		lpshim_discard_nops(patch);
	}
	if (state == LPSHIM_UNPATCHED)
		lpshim_unpatch_objects(patch);

	/*
	 * Functions leave the func_stacks before ->transition is cleared. Pairs with the first
	 * smp_rmb() in lpshim_ftrace_handler().
	 */
	smp_wmb();
	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			func->transition = false;
	/* No handler may still act on a ->transition it read before it was cleared. */
	lpshim_synchronize();

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

/* Return whether the transition completed. lpshim_mutex held. */
bool lpshim_try_complete_transition(void)
{
	lockdep_assert_held(&lpshim_mutex);
	if (WARN_ON_ONCE(!lpshim_transition_patch))
		return true;
	lpshim_complete_transition();
	return true;
}

/* Undo an enable that failed after lpshim_init_transition() but before it started. */
void lpshim_cancel_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;
	struct lpshim_object *obj;
	struct lpshim_func *func;

	lockdep_assert_held(&lpshim_mutex);
	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			func->transition = false;
	WRITE_ONCE(lpshim_target_state, LPSHIM_UNDEFINED);
	lpshim_transition_patch = NULL;
}

void lpshim_reverse_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;
	int from = lpshim_target_state;

	lockdep_assert_held(&lpshim_mutex);
	pr_notice("'%s': reversing transition from %s to %s\n", patch->mod->name,
		  lpshim_state_name(from), lpshim_state_name(!from));
	patch->enabled = !patch->enabled;
	WRITE_ONCE(lpshim_target_state, !from);
	lpshim_start_transition();
	lpshim_try_complete_transition();
}

void lpshim_force_transition(void)
{
	struct lpshim_patch *patch = lpshim_transition_patch;

	lockdep_assert_held(&lpshim_mutex);
	pr_warn("'%s': forcing 0 remaining tasks to the %s state\n", patch->mod->name,
		lpshim_target_state == LPSHIM_PATCHED ? "patched" : "unpatched");
	patch->forced = true;
	lpshim_try_complete_transition();
}
