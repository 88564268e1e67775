/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * patch.h - redirection of patched functions through ftrace, and their func_stacks
 */
#ifndef _LPSHIM_PATCH_H
#define _LPSHIM_PATCH_H

#include <lpshim/lpshim.h>

/*
 * Redirect @nr functions (of one patch, already resolved: ->ip set) by pushing each on the
 * func_stack of its ip. Functions no patch redirected before are added to ftrace in one batch.
 * On failure nothing is changed and the cause is logged. Called with lpshim_mutex held.
 */
int lpshim_patch_funcs(struct lpshim_func **funcs, unsigned int nr);

/*
 * Take @nr functions off their func_stacks; functions left with an empty stack leave ftrace in
 * one batch. The caller must lpshim_synchronize() before the functions' memory may go.
 * Called with lpshim_mutex held.
 */
void lpshim_unpatch_funcs(struct lpshim_func **funcs, unsigned int nr);

/*
 * The function each call of @func's ip runs when @func is on top: the original when @func is
 * a NOP or the only entry... (for the stack check): the implementation @func replaces, i.e. the
 * next entry down the func_stack, or the original function. Fills @addr and @size.
 */
void lpshim_func_prev_impl(struct lpshim_func *func, unsigned long *addr, unsigned long *size);

/* What the handler reads in ->redirect while @func is in transition: no function is at 1. */
#define LPSHIM_REDIRECT_TRANSITION 1UL

/* Where a call goes when @func is its version: the new code, or 0 for a NOP (the original). */
static inline unsigned long lpshim_func_target(const struct lpshim_func *func)
{
	return func->nop ? 0 : (unsigned long)func->new_func;
}

/* @func is marked in transition. lpshim_mutex held. */
static inline bool lpshim_func_in_transition(const struct lpshim_func *func)
{
	return func->redirect == LPSHIM_REDIRECT_TRANSITION;
}

/*
 * Mark @func in transition or settled. The handler reads one word for both, ->redirect: the
 * target of a settled function, LPSHIM_REDIRECT_TRANSITION for a marked one. A settled
 * @func must be resolved (->nop and ->new_func final). lpshim_mutex held.
 */
static inline void lpshim_func_set_transition(struct lpshim_func *func, bool transition)
{
	WRITE_ONCE(func->redirect, transition ? LPSHIM_REDIRECT_TRANSITION : lpshim_func_target(func));
}

/*
 * Wait until no CPU can still be in lpshim's ftrace handler with a view from before the caller's
 * last change. The handler's read side is a preemption-disabled region, possibly where RCU is
 * not watching, so this waits for every online CPU to schedule. Called with lpshim_mutex held.
 */
void lpshim_synchronize(void);

/* Remove every trace of lpshim from ftrace at unload; WARNs if a function is still patched. */
void lpshim_patch_exit(void);

#endif /* _LPSHIM_PATCH_H */
