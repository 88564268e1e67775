// SPDX-License-Identifier: GPL-2.0-only
/*
 * core.c - lpshim's patch registry: enabling, disabling and replacing patches, sysfs, callbacks,
 * and modules loaded after a patch
 *
 * sysfs ABI (same meaning as /sys/kernel/livepatch on 6.1 and later; docs/sysfs-abi.md):
 *
 *   /sys/kernel/lpshim/<patch>/			one per enabled patch, named after its module
 *	enabled		rw  1 while enabled or being enabled. Writing 0 starts the unpatching
 *			    transition (the top patch only); when it completes the directory goes
 *			    and the module may be removed. Writing the opposite value during the
 *			    patch's transition reverses it; writing the current value is EINVAL.
 *	transition	ro  1 while this patch is in transition
 *	force		wo  1: move the remaining tasks to the target state now (EINVAL when not
 *			    in transition); the module can never be removed afterwards
 *	signal		wo  1: kick the tasks that keep the patch's transition open: a switch
 *			    attempt on a user task's return to user mode (TWA_SIGNAL), a wakeup of
 *			    a kthread asleep interruptibly, the next pass in 10 ms; no task moves
 *			    without a stack check (EINVAL when not in transition)
 *	replace		ro  1 for an atomic-replace (cumulative) patch
 *	immediate	ro  1 when the patch skips the per-task consistency model
 *	stack_order	ro  1-based position among enabled patches, oldest first
 *	<object>/	   vmlinux or a module name
 *		patched	ro  1 while the object's functions are redirected (its module loaded)
 *		<function,sympos>/	one per function, no attributes
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/hash.h>
#include <linux/stringhash.h>
#include <linux/log2.h>
#include <linux/panic.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "core.h"
#include "debug.h"
#include "ksyms.h"
#include "patch.h"
#include "relocs.h"
#include "shadow.h"
#include "transition.h"

#define LPSHIM_VERSION "0.1.0"

DEFINE_MUTEX(lpshim_mutex);
atomic_t lpshim_mutex_writers = ATOMIC_INIT(0);
LIST_HEAD(lpshim_patches);
/*
 * The links of lpshim_patches, for a reader that must not wait for lpshim_mutex: the sysfs
 * attribute stack_order, which a service reads at every look while a transition's pass holds
 * the mutex for as long as it walks every task. Writers hold both.
 */
static DEFINE_SPINLOCK(lpshim_patches_lock);

static struct kobject *lpshim_root_kobj;

/*
 * Modules whose MODULE_STATE_COMING notification lpshim handled and that are neither live nor
 * going yet: a module found with find_module() while it is still coming may not have been
 * through our notifier yet, and must then be left to it. Added under lpshim_mutex, but the
 * list is lpshim_coming_lock's: the MODULE_STATE_LIVE notifier removes a module without
 * lpshim_mutex, so that no module's load waits for a transition's pass (which holds the mutex
 * for as long as it walks every task). A module removed there is already live by its state.
 */
struct lpshim_module_ref {
	struct list_head node;
	struct module *mod;
};
static LIST_HEAD(lpshim_coming_modules);
/* Raw: taken with preemption disabled (lpshim_find_alive_module()), also on PREEMPT_RT. */
static DEFINE_RAW_SPINLOCK(lpshim_coming_lock);

/*
 * Whether @mod, found coming, went through our COMING notifier, or has gone live since: its
 * LIVE notifier removes it from the list after do_init_module() set its state, so a module
 * no longer on the list reads as live here (the lock orders the two).
 */
static bool lpshim_module_seen_coming(struct module *mod)
{
	struct lpshim_module_ref *ref;
	bool seen = false;

	raw_spin_lock(&lpshim_coming_lock);
	list_for_each_entry(ref, &lpshim_coming_modules, node) {
		if (ref->mod == mod) {
			seen = true;
			break;
		}
	}
	if (!seen)
		seen = READ_ONCE(mod->state) == MODULE_STATE_LIVE;
	raw_spin_unlock(&lpshim_coming_lock);
	return seen;
}

/* The loaded module named @name that lpshim may patch now, or NULL. */
static struct module *lpshim_find_alive_module(const char *name)
{
	struct module *mod;

	lockdep_assert_held(&lpshim_mutex);
	preempt_disable();
	mod = lpshim_ksyms.find_module(name);
	if (mod && !(mod->state == MODULE_STATE_LIVE ||
		     (mod->state == MODULE_STATE_COMING && lpshim_module_seen_coming(mod))))
		mod = NULL;
	preempt_enable();
	/*
	 * No reference is taken: the GOING notifier (which needs lpshim_mutex) reverts the
	 * object before the module's memory can go.
	 */
	return mod;
}

/* --- resolving functions ----------------------------------------------------------------- */

/*
 * One pass over the symbols of an object resolves all its functions: per-function scans of
 * kallsyms cost O(functions x symbols), far too much for a patch of a thousand functions.
 */
struct lpshim_resolve {
	struct lpshim_func **funcs;
	unsigned int nr;
	unsigned int *matches;		/* per func: symbols named old_name seen so far */
	unsigned long *addr;		/* per func: the address at old_sympos (or the first) */
	unsigned int *bucket;		/* hash of old_name -> first func index + 1 */
	unsigned int *chain;		/* next func index + 1 in the same bucket */
	unsigned int bits;
};

static u32 lpshim_name_hash(const char *name, unsigned int bits)
{
	return hash_32(full_name_hash(NULL, name, strlen(name)), bits);
}

static int lpshim_resolve_symbol(void *data, const char *name, unsigned long addr)
{
	struct lpshim_resolve *r = data;
	unsigned int i;

	for (i = r->bucket[lpshim_name_hash(name, r->bits)]; i; i = r->chain[i - 1]) {
		struct lpshim_func *func = r->funcs[i - 1];

		if (strcmp(func->old_name, name))
			continue;
		r->matches[i - 1]++;
		if (r->matches[i - 1] == (func->old_sympos ? func->old_sympos : 1))
			r->addr[i - 1] = addr;
	}
	return 0;
}

static int lpshim_resolve_funcs(struct lpshim_object *obj, struct lpshim_func **funcs,
				unsigned int nr)
{
	struct lpshim_resolve r = { .funcs = funcs, .nr = nr };
	unsigned long size, offset;
	unsigned int i, h;
	int ret = -ENOMEM;

	r.bits = max(ilog2(roundup_pow_of_two(nr * 2)), 1);
	r.matches = kcalloc(nr, sizeof(*r.matches), GFP_KERNEL);
	r.addr = kcalloc(nr, sizeof(*r.addr), GFP_KERNEL);
	r.chain = kcalloc(nr, sizeof(*r.chain), GFP_KERNEL);
	r.bucket = kcalloc(1U << r.bits, sizeof(*r.bucket), GFP_KERNEL);
	if (!r.matches || !r.addr || !r.chain || !r.bucket)
		goto out;
	for (i = 0; i < nr; i++) {
		h = lpshim_name_hash(funcs[i]->old_name, r.bits);
		r.chain[i] = r.bucket[h];
		r.bucket[h] = i + 1;
	}

	if (obj->mod)
		lpshim_for_each_module_symbol(obj->mod, lpshim_resolve_symbol, &r);
	else
		lpshim_for_each_vmlinux_symbol(lpshim_resolve_symbol, &r);

	ret = -EINVAL;
	for (i = 0; i < nr; i++) {
		struct lpshim_func *func = funcs[i];

		if (!r.matches[i]) {
			pr_err("symbol '%s' not found in '%s'\n", func->old_name,
			       lpshim_object_name(obj));
			goto out;
		}
		if (!func->old_sympos && r.matches[i] > 1) {
			pr_err("symbol '%s' is ambiguous in '%s' (%u matches): set old_sympos\n",
			       func->old_name, lpshim_object_name(obj), r.matches[i]);
			goto out;
		}
		if (func->old_sympos > r.matches[i]) {
			pr_err("symbol '%s' in '%s' has no position %lu (%u matches)\n",
			       func->old_name, lpshim_object_name(obj), func->old_sympos,
			       r.matches[i]);
			goto out;
		}
		func->old_func = r.addr[i];
		func->ip = lpshim_ksyms.ftrace_location(func->old_func);
		if (!func->ip) {
			pr_err("function '%s' cannot be redirected: ftrace does not trace it\n",
			       func->old_name);
			goto out;
		}
		if (!lpshim_ksyms.kallsyms_lookup_size_offset(func->old_func, &func->old_size,
							      &offset)) {
			pr_err("function '%s' has no size in kallsyms\n", func->old_name);
			goto out;
		}
		if (func->nop) {
			func->new_func = (void *)func->old_func;
			func->new_size = func->old_size;
		} else if (!lpshim_ksyms.kallsyms_lookup_size_offset((unsigned long)func->new_func,
								     &size, &offset)) {
			pr_err("the replacement of '%s' is not in kallsyms\n", func->old_name);
			goto out;
		} else {
			func->new_size = size;
		}
		/* A module's functions may be resolved while their patch is in transition. */
		lpshim_func_set_transition(func, lpshim_func_in_transition(func));
	}
	ret = 0;
out:
	kfree(r.matches);
	kfree(r.addr);
	kfree(r.chain);
	kfree(r.bucket);
	return ret;
}

static void lpshim_clear_object(struct lpshim_object *obj)
{
	struct lpshim_func *func;

	obj->mod = NULL;
	lpshim_for_each_func(obj, func) {
		func->old_func = 0;
		func->ip = 0;
	}
}

/* The functions of @obj as an array, for one batched resolution or ftrace update. */
static struct lpshim_func **lpshim_object_funcs(struct lpshim_object *obj, unsigned int *nr)
{
	struct lpshim_func **funcs, *func;
	unsigned int n = 0;

	lpshim_for_each_func(obj, func)
		n++;
	funcs = kcalloc(max(n, 1U), sizeof(*funcs), GFP_KERNEL);
	if (!funcs)
		return NULL;
	n = 0;
	lpshim_for_each_func(obj, func)
		funcs[n++] = func;
	*nr = n;
	return funcs;
}

/*
 * An immediate function of @patch became reachable: no stack check looks for it, so a task may
 * run it until the end, and the module can never be let go of. (A failed enable never made one
 * reachable: its module goes, as its init failed.)
 */
static void lpshim_pin_patch_module(struct lpshim_patch *patch)
{
	patch->keep_module = true;
}

/*
 * Redirect the functions of @obj, a loaded object of @patch; with @immediate_too unset, only
 * those that follow the consistency model (lpshim_patch_immediate_funcs() does the others).
 */
static int lpshim_patch_object(struct lpshim_patch *patch, struct lpshim_object *obj,
			       bool immediate_too)
{
	struct lpshim_func **funcs;
	unsigned int nr, i, n = 0;
	bool immediate = false;
	int ret;

	funcs = lpshim_object_funcs(obj, &nr);
	if (!funcs)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		if (!immediate_too && lpshim_func_immediate(patch, funcs[i]))
			continue;
		immediate |= lpshim_func_immediate(patch, funcs[i]);
		funcs[n++] = funcs[i];
	}
	ret = lpshim_patch_funcs(funcs, n);
	if (!ret)
		obj->patched = true;
	if (!ret && immediate)
		lpshim_pin_patch_module(patch);
	kfree(funcs);
	return ret;
}

/*
 * The immediate functions of every patched object of @patch, in one batch, once nothing else
 * of the enable can fail: nothing keeps a task from entering an immediate function, and the
 * memory of a module whose init fails is freed whatever holds it.
 */
static int lpshim_patch_immediate_funcs(struct lpshim_patch *patch)
{
	struct lpshim_func **funcs, *func;
	struct lpshim_object *obj;
	unsigned int n = 0;
	int ret;

	lpshim_for_each_object(patch, obj)
		if (obj->patched)
			lpshim_for_each_func(obj, func)
				n += lpshim_func_immediate(patch, func);
	if (!n)
		return 0;
	funcs = kcalloc(n, sizeof(*funcs), GFP_KERNEL);
	if (!funcs)
		return -ENOMEM;
	n = 0;
	lpshim_for_each_object(patch, obj)
		if (obj->patched)
			lpshim_for_each_func(obj, func)
				if (lpshim_func_immediate(patch, func))
					funcs[n++] = func;
	ret = lpshim_patch_funcs(funcs, n);
	if (!ret)
		lpshim_pin_patch_module(patch);
	kfree(funcs);
	return ret;
}

static void lpshim_unpatch_object(struct lpshim_object *obj)
{
	struct lpshim_func **funcs;
	unsigned int nr;

	if (!obj->patched)
		return;
	funcs = lpshim_object_funcs(obj, &nr);
	if (WARN_ON_ONCE(!funcs))
		return;
	lpshim_unpatch_funcs(funcs, nr);
	obj->patched = false;
	kfree(funcs);
}

/*
 * Resolve the functions of a loaded object of @patch (vmlinux, or obj->mod set), and apply its
 * livepatch relocations: the patch's code may reference the object's static symbols.
 */
static int lpshim_init_object_loaded(struct lpshim_patch *patch, struct lpshim_object *obj)
{
	struct lpshim_func **funcs;
	unsigned int nr;
	int ret;

	funcs = lpshim_object_funcs(obj, &nr);
	if (!funcs)
		return -ENOMEM;
	ret = lpshim_resolve_funcs(obj, funcs, nr);
	kfree(funcs);
	return ret ?: lpshim_apply_object_relocs(patch, obj);
}

/* --- callbacks ---------------------------------------------------------------------------- */

static int lpshim_pre_patch_callback(struct lpshim_object *obj)
{
	int ret = 0;

	if (obj->callbacks.pre_patch)
		ret = obj->callbacks.pre_patch(obj);
	if (ret)
		pr_err("pre-patch callback failed for object '%s' (%d)\n",
		       lpshim_object_name(obj), ret);
	obj->callbacks.post_unpatch_enabled = !ret;
	/*
	 * EAGAIN (another transition) and EBUSY (a function cannot be redirected) are lpshim's
	 * own refusals, which callers tell apart by the errno alone (retry, or not): a callback's
	 * is passed on as ECANCELED, and the line above keeps its own.
	 */
	if (ret == -EAGAIN || ret == -EBUSY)
		ret = -ECANCELED;
	return ret;
}

static void lpshim_post_patch_callback(struct lpshim_object *obj)
{
	if (obj->callbacks.post_patch)
		obj->callbacks.post_patch(obj);
}

static void lpshim_pre_unpatch_callback(struct lpshim_object *obj)
{
	if (obj->callbacks.pre_unpatch)
		obj->callbacks.pre_unpatch(obj);
}

static void lpshim_post_unpatch_callback(struct lpshim_object *obj)
{
	if (obj->callbacks.post_unpatch && obj->callbacks.post_unpatch_enabled)
		obj->callbacks.post_unpatch(obj);
	obj->callbacks.post_unpatch_enabled = false;
}

void lpshim_post_patch_callbacks(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;

	lpshim_for_each_object(patch, obj)
		if (lpshim_object_loaded(obj))
			lpshim_post_patch_callback(obj);
}

void lpshim_pre_unpatch_callbacks(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;

	lpshim_for_each_object(patch, obj)
		if (obj->patched)
			lpshim_pre_unpatch_callback(obj);
}

void lpshim_post_unpatch_callbacks(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;

	lpshim_for_each_object(patch, obj)
		if (lpshim_object_loaded(obj))
			lpshim_post_unpatch_callback(obj);
}

static int lpshim_disable_patch(struct lpshim_patch *patch);

/* --- sysfs ---------------------------------------------------------------------------------- */

static ssize_t enabled_store(struct kobject *kobj, struct kobj_attribute *attr,
			     const char *buf, size_t count)
{
	struct lpshim_patch *patch = container_of(kobj, struct lpshim_patch, kobj);
	bool enabled;
	int ret;

	ret = kstrtobool(buf, &enabled);
	if (ret)
		return ret;

	lpshim_mutex_lock_writer();
	if (patch->enabled == enabled) {
		ret = -EINVAL;		/* the current value: nothing to do is a mistake */
		goto out;
	}
	if (patch == lpshim_transition_patch) {
		lpshim_reverse_transition();
	} else if (!enabled) {
		ret = lpshim_disable_patch(patch);
	} else {
		ret = -EINVAL;		/* a disabled patch is gone from sysfs, as upstream */
	}
out:
	mutex_unlock(&lpshim_mutex);
	return ret ? ret : count;
}

static ssize_t enabled_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", container_of(kobj, struct lpshim_patch, kobj)->enabled);
}

static ssize_t transition_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct lpshim_patch *patch = container_of(kobj, struct lpshim_patch, kobj);

	return sysfs_emit(buf, "%d\n", patch == READ_ONCE(lpshim_transition_patch));
}

/* force and signal: writing 1 acts on this patch's transition (EINVAL when not in one), 0 not. */
static ssize_t lpshim_transition_action(struct kobject *kobj, const char *buf, size_t count,
					void (*action)(void))
{
	struct lpshim_patch *patch = container_of(kobj, struct lpshim_patch, kobj);
	bool act;
	int ret;

	ret = kstrtobool(buf, &act);
	if (ret)
		return ret;
	if (!act)
		return count;

	lpshim_mutex_lock_writer();
	if (patch != lpshim_transition_patch)
		ret = -EINVAL;
	else
		action();
	mutex_unlock(&lpshim_mutex);
	return ret ? ret : count;
}

static ssize_t force_store(struct kobject *kobj, struct kobj_attribute *attr,
			   const char *buf, size_t count)
{
	return lpshim_transition_action(kobj, buf, count, lpshim_force_transition);
}

static ssize_t signal_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t count)
{
	return lpshim_transition_action(kobj, buf, count, lpshim_kick_transition);
}

static ssize_t replace_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", container_of(kobj, struct lpshim_patch, kobj)->replace);
}

static ssize_t immediate_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", container_of(kobj, struct lpshim_patch, kobj)->immediate);
}

static ssize_t stack_order_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct lpshim_patch *this = container_of(kobj, struct lpshim_patch, kobj), *patch;
	int order = 0, i = 0;

	spin_lock(&lpshim_patches_lock);
	list_for_each_entry(patch, &lpshim_patches, list) {
		i++;
		if (patch == this)
			order = i;
	}
	spin_unlock(&lpshim_patches_lock);
	return sysfs_emit(buf, "%d\n", order);
}

static ssize_t patched_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", container_of(kobj, struct lpshim_object, kobj)->patched);
}

static struct kobj_attribute enabled_kobj_attr = __ATTR_RW(enabled);
static struct kobj_attribute transition_kobj_attr = __ATTR_RO(transition);
static struct kobj_attribute force_kobj_attr = __ATTR_WO(force);
static struct kobj_attribute signal_kobj_attr = __ATTR_WO(signal);
static struct kobj_attribute replace_kobj_attr = __ATTR_RO(replace);
static struct kobj_attribute immediate_kobj_attr = __ATTR_RO(immediate);
static struct kobj_attribute stack_order_kobj_attr = __ATTR_RO(stack_order);
static struct kobj_attribute patched_kobj_attr = __ATTR_RO(patched);

static struct attribute *lpshim_patch_attrs[] = {
	&enabled_kobj_attr.attr,
	&transition_kobj_attr.attr,
	&force_kobj_attr.attr,
	&signal_kobj_attr.attr,
	&replace_kobj_attr.attr,
	&immediate_kobj_attr.attr,
	&stack_order_kobj_attr.attr,
	NULL
};
ATTRIBUTE_GROUPS(lpshim_patch);

static struct attribute *lpshim_object_attrs[] = {
	&patched_kobj_attr.attr,
	NULL,
};
ATTRIBUTE_GROUPS(lpshim_object);

static void lpshim_patch_release(struct kobject *kobj)
{
	complete(&container_of(kobj, struct lpshim_patch, kobj)->finish);
}

static void lpshim_object_release(struct kobject *kobj)
{
	struct lpshim_object *obj = container_of(kobj, struct lpshim_object, kobj);

	if (obj->dynamic) {
		kfree(obj->name);
		kfree(obj);
	}
}

static void lpshim_func_release(struct kobject *kobj)
{
	struct lpshim_func *func = container_of(kobj, struct lpshim_func, kobj);

	if (func->nop) {
		kfree(func->old_name);
		kfree(func);
	}
}

static const struct kobj_type lpshim_ktype_patch = {
	.release = lpshim_patch_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = lpshim_patch_groups,
};

static const struct kobj_type lpshim_ktype_object = {
	.release = lpshim_object_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = lpshim_object_groups,
};

static const struct kobj_type lpshim_ktype_func = {
	.release = lpshim_func_release,
	.sysfs_ops = &kobj_sysfs_ops,
};

/* --- patch structures --------------------------------------------------------------------- */

static void lpshim_init_func_early(struct lpshim_object *obj, struct lpshim_func *func)
{
	kobject_init(&func->kobj, &lpshim_ktype_func);
	list_add_tail(&func->node, &obj->func_list);
}

static void lpshim_init_object_early(struct lpshim_patch *patch, struct lpshim_object *obj)
{
	INIT_LIST_HEAD(&obj->func_list);
	kobject_init(&obj->kobj, &lpshim_ktype_object);
	list_add_tail(&obj->node, &patch->obj_list);
}

static int lpshim_check_patch(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;
	struct lpshim_func *func;

	if (!patch->objs || !patch->objs->funcs) {
		pr_err("patch '%s' is malformed: no objects\n", patch->mod->name);
		return -EINVAL;
	}
	/* An object's funcs may be empty ({ }): an object for its callbacks only, as upstream. */
	for (obj = patch->objs; obj->funcs; obj++) {
		if (obj->name && !strcmp(obj->name, "vmlinux")) {
			pr_err("patch '%s' is malformed: vmlinux is the object with a NULL name\n",
			       patch->mod->name);
			return -EINVAL;
		}
		for (func = obj->funcs; func->old_name || func->new_func; func++) {
			if (!func->old_name || !func->new_func) {
				pr_err("patch '%s' is malformed: a function in '%s' without %s\n",
				       patch->mod->name, lpshim_object_name(obj),
				       func->old_name ? "replacement" : "name");
				return -EINVAL;
			}
		}
	}
	return 0;
}

static void lpshim_init_patch_early(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;
	struct lpshim_func *func;

	INIT_LIST_HEAD(&patch->list);
	INIT_LIST_HEAD(&patch->obj_list);
	kobject_init(&patch->kobj, &lpshim_ktype_patch);
	patch->enabled = false;
	patch->keep_module = false;
	init_completion(&patch->finish);

	for (obj = patch->objs; obj->funcs; obj++) {
		lpshim_init_object_early(patch, obj);
		for (func = obj->funcs; func->old_name; func++)
			lpshim_init_func_early(obj, func);
	}
}

static struct lpshim_object *lpshim_find_object(struct lpshim_patch *patch,
						 struct lpshim_object *old)
{
	struct lpshim_object *obj;

	lpshim_for_each_object(patch, obj) {
		if (!obj->name && !old->name)
			return obj;
		if (obj->name && old->name && !strcmp(obj->name, old->name))
			return obj;
	}
	return NULL;
}

static struct lpshim_func *lpshim_find_func(struct lpshim_object *obj, struct lpshim_func *old)
{
	struct lpshim_func *func;

	/* sympos 0 and 1 both mean the first symbol of that name */
	lpshim_for_each_func(obj, func)
		if (!strcmp(func->old_name, old->old_name) &&
		    max(func->old_sympos, 1UL) == max(old->old_sympos, 1UL))
			return func;
	return NULL;
}

/*
 * Atomic replace: a NOP entry for every function an enabled patch replaces and the new patch
 * does not, so that when the new patch completes those functions run their original again.
 */
static int lpshim_add_nops(struct lpshim_patch *patch)
{
	struct lpshim_patch *old;
	struct lpshim_object *old_obj, *obj;
	struct lpshim_func *old_func, *func;

	list_for_each_entry(old, &lpshim_patches, list) {
		lpshim_for_each_object(old, old_obj) {
			obj = lpshim_find_object(patch, old_obj);
			if (!obj) {
				obj = kzalloc(sizeof(*obj), GFP_KERNEL);
				if (!obj)
					return -ENOMEM;
				if (old_obj->name) {
					obj->name = kstrdup(old_obj->name, GFP_KERNEL);
					if (!obj->name) {
						kfree(obj);
						return -ENOMEM;
					}
				}
				obj->dynamic = true;
				lpshim_init_object_early(patch, obj);
			}
			lpshim_for_each_func(old_obj, old_func) {
				if (lpshim_find_func(obj, old_func))
					continue;
				func = kzalloc(sizeof(*func), GFP_KERNEL);
				if (!func)
					return -ENOMEM;
				func->old_name = kstrdup(old_func->old_name, GFP_KERNEL);
				if (!func->old_name) {
					kfree(func);
					return -ENOMEM;
				}
				func->old_sympos = old_func->old_sympos;
				func->nop = true;
				/* new_func is set to the original once resolved */
				func->new_func = (void *)1;
				lpshim_init_func_early(obj, func);
			}
		}
	}
	return 0;
}

static int lpshim_init_object(struct lpshim_patch *patch, struct lpshim_object *obj)
{
	struct lpshim_func *func;
	int ret;

	if (obj->name)
		obj->mod = lpshim_find_alive_module(obj->name);
	ret = kobject_add(&obj->kobj, &patch->kobj, "%s", lpshim_object_name(obj));
	if (ret)
		return ret;
	lpshim_for_each_func(obj, func) {
		ret = kobject_add(&func->kobj, &obj->kobj, "%s,%lu", func->old_name,
				  func->old_sympos ? func->old_sympos : 1);
		if (ret)
			return ret;
	}
	return lpshim_object_loaded(obj) ? lpshim_init_object_loaded(patch, obj) : 0;
}

static int lpshim_init_patch(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;
	int ret;

	ret = kobject_add(&patch->kobj, lpshim_root_kobj, "%s", patch->mod->name);
	if (ret)
		return ret;
	if (patch->replace) {
		ret = lpshim_add_nops(patch);
		if (ret)
			return ret;
	}
	lpshim_for_each_object(patch, obj) {
		ret = lpshim_init_object(patch, obj);
		if (ret)
			return ret;
	}
	spin_lock(&lpshim_patches_lock);
	list_add_tail(&patch->list, &lpshim_patches);
	spin_unlock(&lpshim_patches_lock);
	return 0;
}

/* Drop the objects' and functions' sysfs entries (and free the dynamic ones). */
static void lpshim_free_objects(struct lpshim_patch *patch, bool nops_only)
{
	struct lpshim_object *obj, *tmp_obj;
	struct lpshim_func *func, *tmp_func;

	list_for_each_entry_safe(obj, tmp_obj, &patch->obj_list, node) {
		list_for_each_entry_safe(func, tmp_func, &obj->func_list, node) {
			if (nops_only && !func->nop)
				continue;
			list_del(&func->node);
			kobject_put(&func->kobj);
		}
		if (nops_only && (!obj->dynamic || !list_empty(&obj->func_list)))
			continue;
		list_del(&obj->node);
		kobject_put(&obj->kobj);
	}
}

static void lpshim_free_patch_start(struct lpshim_patch *patch)
{
	spin_lock(&lpshim_patches_lock);
	if (!list_empty(&patch->list))
		list_del_init(&patch->list);
	spin_unlock(&lpshim_patches_lock);
	lpshim_free_objects(patch, false);
}

/* Outside lpshim_mutex: waits for sysfs to let go of the patch. */
static void lpshim_free_patch_finish(struct lpshim_patch *patch)
{
	bool keep_module = patch->keep_module;

	lpshim_debug_free_delay(false);
	kobject_put(&patch->kobj);
	wait_for_completion(&patch->finish);
	lpshim_debug_free_delay(true);
	if (!keep_module) {
		lpshim_debug_check_module_unused(patch);
		module_put(patch->mod);
	}
}

static void lpshim_free_patch_work_fn(struct work_struct *work)
{
	struct lpshim_patch *patch = container_of(work, struct lpshim_patch, free_work);

	lpshim_free_patch_finish(patch);
}

void lpshim_free_patch_async(struct lpshim_patch *patch)
{
	lpshim_free_patch_start(patch);
	schedule_work(&patch->free_work);
}

void lpshim_unpatch_objects(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;

	lpshim_for_each_object(patch, obj)
		lpshim_unpatch_object(obj);
}

/* @patch has a function that no stack check looks for. */
static bool lpshim_patch_has_immediate(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;
	struct lpshim_func *func;

	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			if (lpshim_func_immediate(patch, func))
				return true;
	return false;
}

/*
 * The replaced patches leave silently: no callbacks, as upstream. When the new patch took
 * over a function without the consistency model (an immediate function, or a NOP of an
 * immediate patch), a task may still run a replaced patch's version of it: their modules
 * stay, as after a force.
 */
void lpshim_discard_replaced_patches(struct lpshim_patch *new_patch)
{
	bool keep_modules = lpshim_patch_has_immediate(new_patch);
	struct lpshim_patch *old, *tmp;

	list_for_each_entry_safe(old, tmp, &lpshim_patches, list) {
		if (old == new_patch)
			return;
		old->keep_module |= keep_modules;
		old->enabled = false;
		lpshim_unpatch_objects(old);
		lpshim_free_patch_async(old);
	}
}

/* After a replace completes its NOPs have done their job: their functions leave ftrace. */
void lpshim_discard_nops(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;
	struct lpshim_func **funcs, *func;
	unsigned int nr = 0;

	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			nr += func->nop;
	funcs = kcalloc(max(nr, 1U), sizeof(*funcs), GFP_KERNEL | __GFP_NOFAIL);
	nr = 0;
	lpshim_for_each_object(patch, obj)
		lpshim_for_each_func(obj, func)
			if (func->nop)
				funcs[nr++] = func;
	lpshim_unpatch_funcs(funcs, nr);
	kfree(funcs);
	lpshim_free_objects(patch, true);
}

/* --- enable / disable ------------------------------------------------------------------- */

static int lpshim_find_marker(void *data, const char *name, unsigned long addr)
{
	return !strcmp(name, "__lpshim_patch_marker");
}

static int __lpshim_enable_patch(struct lpshim_patch *patch)
{
	struct lpshim_object *obj;
	int ret;

	if (WARN_ON_ONCE(patch->enabled))
		return -EINVAL;

	pr_notice("enabling patch '%s'\n", patch->mod->name);
	ret = lpshim_init_transition(patch, LPSHIM_PATCHED);
	if (ret)
		return ret;

	lpshim_for_each_object(patch, obj) {
		if (!lpshim_object_loaded(obj))
			continue;
		ret = lpshim_pre_patch_callback(obj);
		if (ret)
			goto err;
		ret = lpshim_patch_object(patch, obj, false);
		if (ret)
			goto err;
	}
	ret = lpshim_patch_immediate_funcs(patch);
	if (ret)
		goto err;

	lpshim_start_transition();
	patch->enabled = true;
	lpshim_queue_first_pass();
	return 0;
err:
	lpshim_unpatch_objects(patch);
	lpshim_cancel_transition();
	lpshim_post_unpatch_callbacks(patch);
	return ret;
}

int lpshim_enable_patch(struct lpshim_patch *patch)
{
	int ret;

	if (!patch || !patch->mod)
		return -EINVAL;
	if (lpshim_for_each_module_symbol(patch->mod, lpshim_find_marker, NULL) != 1) {
		pr_err("module '%s' is not marked as an lpshim patch (LPSHIM_PATCH_MODULE())\n",
		       patch->mod->name);
		ret = -EINVAL;
		goto refused;
	}
	ret = lpshim_check_patch(patch) ?: lpshim_check_patch_relocs(patch);
	if (ret)
		goto refused;

	mutex_lock(&lpshim_mutex);
	if (lpshim_transition_patch) {
		/* EAGAIN, not upstream's EBUSY: the one refusal that retrying later fixes. */
		pr_err("patch '%s' is in transition; try again when it completes\n",
		       lpshim_transition_patch->mod->name);
		ret = -EAGAIN;
		goto unlock;
	}
	if (!try_module_get(patch->mod)) {
		ret = -ENODEV;
		goto unlock;
	}

	lpshim_init_patch_early(patch);
	INIT_WORK(&patch->free_work, lpshim_free_patch_work_fn);
	ret = lpshim_init_patch(patch);
	if (!ret)
		ret = __lpshim_enable_patch(patch);
	if (ret) {
		lpshim_free_patch_start(patch);
		mutex_unlock(&lpshim_mutex);
		lpshim_free_patch_finish(patch);
		goto refused;
	}
	add_taint(TAINT_LIVEPATCH, LOCKDEP_STILL_OK);
	mutex_unlock(&lpshim_mutex);
	return 0;

unlock:
	mutex_unlock(&lpshim_mutex);
refused:
	pr_err("failed to enable patch '%s' (%d)\n", patch->mod->name, ret);
	return ret;
}
EXPORT_SYMBOL_GPL(lpshim_enable_patch);

static int lpshim_disable_patch(struct lpshim_patch *patch)
{
	int ret;

	lockdep_assert_held(&lpshim_mutex);
	if (WARN_ON_ONCE(!patch->enabled))
		return -EINVAL;
	if (lpshim_transition_patch) {
		pr_err("patch '%s' is in transition; try again when it completes\n",
		       lpshim_transition_patch->mod->name);
		return -EAGAIN;	/* as at enable */
	}
	/* Patches leave the stack top first: a lower one's functions may be under others. */
	if (!list_is_last(&patch->list, &lpshim_patches)) {
		pr_err("patch '%s' is not on top of the stack: disable '%s' first\n",
		       patch->mod->name,
		       list_last_entry(&lpshim_patches, struct lpshim_patch, list)->mod->name);
		return -EBUSY;
	}

	ret = lpshim_init_transition(patch, LPSHIM_UNPATCHED);
	if (ret)
		return ret;
	lpshim_pre_unpatch_callbacks(patch);
	lpshim_start_transition();
	patch->enabled = false;
	lpshim_queue_first_pass();
	return 0;
}

/* --- modules loaded after a patch ------------------------------------------------------- */

static void lpshim_revert_module(struct module *mod, struct lpshim_patch *limit)
{
	struct lpshim_patch *patch;
	struct lpshim_object *obj;

	list_for_each_entry(patch, &lpshim_patches, list) {
		if (patch == limit)
			break;
		lpshim_for_each_object(patch, obj) {
			if (!obj->name || obj->mod != mod)
				continue;
			if (patch != lpshim_transition_patch)
				lpshim_pre_unpatch_callback(obj);
			pr_notice("reverting patch '%s' on unloading module '%s'\n",
				  patch->mod->name, mod->name);
			lpshim_unpatch_object(obj);
			lpshim_post_unpatch_callback(obj);
			lpshim_clear_object_relocs(patch, obj);
			lpshim_clear_object(obj);
		}
	}
}

static int lpshim_module_coming(struct module *mod)
{
	struct lpshim_module_ref *ref;
	struct lpshim_patch *patch;
	struct lpshim_object *obj;
	int ret = 0;

	ref = kzalloc(sizeof(*ref), GFP_KERNEL);
	if (!ref)
		return -ENOMEM;
	ref->mod = mod;

	mutex_lock(&lpshim_mutex);
	raw_spin_lock(&lpshim_coming_lock);
	list_add(&ref->node, &lpshim_coming_modules);
	raw_spin_unlock(&lpshim_coming_lock);
	list_for_each_entry(patch, &lpshim_patches, list) {
		lpshim_for_each_object(patch, obj) {
			if (!obj->name || strcmp(obj->name, mod->name))
				continue;
			obj->mod = mod;
			ret = lpshim_init_object_loaded(patch, obj);
			if (ret)
				goto err;
			pr_notice("applying patch '%s' to loading module '%s'\n",
				  patch->mod->name, mod->name);
			ret = lpshim_pre_patch_callback(obj);
			if (ret)
				goto err;
			ret = lpshim_patch_object(patch, obj, true);
			if (ret) {
				lpshim_post_unpatch_callback(obj);
				goto err;
			}
			/* In transition: post_patch runs when the transition completes. */
			if (patch != lpshim_transition_patch)
				lpshim_post_patch_callback(obj);
		}
	}
	lpshim_transition_objects_changed();
	mutex_unlock(&lpshim_mutex);
	return 0;
err:
	pr_err("patch '%s' failed for module '%s', refusing to load module '%s'\n",
	       patch->mod->name, mod->name, mod->name);
	lpshim_clear_object_relocs(patch, obj);
	lpshim_clear_object(obj);
	lpshim_revert_module(mod, patch);
	raw_spin_lock(&lpshim_coming_lock);
	list_del(&ref->node);
	raw_spin_unlock(&lpshim_coming_lock);
	kfree(ref);
	mutex_unlock(&lpshim_mutex);
	return ret;
}

/* @mod is no longer coming: it is live or going. */
static void lpshim_forget_coming_module(struct module *mod)
{
	struct lpshim_module_ref *ref, *tmp;
	LIST_HEAD(gone);

	raw_spin_lock(&lpshim_coming_lock);
	list_for_each_entry_safe(ref, tmp, &lpshim_coming_modules, node)
		if (ref->mod == mod)
			list_move(&ref->node, &gone);
	raw_spin_unlock(&lpshim_coming_lock);
	list_for_each_entry_safe(ref, tmp, &gone, node)
		kfree(ref);
}

static void lpshim_module_going(struct module *mod)
{
	mutex_lock(&lpshim_mutex);
	lpshim_revert_module(mod, NULL);
	lpshim_transition_objects_changed();
	lpshim_forget_coming_module(mod);
	mutex_unlock(&lpshim_mutex);
}

/*
 * COMING runs after ftrace knows the module's functions and before its init; GOING after its
 * exit (or a failed load) and before ftrace forgets them.
 */
static int lpshim_module_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct module *mod = data;

	switch (action) {
	case MODULE_STATE_COMING:
		return notifier_from_errno(lpshim_module_coming(mod));
	case MODULE_STATE_LIVE:
		/*
		 * Its state says it is alive from now on (lpshim_find_alive_module()). Without
		 * lpshim_mutex: the load (a patch module's insmod too) returns now, not after
		 * the pass of a transition under way.
		 */
		lpshim_forget_coming_module(mod);
		break;
	case MODULE_STATE_GOING:
		lpshim_module_going(mod);
		break;
	}
	return NOTIFY_OK;
}

static struct notifier_block lpshim_module_nb = {
	.notifier_call = lpshim_module_notify,
	.priority = INT_MAX,	/* before the module's other users see it coming */
};

/* --- debugfs ----------------------------------------------------------------------------- */

static struct dentry *lpshim_debugfs_dir;

static int lpshim_tasks_show(struct seq_file *m, void *v)
{
	mutex_lock(&lpshim_mutex);
	lpshim_show_pending_tasks(m);
	mutex_unlock(&lpshim_mutex);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lpshim_tasks);

static int lpshim_stats_show(struct seq_file *m, void *v)
{
	mutex_lock(&lpshim_mutex);
	lpshim_task_table_show_stats(m);
	lpshim_show_transition_stats(m);
	mutex_unlock(&lpshim_mutex);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lpshim_stats);

#ifdef LPSHIM_DEBUG
static int lpshim_task_states_show(struct seq_file *m, void *v)
{
	mutex_lock(&lpshim_mutex);
	lpshim_show_task_states(m);
	mutex_unlock(&lpshim_mutex);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lpshim_task_states);
#endif

/* --- load / unload ---------------------------------------------------------------------------- */

static int __init lpshim_init(void)
{
	int ret;

	ret = lpshim_ksyms_init();
	if (ret)
		goto out;

	lpshim_root_kobj = kobject_create_and_add("lpshim", kernel_kobj);
	if (!lpshim_root_kobj) {
		pr_err("cannot create /sys/kernel/lpshim\n");
		ret = -ENOMEM;
		goto out;
	}
	ret = lpshim_transition_init();
	if (ret) {
		pr_err("cannot register the scheduler probes of the consistency model (%d)\n", ret);
		kobject_put(lpshim_root_kobj);
		goto out;
	}
	ret = register_module_notifier(&lpshim_module_nb);
	if (ret) {
		lpshim_transition_exit();
		kobject_put(lpshim_root_kobj);
		goto out;
	}
	lpshim_debugfs_dir = debugfs_create_dir("lpshim", NULL);
	debugfs_create_file("tasks", 0400, lpshim_debugfs_dir, NULL, &lpshim_tasks_fops);
	debugfs_create_file("stats", 0400, lpshim_debugfs_dir, NULL, &lpshim_stats_fops);
#ifdef LPSHIM_DEBUG
	debugfs_create_file("task_states", 0400, lpshim_debugfs_dir, NULL,
			    &lpshim_task_states_fops);
#endif
	pr_info("loaded (version %s)\n", LPSHIM_VERSION);
out:
	return ret;
}

/* Patch modules hold a reference on lpshim: it unloads only when no patch is left. */
static void __exit lpshim_exit(void)
{
	struct lpshim_module_ref *ref, *tmp;

	debugfs_remove_recursive(lpshim_debugfs_dir);
	unregister_module_notifier(&lpshim_module_nb);
	lpshim_transition_exit();
	WARN_ON_ONCE(!list_empty(&lpshim_patches));
	/* A module may be loading now: its notifications will not come to lpshim any more. */
	list_for_each_entry_safe(ref, tmp, &lpshim_coming_modules, node) {
		list_del(&ref->node);
		kfree(ref);
	}
	lpshim_patch_exit();
	lpshim_shadow_exit();
	kobject_put(lpshim_root_kobj);
	pr_info("unloaded\n");
}

module_init(lpshim_init);
module_exit(lpshim_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim: live patching shim for livepatchd");
MODULE_VERSION(LPSHIM_VERSION);
