// SPDX-License-Identifier: GPL-2.0-only
/*
 * shadow.c - shadow variables: data a live patch attaches to objects that already exist
 *
 * A patch cannot add a field to a structure whose instances are already allocated, so it
 * attaches the new field to the object's address instead. The pair <obj, id> names one
 * variable; @id tells apart the fields that one patch, or several, add to the same object.
 * The semantics are upstream livepatch's klp_shadow_* (kernel/livepatch/shadow.c);
 * docs/shadow-variables.md explains them to patch authors. The kernel-doc is in
 * <lpshim/lpshim.h>.
 *
 * Patched functions run in every context a kernel function runs in, interrupts included: so
 * lookups take no lock (RCU), and the lock of the writers is taken with interrupts off.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/export.h>
#include <linux/hashtable.h>
#include <linux/lockdep.h>
#include <linux/overflow.h>
#include <linux/printk.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include <lpshim/lpshim.h>

#include "shadow.h"

/**
 * struct lpshim_shadow - one shadow variable
 * @node:	entry in lpshim_shadow_hash, in the bucket of @obj
 * @rcu_head:	delays the free until no lockless reader can still be stepping over @node
 * @obj:	the object the variable extends; only its address is used, it is never read
 * @id:		which of the object's variables this is
 * @data:	the variable, handed out to the patch; zeroed, then set up by the constructor
 */
struct lpshim_shadow {
	struct hlist_node node;
	struct rcu_head rcu_head;
	void *obj;
	unsigned long id;
	char data[];
};

/*
 * Hashed by the object's address alone, so that every variable of one object is in one bucket.
 * lpshim_shadow_free_all() knows only the id and walks every bucket, which is fine: a patch
 * calls it once, when it goes away. 2^12 buckets, as upstream.
 */
static DEFINE_HASHTABLE(lpshim_shadow_hash, 12);

/*
 * Protects every change to lpshim_shadow_hash, and makes "<obj, id> is absent, add it" one step
 * so that no variable is ever added twice. Readers do not take it; they walk a bucket under RCU.
 * It is taken with interrupts off because a patched function that adds or frees a variable may
 * run in an interrupt, on a CPU that already holds it. The constructors and destructors of the
 * patches run under it.
 */
static DEFINE_SPINLOCK(lpshim_shadow_lock);

static bool lpshim_shadow_match(const struct lpshim_shadow *shadow, const void *obj,
				unsigned long id)
{
	return shadow->obj == obj && shadow->id == id;
}

void *lpshim_shadow_get(void *obj, unsigned long id)
{
	struct lpshim_shadow *shadow;
	void *data = NULL;

	rcu_read_lock();
	hash_for_each_possible_rcu(lpshim_shadow_hash, shadow, node, (unsigned long)obj) {
		if (lpshim_shadow_match(shadow, obj, id)) {
			data = shadow->data;
			break;
		}
	}
	rcu_read_unlock();
	/*
	 * RCU makes the walk safe against a concurrent free, but does not keep @data alive after
	 * it: as upstream, the caller must know that nobody frees <obj, id> while it uses the data
	 * (the usual rule: a variable is freed where its object dies).
	 */
	return data;
}
EXPORT_SYMBOL_GPL(lpshim_shadow_get);

static void *lpshim_shadow_get_or_add(void *obj, unsigned long id, size_t size, gfp_t gfp_flags,
				      lpshim_shadow_ctor_t ctor, void *ctor_data,
				      bool warn_on_exist)
{
	struct lpshim_shadow *new_shadow;
	unsigned long flags;
	void *data;
	int err;

	/* The variable usually exists already (get_or_alloc on a hot path): stay lockless then. */
	data = lpshim_shadow_get(obj, id);
	if (data)
		goto exists;

	/*
	 * Allocate before taking the lock, so that the caller's @gfp_flags may sleep where the
	 * caller may; the allocation is thrown away if another CPU adds <obj, id> meanwhile.
	 * struct_size() saturates: an absurd @size fails here rather than wrap to a small buffer.
	 */
	new_shadow = kzalloc(struct_size(new_shadow, data, size), gfp_flags);
	if (!new_shadow)
		return NULL;
	new_shadow->obj = obj;
	new_shadow->id = id;

	spin_lock_irqsave(&lpshim_shadow_lock, flags);
	data = lpshim_shadow_get(obj, id);
	if (unlikely(data)) {
		spin_unlock_irqrestore(&lpshim_shadow_lock, flags);
		kfree(new_shadow);
		goto exists;
	}
	/*
	 * The constructor runs under the lock, so that it runs only for the variable that is
	 * really added (never for the loser of a race), and before hash_add_rcu() makes the
	 * variable visible: a reader never sees it half constructed.
	 */
	if (ctor) {
		err = ctor(obj, new_shadow->data, ctor_data);
		if (err) {
			spin_unlock_irqrestore(&lpshim_shadow_lock, flags);
			kfree(new_shadow);
			pr_err("Failed to construct shadow variable <%p, %lx> (%d)\n", obj, id, err);
			return NULL;
		}
	}
	hash_add_rcu(lpshim_shadow_hash, &new_shadow->node, (unsigned long)obj);
	spin_unlock_irqrestore(&lpshim_shadow_lock, flags);
	return new_shadow->data;

exists:
	/* A second alloc of <obj, id> is a bug in the patch: both callers would own the data. */
	if (warn_on_exist) {
		WARN(1, pr_fmt("Duplicate shadow variable <%p, %lx>\n"), obj, id);
		return NULL;
	}
	return data;
}

void *lpshim_shadow_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp_flags,
			  lpshim_shadow_ctor_t ctor, void *ctor_data)
{
	return lpshim_shadow_get_or_add(obj, id, size, gfp_flags, ctor, ctor_data, true);
}
EXPORT_SYMBOL_GPL(lpshim_shadow_alloc);

void *lpshim_shadow_get_or_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp_flags,
				 lpshim_shadow_ctor_t ctor, void *ctor_data)
{
	return lpshim_shadow_get_or_add(obj, id, size, gfp_flags, ctor, ctor_data, false);
}
EXPORT_SYMBOL_GPL(lpshim_shadow_get_or_alloc);

static void lpshim_shadow_del(struct lpshim_shadow *shadow, lpshim_shadow_dtor_t dtor)
{
	lockdep_assert_held(&lpshim_shadow_lock);

	/* Unlinked first: from here on no new lookup finds the variable the dtor takes apart. */
	hash_del_rcu(&shadow->node);
	if (dtor)
		dtor(shadow->obj, shadow->data);
	/* A lockless reader may still be on @node, about to follow its next pointer. */
	kfree_rcu(shadow, rcu_head);
}

void lpshim_shadow_free(void *obj, unsigned long id, lpshim_shadow_dtor_t dtor)
{
	struct lpshim_shadow *shadow;
	unsigned long flags;

	spin_lock_irqsave(&lpshim_shadow_lock, flags);
	hash_for_each_possible(lpshim_shadow_hash, shadow, node, (unsigned long)obj) {
		if (lpshim_shadow_match(shadow, obj, id)) {
			lpshim_shadow_del(shadow, dtor);
			break;
		}
	}
	spin_unlock_irqrestore(&lpshim_shadow_lock, flags);
}
EXPORT_SYMBOL_GPL(lpshim_shadow_free);

void lpshim_shadow_free_all(unsigned long id, lpshim_shadow_dtor_t dtor)
{
	struct lpshim_shadow *shadow;
	struct hlist_node *next;
	unsigned long flags;
	int bkt;

	spin_lock_irqsave(&lpshim_shadow_lock, flags);
	hash_for_each_safe(lpshim_shadow_hash, bkt, next, shadow, node) {
		if (shadow->id == id)
			lpshim_shadow_del(shadow, dtor);
	}
	spin_unlock_irqrestore(&lpshim_shadow_lock, flags);
}
EXPORT_SYMBOL_GPL(lpshim_shadow_free_all);

void lpshim_shadow_exit(void)
{
	struct lpshim_shadow *shadow;
	struct hlist_node *next;
	unsigned long flags;
	unsigned int left = 0;
	int bkt;

	/*
	 * Every patch module links against lpshim, so none is loaded any more and nobody can
	 * look these up. Their destructors went with their modules: free the memory only.
	 */
	spin_lock_irqsave(&lpshim_shadow_lock, flags);
	hash_for_each_safe(lpshim_shadow_hash, bkt, next, shadow, node) {
		lpshim_shadow_del(shadow, NULL);
		left++;
	}
	spin_unlock_irqrestore(&lpshim_shadow_lock, flags);

	WARN_ONCE(left, pr_fmt("%u shadow variables left at unload: a patch module did not free them\n"),
		  left);
}
