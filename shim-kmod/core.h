/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * core.h - patch registry and lifecycle, shared with patch.c and transition.c
 */
#ifndef _LPSHIM_CORE_H
#define _LPSHIM_CORE_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <lpshim/lpshim.h>

/*
 * lpshim_mutex serialises everything but the ftrace handler and the per-task switch points:
 * the list of patches, every patch's enabled/forced state, objects and functions, the
 * func_stacks (patch.c) and the transition (transition.c).
 */
extern struct mutex lpshim_mutex;
/*
 * Writers of the sysfs files (enabled, signal, force) waiting for lpshim_mutex: a pass of the
 * transition work ends its preemptible walk early for them (transition.c), rather than keep
 * them, a service's event loop often, for as long as a slowed walk lasts.
 */
extern atomic_t lpshim_mutex_writers;

static inline void lpshim_mutex_lock_writer(void)
{
	atomic_inc(&lpshim_mutex_writers);
	mutex_lock(&lpshim_mutex);
	atomic_dec(&lpshim_mutex_writers);
}
/*
 * Enabled patches, oldest first: the func_stacks follow this order. lpshim_mutex (and, for
 * changes, lpshim_patches_lock in core.c, which stack_order reads under).
 */
extern struct list_head lpshim_patches;

#define lpshim_for_each_object(patch, obj) \
	list_for_each_entry(obj, &(patch)->obj_list, node)
#define lpshim_for_each_func(obj, func) \
	list_for_each_entry(func, &(obj)->func_list, node)

static inline const char *lpshim_object_name(struct lpshim_object *obj)
{
	return obj->name ? obj->name : "vmlinux";
}

/* The object's code is in memory: vmlinux, or a module that is loaded. */
static inline bool lpshim_object_loaded(struct lpshim_object *obj)
{
	return !obj->name || obj->mod;
}

/* Functions of @patch that are redirected per task (not immediate). */
static inline bool lpshim_func_immediate(struct lpshim_patch *patch, struct lpshim_func *func)
{
	return patch->immediate || func->immediate;
}

void lpshim_unpatch_objects(struct lpshim_patch *patch);
void lpshim_discard_replaced_patches(struct lpshim_patch *new_patch);
void lpshim_discard_nops(struct lpshim_patch *patch);
void lpshim_free_patch_async(struct lpshim_patch *patch);

void lpshim_pre_unpatch_callbacks(struct lpshim_patch *patch);
void lpshim_post_patch_callbacks(struct lpshim_patch *patch);
void lpshim_post_unpatch_callbacks(struct lpshim_patch *patch);

#endif /* _LPSHIM_CORE_H */
