/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lpshim.h - the patch-module API of lpshim.ko
 *
 * A patch module describes which kernel functions it replaces and calls lpshim_enable_patch()
 * from its module_init. The API mirrors upstream livepatch (include/linux/livepatch.h) so that
 * what patch authors know carries over: lpshim_func ~ klp_func, lpshim_object ~ klp_object,
 * lpshim_patch ~ klp_patch, lpshim_shadow_* ~ klp_shadow_*.
 *
 * Example:
 *
 *	static struct lpshim_func funcs[] = {
 *		{ .old_name = "cmdline_proc_show", .new_func = fixed_cmdline_proc_show, },
 *		{ }
 *	};
 *	static struct lpshim_object objs[] = {
 *		{ .name = NULL, .funcs = funcs, },	// NULL: vmlinux
 *		{ }
 *	};
 *	static struct lpshim_patch patch = { .mod = THIS_MODULE, .objs = objs, };
 *
 *	static int __init fix_init(void) { return lpshim_enable_patch(&patch); }
 *	static void __exit fix_exit(void) { }
 *	module_init(fix_init);
 *	module_exit(fix_exit);
 *	MODULE_LICENSE("GPL");
 *	LPSHIM_PATCH_MODULE();
 *
 * Fields below "private" are lpshim's; a patch module leaves them zero.
 */
#ifndef _LPSHIM_LPSHIM_H
#define _LPSHIM_LPSHIM_H

#include <linux/types.h>
#include <linux/list.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/completion.h>
#include <linux/workqueue.h>

/*
 * LPSHIM_PATCH_MODULE - mark a module as an lpshim patch module
 *
 * Tools (livepatchd, modinfo) recognise patch modules by the modinfo key lpshim_patch=Y;
 * lpshim_enable_patch() refuses a module without the marker symbol, so that a module cannot
 * patch the kernel unless it says so where tools can see it. livepatch=Y makes the kernel's
 * module loader keep what lpshim needs to apply the module's livepatch relocations (its
 * references to symbols that are not exported), and apply the vmlinux ones as it loads.
 */
#define LPSHIM_PATCH_MODULE()						\
	MODULE_INFO(lpshim_patch, "Y");					\
	MODULE_INFO(livepatch, "Y");					\
	const char __lpshim_patch_marker[] __used = "lpshim_patch"

/* Per-task patch states (a task runs either all-old or all-new code of the patch in transition) */
#define LPSHIM_UNPATCHED	0
#define LPSHIM_PATCHED		1

struct lpshim_ops;

/**
 * struct lpshim_func - a function to replace
 * @old_name:	name of the function to replace
 * @new_func:	the replacement; same prototype as the original
 * @old_sympos:	which of several symbols named @old_name in the object, counted from 1 in
 *		kallsyms order; 0 when the name is unique in the object (enforced)
 * @immediate:	switch every task to @new_func at once, without the per-task consistency model:
 *		only for a fix that changes no semantics and that it is harmless for a task to run
 *		half-old, half-new
 *
 * Private (lpshim); what the ftrace handler reads (@ip, @redirect, @ops, @stack_node) lies
 * in the first 64 bytes:
 * @nop:	a placeholder of an atomic-replace patch: run the original
 * @patched:	@stack_node is on the func_stack
 * @ip:		the ftrace location of @old_func (where calls are redirected)
 * @redirect:	where the handler sends calls while this function is on top: @new_func, or 0
 *		for a NOP (the original runs); LPSHIM_REDIRECT_TRANSITION while it is part of the
 *		transition in progress, when the handler chooses by the calling task's state
 * @ops:	the patched function whose func_stack holds @stack_node, while @patched (patch.c)
 * @stack_node:	entry in the func_stack of @ip
 * @old_func:	address of the original function
 * @old_size:	size of the original function
 * @new_size:	size of @new_func
 * @kobj:	sysfs directory <patch>/<object>/<old_name>,<sympos>
 * @node:	entry in the object's function list
 */
struct lpshim_func {
	const char *old_name;
	void *new_func;
	unsigned long old_sympos;
	bool immediate;

	/* private */
	bool nop;
	bool patched;
	unsigned long ip;
	unsigned long redirect;
	struct lpshim_ops *ops;
	struct list_head stack_node;
	unsigned long old_func;
	unsigned long old_size, new_size;
	struct kobject kobj;
	struct list_head node;
};

struct lpshim_object;

/**
 * struct lpshim_callbacks - hooks around patching an object
 * @pre_patch:	before the object's functions are redirected; a non-zero return refuses the
 *		patch (or, for a module loaded later, the load of that module)
 * @post_patch:	after every task runs the patched object
 * @pre_unpatch: before the unpatching transition starts
 * @post_unpatch: after every task runs the original again and the redirection is gone
 *
 * Callbacks run only while the object is loaded. post_unpatch runs only if pre_patch ran and
 * succeeded; pre_unpatch only if post_patch ran. As upstream.
 *
 * Private (lpshim):
 * @post_unpatch_enabled: pre_patch succeeded
 */
struct lpshim_callbacks {
	int (*pre_patch)(struct lpshim_object *obj);
	void (*post_patch)(struct lpshim_object *obj);
	void (*pre_unpatch)(struct lpshim_object *obj);
	void (*post_unpatch)(struct lpshim_object *obj);
	bool post_unpatch_enabled;
};

/**
 * struct lpshim_object - the functions to replace in vmlinux or in one module
 * @name:	module name, or NULL for vmlinux
 * @funcs:	array of functions, terminated by an all-zero entry
 * @callbacks:	optional hooks
 *
 * Private (lpshim):
 * @kobj:	sysfs directory <patch>/<object>
 * @func_list:	the functions (static and dynamic)
 * @node:	entry in the patch's object list
 * @mod:	the loaded module (NULL for vmlinux, or while the module is not loaded)
 * @dynamic:	allocated by lpshim (atomic replace)
 * @patched:	the object's functions are redirected
 */
struct lpshim_object {
	const char *name;
	struct lpshim_func *funcs;
	struct lpshim_callbacks callbacks;

	/* private */
	struct kobject kobj;
	struct list_head func_list;
	struct list_head node;
	struct module *mod;
	bool dynamic;
	bool patched;
};

/**
 * struct lpshim_patch - a live patch
 * @mod:	the patch module (THIS_MODULE)
 * @objs:	array of objects, terminated by an all-zero entry
 * @replace:	atomic replace: this cumulative patch replaces every patch enabled before it;
 *		functions they patched and this one does not return to their original
 * @immediate:	no per-task consistency for any function of this patch (see lpshim_func)
 *
 * Private (lpshim):
 * @list:	entry in the list of patches (the stack, oldest first)
 * @kobj:	sysfs directory /sys/kernel/lpshim/<module name>
 * @obj_list:	the objects (static and dynamic)
 * @enabled:	the patch is enabled, or being enabled
 * @keep_module: the module can never be removed: a transition was forced, or a function of
 *		the patch was immediate
 * @free_work:	frees the patch outside the sysfs callback that disabled it
 * @finish:	completed when sysfs is done with the patch
 */
struct lpshim_patch {
	struct module *mod;
	struct lpshim_object *objs;
	bool replace;
	bool immediate;

	/* private */
	struct list_head list;
	struct kobject kobj;
	struct list_head obj_list;
	bool enabled;
	bool keep_module;
	struct work_struct free_work;
	struct completion finish;
};

/**
 * lpshim_enable_patch() - enable a live patch
 * @patch:	the patch, from the module_init of the module it describes
 *
 * Checks the patch, resolves every function, runs the pre_patch callbacks, redirects the
 * functions and starts the transition to the patched state. Nothing is changed when it fails.
 * The patch appears in /sys/kernel/lpshim/<module>; writing 0 to its "enabled" disables it,
 * after which the module can be removed.
 *
 * Return: 0, or -EINVAL (bad patch, module not marked with LPSHIM_PATCH_MODULE(), a symbol that
 * does not resolve or is ambiguous), -EBUSY (another transition in progress, or a function
 * already redirected by someone else, or ftrace disabled), -ENODEV, -ENOMEM, or the error of a
 * pre_patch callback.
 */
int lpshim_enable_patch(struct lpshim_patch *patch);

typedef int (*lpshim_shadow_ctor_t)(void *obj, void *shadow_data, void *ctor_data);
typedef void (*lpshim_shadow_dtor_t)(void *obj, void *shadow_data);

/**
 * lpshim_shadow_get() - the shadow variable <@obj, @id>
 * @obj:	the object the variable extends
 * @id:		the variable's id
 *
 * Return: its data, or NULL if there is none.
 */
void *lpshim_shadow_get(void *obj, unsigned long id);

/**
 * lpshim_shadow_alloc() - allocate and add a new shadow variable
 * @obj:	the object the variable extends
 * @id:		the variable's id
 * @size:	size of its data
 * @gfp_flags:	allocation flags
 * @ctor:	optional constructor, called under a spinlock with the zeroed data
 * @ctor_data:	passed to @ctor
 *
 * Return: the new data, or NULL when <@obj, @id> already exists (with a warning), when the
 * allocation fails, or when @ctor fails.
 */
void *lpshim_shadow_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp_flags,
			  lpshim_shadow_ctor_t ctor, void *ctor_data);

/**
 * lpshim_shadow_get_or_alloc() - the shadow variable <@obj, @id>, allocated if needed
 *
 * Same arguments as lpshim_shadow_alloc(); @ctor runs only when a variable is added.
 * Return: the existing or new data, or NULL on failure.
 */
void *lpshim_shadow_get_or_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp_flags,
				 lpshim_shadow_ctor_t ctor, void *ctor_data);

/**
 * lpshim_shadow_free() - detach and free the shadow variable <@obj, @id>
 * @dtor:	optional, called before the data is freed
 */
void lpshim_shadow_free(void *obj, unsigned long id, lpshim_shadow_dtor_t dtor);

/**
 * lpshim_shadow_free_all() - detach and free every shadow variable with @id
 * @dtor:	optional, called for each before its data is freed
 */
void lpshim_shadow_free_all(unsigned long id, lpshim_shadow_dtor_t dtor);

#endif /* _LPSHIM_LPSHIM_H */
