/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * klp-compat.h - build a source written for upstream livepatch against lpshim
 *
 * A patch module written for <linux/livepatch.h> (klp_func, klp_object, klp_patch,
 * klp_enable_patch(), klp_shadow_*(), callbacks taking struct klp_object *) builds as an lpshim
 * patch module when its
 *
 *	#include <linux/livepatch.h>
 *
 * becomes
 *
 *	#include <lpshim/klp-compat.h>
 *
 * and nothing else changes: the klp_* names it uses are macros for their lpshim_* equivalents,
 * which mean the same (docs/writing-patches.md, "Sources written for upstream livepatch").
 *
 * Kernel headers include <linux/livepatch.h> themselves (linux/init_task.h does, and others may
 * in later kernels), and its struct klp_func must not become a second struct lpshim_func. So
 * this header includes <linux/livepatch.h> first, while the names are still upstream's, and
 * only then defines the macros: the upstream declarations keep their names, any later
 * #include <linux/livepatch.h> is a no-op (its include guard), and the source's own uses of
 * the names, which come after this header, are lpshim's. The module calls nothing of upstream
 * livepatch: no undefined klp_* symbol is left in it.
 *
 * Not supported, and refused when used: klp_state (the .states of klp_patch, klp_get_state(),
 * klp_get_prev_state()), which lpshim does not have.
 *
 * The header also marks the module as an lpshim patch module (LPSHIM_PATCH_MODULE(), which
 * an upstream source does not call): a module of several files includes it in one of them
 * only, or defines LPSHIM_KLP_COMPAT_NO_MARKER before it in the others.
 */
#ifndef _LPSHIM_KLP_COMPAT_H
#define _LPSHIM_KLP_COMPAT_H

#include <linux/compiler.h>
#include <linux/livepatch.h>
#include <linux/module.h>

#include <lpshim/lpshim.h>

/* The types */
#define klp_func		lpshim_func
#define klp_object		lpshim_object
#define klp_patch		lpshim_patch
#define klp_callbacks		lpshim_callbacks
#define klp_shadow_ctor_t	lpshim_shadow_ctor_t
#define klp_shadow_dtor_t	lpshim_shadow_dtor_t

/* The API a patch module calls */
#define klp_enable_patch	lpshim_enable_patch
#define klp_shadow_get		lpshim_shadow_get
#define klp_shadow_alloc	lpshim_shadow_alloc
#define klp_shadow_get_or_alloc	lpshim_shadow_get_or_alloc
#define klp_shadow_free		lpshim_shadow_free
#define klp_shadow_free_all	lpshim_shadow_free_all

/*
 * klp_state has no lpshim equivalent. Rather than let a call reach upstream livepatch (which
 * knows no lpshim patch and would answer NULL), a use fails the build.
 */
extern void *lpshim_klp_state_is_not_supported(void)
	__compiletime_error("klp_get_state() and klp_get_prev_state(): lpshim has no klp_state");
#define klp_state		lpshim_klp_state_is_not_supported_struct
#define klp_get_state(patch, id)	lpshim_klp_state_is_not_supported()
#define klp_get_prev_state(id)		lpshim_klp_state_is_not_supported()

#ifndef LPSHIM_KLP_COMPAT_NO_MARKER
LPSHIM_PATCH_MODULE();
#endif

#endif /* _LPSHIM_KLP_COMPAT_H */
