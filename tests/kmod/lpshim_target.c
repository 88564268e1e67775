// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_target - a module whose functions live patches replace, for tests and benchmarks.
 *
 * Each target function keeps its exact symbol name and its own __fentry__ call, and each
 * observation channel shows which version of a target ran. The debugfs ABI
 * (/sys/kernel/debug/lpshim_target/) and /dev/lpshim_target_sleep are documented in
 * docs/test-target.md; the short form:
 *
 *   version        r   "<lpshim_target_version()>\n"
 *   sleep_release  w   "1": wake every task in lpshim_target_sleep()
 *   sleepers       r   "<tasks inside lpshim_target_sleep()>\n"
 *   kthread_park   rw  "1"/"0": park/unpark kthread lpshim_tgt_park; reads "1" while parked
 *   kthread_busy   rw  "1"/"0": start/stop kthread lpshim_tgt_busy; reads "1" while looping
 *   busy_loops     r   "<iterations of the busy loop since load>\n"
 *   idle_inject    rw  "1"/"0": start/stop idle injection by kthread lpshim_tgt_idle/<cpu>
 *                      inside lpshim_target_idle_inject(); reads "1" while it is inside
 *   idle_checks    r   "checks=<n> mixed=<m>\n": interrupts in the injecting kthread's
 *                      context, and those that ran another version than the kthread
 *   bench          rw  N in 1..100000000; reads "calls=<N> ns_per_call=<x.yyy>
 *                      twin_ns_per_call=<x.yyy> overhead_ns=<[-]x.yyy>
 *                      overhead_per_twin=<[-]x.yyy> version_delta=<d>\n"
 *   check          rw  N in 1..1000000 or "reset"; reads "calls=<n> mixed=<m>\n"
 *   warn           w   "1": WARN()
 *
 * Every file holds a reference on this module while open (fops.owner), so rmmod refuses
 * with "in use" rather than freeing code under a sleeper or a running loop.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "lpshim_target.h"

#define BENCH_MAX_CALLS		100000000UL
#define CHECK_MAX_CALLS		1000000UL
#define TAG_MAX			64	/* longest version tag shown; longer ones are cut */

struct lpshim_target_waits lpshim_target_waits = {
	.sleep_wq = __WAIT_QUEUE_HEAD_INITIALIZER(lpshim_target_waits.sleep_wq),
	.sleep_gen = ATOMIC_LONG_INIT(0),
	.sleepers = ATOMIC_INIT(0),
	.park_wq = __WAIT_QUEUE_HEAD_INITIALIZER(lpshim_target_waits.park_wq),
};
EXPORT_SYMBOL_GPL(lpshim_target_waits);

/*
 * ---- the targets ----
 *
 * A target keeps its symbol name and its own ftrace call site: noinline and __noclone keep
 * the body out of its callers and stop .isra/.constprop clones; __noipa also stops identical
 * code folding (two targets return "original") and return-value propagation into callers.
 * EXPORT_SYMBOL_GPL makes each a global symbol that patch modules may also call.
 */

noinline __noclone __noipa const char *lpshim_target_version(void)
{
	return "original";
}
EXPORT_SYMBOL_GPL(lpshim_target_version);

noinline __noclone __noipa int lpshim_target_sleep(void)
{
	return lpshim_target_wait_released();
}
EXPORT_SYMBOL_GPL(lpshim_target_sleep);

noinline __noclone __noipa const char *lpshim_target_sleep_tag(void)
{
	return "original";
}
EXPORT_SYMBOL_GPL(lpshim_target_sleep_tag);

noinline __noclone __noipa void lpshim_target_kthread_park(void)
{
	lpshim_target_park_wait();
}
EXPORT_SYMBOL_GPL(lpshim_target_kthread_park);

noinline __noclone __noipa void lpshim_target_idle_inject(void)
{
	lpshim_target_idle_loop(1);
}
EXPORT_SYMBOL_GPL(lpshim_target_idle_inject);

/* Only the busy kthread writes it; it gives the busy work a result nobody can optimise out. */
static unsigned long busy_sink;

static __always_inline void busy_spin(void)
{
	unsigned long x = READ_ONCE(busy_sink);
	int i;

	for (i = 0; i < 32; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	WRITE_ONCE(busy_sink, x);
}

noinline __noclone __noipa void lpshim_target_busy_step(void)
{
	busy_spin();
}
EXPORT_SYMBOL_GPL(lpshim_target_busy_step);

noinline __noclone __noipa void lpshim_target_busy_work(void)
{
	busy_spin();
	/* Not the last call, so it cannot become a tail jump: this frame stays on the stack. */
	cond_resched();
	busy_spin();
}
EXPORT_SYMBOL_GPL(lpshim_target_busy_work);

noinline __noclone __noipa unsigned long lpshim_target_bench_fn(unsigned long i)
{
	return i;
}
EXPORT_SYMBOL_GPL(lpshim_target_bench_fn);

/* bench_fn's unpatched twin, the same-moment baseline; nothing may patch it. */
noinline __noclone __noipa unsigned long lpshim_target_bench_twin(unsigned long i)
{
	return i;
}
EXPORT_SYMBOL_GPL(lpshim_target_bench_twin);

noinline __noclone __noipa void lpshim_target_stage1(struct lpshim_target_call *c)
{
	c->token = LPSHIM_TARGET_TOKEN_V1;
}
EXPORT_SYMBOL_GPL(lpshim_target_stage1);

noinline __noclone __noipa int lpshim_target_stage2(struct lpshim_target_call *c)
{
	return c->token == LPSHIM_TARGET_TOKEN_V1 ? 0 : -EPROTO;
}
EXPORT_SYMBOL_GPL(lpshim_target_stage2);

noinline __noclone __noipa int lpshim_target_check_call(struct lpshim_target_call *c)
{
	int ret;

	lpshim_target_stage1(c);
	usleep_range(50, 100);
	ret = lpshim_target_stage2(c);
	barrier();	/* no tail jump to stage 2: this frame stays on the stack during it */
	return ret;
}
EXPORT_SYMBOL_GPL(lpshim_target_check_call);

/*
 * Copy a target's tag while preemption is off: a replacement's string lives in its patch
 * module, which is freed only after a synchronize_rcu() (free_module()) that waits for us.
 */
static __always_inline void copy_tag(char *buf, size_t size, const char *(*tag_fn)(void))
{
	preempt_disable();
	strscpy(buf, tag_fn(), size);
	preempt_enable();
}

/* ---- input parsing ---------------------------------------------------------------------- */

/* Copy a short control word from userspace; too long or empty is -EINVAL. */
static int read_word(const char __user *ubuf, size_t count, char *buf, size_t size)
{
	if (!count || count >= size)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	return 0;
}

/* Parse a decimal in [min, max] (one trailing newline allowed); anything else is -EINVAL. */
static int parse_ulong(const char __user *ubuf, size_t count, unsigned long min,
		       unsigned long max, unsigned long *val)
{
	char buf[24];
	int ret;

	ret = read_word(ubuf, count, buf, sizeof(buf));
	if (ret)
		return ret;
	if (kstrtoul(buf, 10, val) || *val < min || *val > max)
		return -EINVAL;
	return 0;
}

/* Define fops for a debugfs file read through seq_file and written through <name>_write. */
#define TARGET_RW_FOPS(name)						\
static int name##_open(struct inode *inode, struct file *file)		\
{									\
	return single_open(file, name##_show, NULL);			\
}									\
static const struct file_operations name##_fops = {			\
	.owner = THIS_MODULE,						\
	.open = name##_open,						\
	.read = seq_read,						\
	.llseek = seq_lseek,						\
	.write = name##_write,						\
	.release = single_release,					\
}

/* ---- version ---------------------------------------------------------------------------- */

static int version_show(struct seq_file *m, void *unused)
{
	char tag[TAG_MAX];

	copy_tag(tag, sizeof(tag), lpshim_target_version);
	seq_printf(m, "%s\n", tag);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(version);

/* ---- sleep: /dev/lpshim_target_sleep, sleep_release, sleepers --------------------------- */

/* One per open file: each open sleeps once, then reads back its message, then EOF. */
struct sleep_reader {
	struct mutex lock;	/* protects len and msg */
	size_t len;		/* 0 until this file's first read was released */
	char msg[sizeof("woken by ") + TAG_MAX];	/* + "\n" in place of the tag's NUL */
};

static int sleep_dev_open(struct inode *inode, struct file *file)
{
	struct sleep_reader *r = kzalloc(sizeof(*r), GFP_KERNEL);

	if (!r)
		return -ENOMEM;
	mutex_init(&r->lock);
	file->private_data = r;
	return nonseekable_open(inode, file);
}

static int sleep_dev_release(struct inode *inode, struct file *file)
{
	struct sleep_reader *r = file->private_data;

	mutex_destroy(&r->lock);
	kfree(r);
	return 0;
}

static ssize_t sleep_dev_read(struct file *file, char __user *ubuf, size_t count,
			      loff_t *ppos)
{
	struct sleep_reader *r = file->private_data;
	char tag[TAG_MAX] = "";
	bool released;
	ssize_t ret;

	mutex_lock(&r->lock);
	released = r->len;
	mutex_unlock(&r->lock);

	if (!released) {
		/* Sleep without r->lock: a signal must be able to get this task out. */
		ret = lpshim_target_sleep();
		if (ret)
			return ret;
		copy_tag(tag, sizeof(tag), lpshim_target_sleep_tag);
	}

	mutex_lock(&r->lock);
	if (!r->len)
		r->len = scnprintf(r->msg, sizeof(r->msg), "woken by %s\n", tag);
	ret = simple_read_from_buffer(ubuf, count, ppos, r->msg, r->len);
	mutex_unlock(&r->lock);
	return ret;
}

static const struct file_operations sleep_dev_fops = {
	.owner = THIS_MODULE,	/* an open file pins the module: rmmod says "in use" */
	.open = sleep_dev_open,
	.read = sleep_dev_read,
	.release = sleep_dev_release,
};

static struct miscdevice sleep_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "lpshim_target_sleep",
	.fops = &sleep_dev_fops,
	.mode = 0444,
};

static void release_sleepers(void)
{
	atomic_long_inc(&lpshim_target_waits.sleep_gen);
	wake_up_all(&lpshim_target_waits.sleep_wq);	/* pairs with wait_event_interruptible() */
}

static ssize_t sleep_release_write(struct file *file, const char __user *ubuf, size_t count,
				   loff_t *ppos)
{
	unsigned long v;
	int ret;

	ret = parse_ulong(ubuf, count, 1, 1, &v);
	if (ret)
		return ret;
	release_sleepers();
	return count;
}

static const struct file_operations sleep_release_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = sleep_release_write,
};

static int sleepers_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "%d\n", atomic_read(&lpshim_target_waits.sleepers));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(sleepers);

/* ---- kthreads: lpshim_tgt_park, lpshim_tgt_busy ------------------------------------------ */

static struct task_struct *park_thread;
static struct task_struct *busy_thread;

/* Lock-free flags: the debugfs writer stores, then wakes busy_wq; the kthread waits on it. */
static DECLARE_WAIT_QUEUE_HEAD(busy_wq);
static bool busy_requested;	/* written by debugfs kthread_busy */
static bool busy_running;	/* written by the busy kthread: true while it loops */
static unsigned long busy_loops;	/* written by the busy kthread only */

/* Idles here (outside every target) until parked; parked, it sleeps in the target. */
static int park_thread_fn(void *unused)
{
	struct lpshim_target_waits *w = &lpshim_target_waits;

	while (!kthread_should_stop()) {
		wait_event_interruptible(w->park_wq,
					 READ_ONCE(w->park_requested) || kthread_should_stop());
		if (READ_ONCE(w->park_requested) && !kthread_should_stop())
			lpshim_target_kthread_park();
	}
	return 0;
}

/* busy_step() never yields; busy_work() yields in its middle: the only place this thread does. */
static void busy_loop_once(void)
{
	lpshim_target_busy_step();
	lpshim_target_busy_work();
	WRITE_ONCE(busy_loops, busy_loops + 1);
}

static int busy_thread_fn(void *unused)
{
	while (!kthread_should_stop()) {
		if (!READ_ONCE(busy_requested)) {
			WRITE_ONCE(busy_running, false);
			wait_event_interruptible(busy_wq, READ_ONCE(busy_requested) ||
						 kthread_should_stop());
			continue;
		}
		WRITE_ONCE(busy_running, true);
		busy_loop_once();
	}
	WRITE_ONCE(busy_running, false);
	return 0;
}

static int kthread_park_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "%d\n", READ_ONCE(lpshim_target_waits.park_inside));
	return 0;
}

static ssize_t kthread_park_write(struct file *file, const char __user *ubuf, size_t count,
				  loff_t *ppos)
{
	unsigned long v;
	int ret;

	ret = parse_ulong(ubuf, count, 0, 1, &v);
	if (ret)
		return ret;
	WRITE_ONCE(lpshim_target_waits.park_requested, v);
	wake_up(&lpshim_target_waits.park_wq);
	return count;
}

TARGET_RW_FOPS(kthread_park);

static int kthread_busy_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "%d\n", READ_ONCE(busy_running));
	return 0;
}

static ssize_t kthread_busy_write(struct file *file, const char __user *ubuf, size_t count,
				  loff_t *ppos)
{
	unsigned long v;
	int ret;

	ret = parse_ulong(ubuf, count, 0, 1, &v);
	if (ret)
		return ret;
	WRITE_ONCE(busy_requested, v);
	wake_up(&busy_wq);
	return count;
}

TARGET_RW_FOPS(kthread_busy);

static int busy_loops_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "%lu\n", READ_ONCE(busy_loops));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(busy_loops);

/* ---- kthread lpshim_tgt_idle/<cpu>: idle injection --------------------------------------- */

static struct task_struct *idle_thread;
static DECLARE_WAIT_QUEUE_HEAD(idle_wq);
static struct hrtimer idle_probe;
static atomic64_t idle_checks = ATOMIC64_INIT(0);
static atomic64_t idle_mixed = ATOMIC64_INIT(0);

/*
 * Every millisecond while the kthread injects idle, on its CPU: an interrupt that arrives in
 * the injecting kthread's context calls lpshim_target_version(). Interrupts run the version of
 * the task they interrupt, so inside the original lpshim_target_idle_inject() it must return
 * "original", and inside a replacement something else.
 */
static enum hrtimer_restart idle_probe_fn(struct hrtimer *timer)
{
	struct lpshim_target_waits *w = &lpshim_target_waits;
	int inside = READ_ONCE(w->idle_version);

	if (current == idle_thread && inside && is_idle_task(current)) {
		bool original = !strcmp(lpshim_target_version(), "original");

		atomic64_inc(&idle_checks);
		if (original != (inside == 1))
			atomic64_inc(&idle_mixed);
	}
	if (!READ_ONCE(w->idle_requested))
		return HRTIMER_NORESTART;
	hrtimer_forward_now(timer, ms_to_ktime(1));
	return HRTIMER_RESTART;
}

/* Waits outside every target until asked, then injects idle inside idle_inject. */
static int idle_thread_fn(void *unused)
{
	struct lpshim_target_waits *w = &lpshim_target_waits;

	while (!kthread_should_stop()) {
		wait_event_interruptible(idle_wq, READ_ONCE(w->idle_requested) ||
					 kthread_should_stop());
		if (!READ_ONCE(w->idle_requested) || kthread_should_stop())
			continue;
		/* Pinned to this CPU, the kthread's own. */
		hrtimer_start(&idle_probe, ms_to_ktime(1), HRTIMER_MODE_REL_PINNED_HARD);
		lpshim_target_idle_inject();
		hrtimer_cancel(&idle_probe);
	}
	return 0;
}

static int idle_inject_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "%d\n", READ_ONCE(lpshim_target_waits.idle_version) != 0);
	return 0;
}

static ssize_t idle_inject_write(struct file *file, const char __user *ubuf, size_t count,
				 loff_t *ppos)
{
	unsigned long v;
	int ret;

	ret = parse_ulong(ubuf, count, 0, 1, &v);
	if (ret)
		return ret;
	WRITE_ONCE(lpshim_target_waits.idle_requested, v);
	wake_up(&idle_wq);
	return count;
}

TARGET_RW_FOPS(idle_inject);

static int idle_checks_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "checks=%lld mixed=%lld\n", (long long)atomic64_read(&idle_checks),
		   (long long)atomic64_read(&idle_mixed));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(idle_checks);

/*
 * On the last online CPU, SCHED_FIFO and bound to it, as play_idle_precise() requires (and as
 * powerclamp's and idle_inject's kthreads are).
 */
static int start_idle_thread(void)
{
	unsigned int cpu = cpumask_last(cpu_online_mask);

	hrtimer_init(&idle_probe, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
	idle_probe.function = idle_probe_fn;
	idle_thread = kthread_create_on_cpu(idle_thread_fn, NULL, cpu, "lpshim_tgt_idle/%u");
	if (IS_ERR(idle_thread)) {
		int ret = PTR_ERR(idle_thread);

		idle_thread = NULL;
		return ret;
	}
	sched_set_fifo(idle_thread);
	wake_up_process(idle_thread);
	return 0;
}

/* ---- bench ------------------------------------------------------------------------------ */

/*
 * bench_fn and its twin run in alternate bursts of about N/BENCH_MAX_PAIRS calls each, the
 * order swapped every pair, so that the emulated CPU's speed (under TCG the same call costs
 * 70-140 ns from one minute to the next, and another vCPU may take the host thread for a
 * while) is the same for both: each pair of bursts gives one sample, and medians over the
 * pairs drop the bursts an interrupt or the host slowed.
 */
#define BENCH_MAX_PAIRS		1024

/* Per pair of bursts, x 1000: ns per call of bench_fn, of the twin, their difference, ratio. */
struct bench_samples {
	s64 fn[BENCH_MAX_PAIRS];
	s64 twin[BENCH_MAX_PAIRS];
	s64 overhead[BENCH_MAX_PAIRS];
	s64 rel[BENCH_MAX_PAIRS];
};

static DEFINE_MUTEX(bench_lock);	/* serialises benchmarks; protects bench_result, bench_samples */
static struct {
	unsigned long calls;
	/* Medians over the pairs of bursts, x 1000 */
	s64 fn_ns, twin_ns;		/* ns per call of bench_fn, of the twin */
	s64 overhead_ns;		/* bench_fn's ns per call minus the twin's */
	s64 overhead_rel;		/* that difference per ns of the twin's */
	long version_delta;		/* sum of bench_fn's results minus the sum of the indices */
} bench_result;
static struct bench_samples bench_samples;

/* Print @milli, a fixed-point value x 1000, as [-]<int>.<3 digits>. */
static void seq_milli(struct seq_file *m, const char *name, s64 milli)
{
	u64 mag = milli < 0 ? -milli : milli;

	seq_printf(m, " %s=%s%llu.%03llu", name, milli < 0 ? "-" : "", mag / 1000, mag % 1000);
}

static int bench_show(struct seq_file *m, void *unused)
{
	int ret;

	ret = mutex_lock_killable(&bench_lock);
	if (ret)
		return ret;
	seq_printf(m, "calls=%lu", bench_result.calls);
	seq_milli(m, "ns_per_call", bench_result.fn_ns);
	seq_milli(m, "twin_ns_per_call", bench_result.twin_ns);
	seq_milli(m, "overhead_ns", bench_result.overhead_ns);
	seq_milli(m, "overhead_per_twin", bench_result.overhead_rel);
	seq_printf(m, " version_delta=%ld\n", bench_result.version_delta);
	mutex_unlock(&bench_lock);
	return 0;
}

static int cmp_s64(const void *a, const void *b)
{
	s64 x = *(const s64 *)a, y = *(const s64 *)b;

	return x < y ? -1 : x > y;
}

/* Sorts @v. */
static s64 median_s64(s64 *v, unsigned int n)
{
	sort(v, n, sizeof(*v), cmp_s64, NULL);
	return n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Time @len calls of @fn from index @from; adds the results to *@sum. */
static u64 bench_burst(unsigned long (*fn)(unsigned long), unsigned long from,
		       unsigned long len, unsigned long *sum)
{
	u64 start = ktime_get_ns();
	unsigned long i, s = 0;

	for (i = from; i < from + len; i++)
		s += fn(i);
	*sum += s;
	return ktime_get_ns() - start;
}

static ssize_t bench_write(struct file *file, const char __user *ubuf, size_t count,
			   loff_t *ppos)
{
	unsigned long n, burst, from, len, sum = 0, twin_sum = 0, since_resched = 0;
	struct bench_samples *b = &bench_samples;
	s64 t_fn, t_twin;
	unsigned int pairs = 0;
	ssize_t ret;

	ret = parse_ulong(ubuf, count, 1, BENCH_MAX_CALLS, &n);
	if (ret)
		return ret;
	ret = mutex_lock_killable(&bench_lock);
	if (ret)
		return ret;

	burst = DIV_ROUND_UP(n, BENCH_MAX_PAIRS);
	for (from = 0; from < n; from += len) {
		len = min(burst, n - from);
		if (pairs & 1) {
			t_twin = bench_burst(lpshim_target_bench_twin, from, len, &twin_sum);
			t_fn = bench_burst(lpshim_target_bench_fn, from, len, &sum);
		} else {
			t_fn = bench_burst(lpshim_target_bench_fn, from, len, &sum);
			t_twin = bench_burst(lpshim_target_bench_twin, from, len, &twin_sum);
		}
		b->fn[pairs] = div64_s64(t_fn * 1000, len);
		b->twin[pairs] = div64_s64(t_twin * 1000, len);
		b->overhead[pairs] = div64_s64((t_fn - t_twin) * 1000, len);
		b->rel[pairs] = div64_s64((t_fn - t_twin) * 1000, max_t(s64, t_twin, 1));
		pairs++;
		/* Between bursts, every 2^16 calls or so: outside the timing. */
		since_resched += len;
		if (since_resched >= 0x10000) {
			since_resched = 0;
			if (fatal_signal_pending(current)) {
				ret = -EINTR;
				goto out;
			}
			cond_resched();
		}
	}

	bench_result.calls = n;
	bench_result.fn_ns = median_s64(b->fn, pairs);
	bench_result.twin_ns = median_s64(b->twin, pairs);
	bench_result.overhead_ns = median_s64(b->overhead, pairs);
	bench_result.overhead_rel = median_s64(b->rel, pairs);
	/* n <= 10^8, so n * (n - 1) / 2 fits; wrap-around keeps a negative offset readable. */
	bench_result.version_delta = (long)(sum - n * (n - 1) / 2);
	ret = count;
out:
	mutex_unlock(&bench_lock);
	return ret;
}

TARGET_RW_FOPS(bench);

/* ---- check ------------------------------------------------------------------------------ */

/* Cumulative over all writers; "reset" zeroes both, not as one atomic step. */
static atomic64_t check_calls = ATOMIC64_INIT(0);
static atomic64_t check_mixed = ATOMIC64_INIT(0);

static int check_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "calls=%lld mixed=%lld\n", (long long)atomic64_read(&check_calls),
		   (long long)atomic64_read(&check_mixed));
	return 0;
}

/* Reentrant: each call's state is on this writer's stack, the counters are atomic. */
static ssize_t check_write(struct file *file, const char __user *ubuf, size_t count,
			   loff_t *ppos)
{
	unsigned long n, i;
	char buf[24];
	int ret;

	ret = read_word(ubuf, count, buf, sizeof(buf));
	if (ret)
		return ret;
	if (sysfs_streq(buf, "reset")) {
		atomic64_set(&check_calls, 0);
		atomic64_set(&check_mixed, 0);
		return count;
	}
	if (kstrtoul(buf, 10, &n) || n < 1 || n > CHECK_MAX_CALLS)
		return -EINVAL;

	for (i = 0; i < n; i++) {
		struct lpshim_target_call c = { .token = LPSHIM_TARGET_TOKEN_NONE };

		if (fatal_signal_pending(current))
			return -EINTR;
		if (lpshim_target_check_call(&c))
			atomic64_inc(&check_mixed);
		atomic64_inc(&check_calls);
	}
	return count;
}

TARGET_RW_FOPS(check);

/* ---- warn ------------------------------------------------------------------------------- */

static ssize_t warn_write(struct file *file, const char __user *ubuf, size_t count,
			  loff_t *ppos)
{
	unsigned long v;
	int ret;

	ret = parse_ulong(ubuf, count, 1, 1, &v);
	if (ret)
		return ret;
	WARN(1, "lpshim_target: warning requested by test\n");
	return count;
}

static const struct file_operations warn_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = warn_write,
};

/* ---- module ----------------------------------------------------------------------------- */

static struct dentry *debugfs_dir;

static void stop_kthreads(void)
{
	/* kthread_stop() wakes the thread; every wait above also ends on kthread_should_stop(). */
	WRITE_ONCE(lpshim_target_waits.park_requested, false);
	WRITE_ONCE(busy_requested, false);
	WRITE_ONCE(lpshim_target_waits.idle_requested, false);
	if (idle_thread)
		kthread_stop(idle_thread);
	idle_thread = NULL;
	if (busy_thread)
		kthread_stop(busy_thread);
	if (park_thread)
		kthread_stop(park_thread);
	busy_thread = NULL;
	park_thread = NULL;
}

static int __init lpshim_target_init(void)
{
	int ret;

	park_thread = kthread_run(park_thread_fn, NULL, "lpshim_tgt_park");
	if (IS_ERR(park_thread)) {
		ret = PTR_ERR(park_thread);
		park_thread = NULL;
		pr_err("cannot start kthread lpshim_tgt_park: %d\n", ret);
		goto err;
	}
	busy_thread = kthread_run(busy_thread_fn, NULL, "lpshim_tgt_busy");
	if (IS_ERR(busy_thread)) {
		ret = PTR_ERR(busy_thread);
		busy_thread = NULL;
		pr_err("cannot start kthread lpshim_tgt_busy: %d\n", ret);
		goto err;
	}
	ret = start_idle_thread();
	if (ret) {
		pr_err("cannot start kthread lpshim_tgt_idle: %d\n", ret);
		goto err;
	}

	debugfs_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	if (IS_ERR(debugfs_dir)) {
		ret = PTR_ERR(debugfs_dir);
		pr_err("cannot create debugfs directory (is debugfs enabled and not locked down?): %d\n",
		       ret);
		goto err;
	}
	debugfs_create_file("version", 0444, debugfs_dir, NULL, &version_fops);
	debugfs_create_file("sleep_release", 0200, debugfs_dir, NULL, &sleep_release_fops);
	debugfs_create_file("sleepers", 0444, debugfs_dir, NULL, &sleepers_fops);
	debugfs_create_file("kthread_park", 0644, debugfs_dir, NULL, &kthread_park_fops);
	debugfs_create_file("kthread_busy", 0644, debugfs_dir, NULL, &kthread_busy_fops);
	debugfs_create_file("busy_loops", 0444, debugfs_dir, NULL, &busy_loops_fops);
	debugfs_create_file("idle_inject", 0644, debugfs_dir, NULL, &idle_inject_fops);
	debugfs_create_file("idle_checks", 0444, debugfs_dir, NULL, &idle_checks_fops);
	debugfs_create_file("bench", 0644, debugfs_dir, NULL, &bench_fops);
	debugfs_create_file("check", 0644, debugfs_dir, NULL, &check_fops);
	debugfs_create_file("warn", 0200, debugfs_dir, NULL, &warn_fops);

	ret = misc_register(&sleep_dev);
	if (ret) {
		pr_err("cannot register /dev/%s: %d\n", sleep_dev.name, ret);
		goto err;
	}

	pr_info("loaded\n");
	return 0;

err:
	debugfs_remove_recursive(debugfs_dir);	/* NULL and ERR_PTR are no-ops */
	stop_kthreads();
	return ret;
}

/*
 * Runs only when no file of ours is open (each open pins the module), so no task can be in a
 * read, a write or lpshim_target_sleep(); the release below is belt and braces.
 */
static void __exit lpshim_target_exit(void)
{
	misc_deregister(&sleep_dev);
	debugfs_remove_recursive(debugfs_dir);
	release_sleepers();
	stop_kthreads();
	pr_info("unloaded\n");
}

module_init(lpshim_target_init);
module_exit(lpshim_target_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("livepatchd test target: functions to live-patch and ways to see which ran");
