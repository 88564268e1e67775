// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_debug_checks - trips each checker of the debug kernel (scripts/build-debug-kernel) on
 * demand, so that the rig's self-test can show that every kind of report fails a run
 * (tests/vm/rig-selftest --debug-checks). Built for the debug kernel only.
 *
 * Each file of /sys/kernel/debug/test_debug_checks/ takes "1" and makes one report, without
 * corrupting anything: the out-of-bounds read is into KASAN's redzone, the list is checked
 * before it is changed, the lock inversion happens in one thread (lockdep reports the possible
 * deadlock, none happens).
 *
 *   kasan         a read one byte past a kmalloc'ed object   BUG: KASAN: slab-out-of-bounds
 *   list          list_del() of an entry already deleted     list_del corruption (WARNING:)
 *   atomic_sleep  might_sleep() under a spinlock             BUG: sleeping function called
 *                                                            from invalid context
 *   preempt       smp_processor_id() while preemptible       BUG: using smp_processor_id()
 *                                                            in preemptible
 *   rcu           rcu_dereference() outside a read section   WARNING: suspicious RCU usage
 *   lockdep       two mutexes taken in both orders           WARNING: possible circular
 *                                                            locking dependency detected
 *
 * lockdep turns itself off after its first report, and the RCU checks with it; a KASAN report
 * turns it off too (it taints the kernel LOCKDEP_NOW_UNRELIABLE): trip rcu and lockdep first.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

static noinline void trip_kasan(void)
{
	static volatile size_t past_the_end = 13;
	char *p = kmalloc(past_the_end, GFP_KERNEL);

	if (!p)
		return;
	pr_info("reading one byte past a %zu-byte object\n", past_the_end);
	(void)READ_ONCE(p[past_the_end]);
	kfree(p);
}

static noinline void trip_list(void)
{
	LIST_HEAD(head);
	struct list_head entry;

	list_add(&entry, &head);
	list_del(&entry);
	pr_info("deleting a list entry twice\n");
	list_del(&entry); /* its pointers are LIST_POISON: reported, and left alone */
}

static DEFINE_SPINLOCK(atomic_lock);

static noinline void trip_atomic_sleep(void)
{
	pr_info("might_sleep() under a spinlock\n");
	spin_lock(&atomic_lock);
	might_sleep();
	spin_unlock(&atomic_lock);
}

static noinline void trip_preempt(void)
{
	pr_info("smp_processor_id() while preemptible: CPU %d\n", smp_processor_id());
}

struct rcu_thing {
	int value;
};
static struct rcu_thing rcu_thing = { .value = 1 };
static struct rcu_thing __rcu *rcu_thing_ptr = &rcu_thing;

static noinline void trip_rcu(void)
{
	struct rcu_thing *t = rcu_dereference(rcu_thing_ptr);

	pr_info("rcu_dereference() outside rcu_read_lock(): %d\n", t->value);
}

static DEFINE_MUTEX(lock_a);
static DEFINE_MUTEX(lock_b);

static noinline void trip_lockdep(void)
{
	pr_info("taking lock_a then lock_b, then lock_b then lock_a\n");
	mutex_lock(&lock_a);
	mutex_lock(&lock_b);
	mutex_unlock(&lock_b);
	mutex_unlock(&lock_a);
	mutex_lock(&lock_b);
	mutex_lock(&lock_a);
	mutex_unlock(&lock_a);
	mutex_unlock(&lock_b);
}

static const struct {
	const char *name;
	void (*trip)(void);
} checks[] = {
	{ "kasan", trip_kasan },
	{ "list", trip_list },
	{ "atomic_sleep", trip_atomic_sleep },
	{ "preempt", trip_preempt },
	{ "rcu", trip_rcu },
	{ "lockdep", trip_lockdep },
};

static ssize_t check_write(struct file *file, const char __user *ubuf, size_t count,
			   loff_t *ppos)
{
	void (*trip)(void) = file->private_data;
	char buf[4] = {};

	if (count > sizeof(buf) - 1 || copy_from_user(buf, ubuf, count))
		return -EINVAL;
	if (strcmp(strim(buf), "1"))
		return -EINVAL;
	trip();
	return count;
}

static const struct file_operations check_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = check_write,
};

static struct dentry *debugfs_dir;

static int __init test_debug_checks_init(void)
{
	int i;

	debugfs_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	if (IS_ERR(debugfs_dir)) {
		pr_err("cannot create debugfs directory: %ld\n", PTR_ERR(debugfs_dir));
		return PTR_ERR(debugfs_dir);
	}
	for (i = 0; i < ARRAY_SIZE(checks); i++)
		debugfs_create_file(checks[i].name, 0200, debugfs_dir, checks[i].trip, &check_fops);
	return 0;
}

static void __exit test_debug_checks_exit(void)
{
	debugfs_remove_recursive(debugfs_dir);
}

module_init(test_debug_checks_init);
module_exit(test_debug_checks_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Trips each checker of the debug kernel on demand, for the rig's self-test");
