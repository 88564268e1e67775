// SPDX-License-Identifier: GPL-2.0-only
/*
 * debug.c - test hooks and invariant checks of the debug build (debug.h); compiled to nothing
 * in the production build
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#ifdef LPSHIM_DEBUG

#include <linux/delay.h>
#include <linux/kallsyms.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "debug.h"
#include "ksyms.h"
#include "patch.h"

/**
 * struct lpshim_func_hook - a hook armed for one function: "FUNC:MS[:TGID]"
 * @ip:	the ftrace location of FUNC, 0 when disarmed
 * @ms:	how long; taken (set to 0) by the call that fires the hook
 * @tgid: only a call by this process fires it; 0: any
 */
struct lpshim_func_hook {
	unsigned long ip;
	unsigned int ms;
	int tgid;
};

static struct lpshim_func_hook delay_after_top, sleep_after_choice;

/* "FUNC:MS[:TGID]", or "" / "0" to disarm; FUNC must be a traceable function. */
static int lpshim_func_hook_set(const char *val, const struct kernel_param *kp)
{
	struct lpshim_func_hook *hook = kp->arg;
	char name[KSYM_NAME_LEN], *colon, *colon2;
	unsigned long addr, ip;
	unsigned int ms;
	int tgid = 0;

	if (!strcmp(val, "") || !strcmp(val, "\n") || sysfs_streq(val, "0")) {
		WRITE_ONCE(hook->ms, 0);
		WRITE_ONCE(hook->ip, 0);
		return 0;
	}
	if (strscpy(name, val, sizeof(name)) < 0)
		return -EINVAL;
	colon = strchr(name, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	colon2 = strchr(colon + 1, ':');
	if (colon2) {
		*colon2 = '\0';
		if (kstrtoint(strim(colon2 + 1), 10, &tgid) || tgid <= 0)
			return -EINVAL;
	}
	if (kstrtouint(strim(colon + 1), 10, &ms) || !ms)
		return -EINVAL;
	if (!lpshim_ksyms.kallsyms_lookup_name)
		return -EAGAIN;		/* lpshim is still loading: set it afterwards */
	addr = lpshim_ksyms.kallsyms_lookup_name(name);
	ip = addr ? lpshim_ksyms.ftrace_location(addr) : 0;
	if (!ip)
		return -ENOENT;
	WRITE_ONCE(hook->tgid, tgid);
	WRITE_ONCE(hook->ip, ip);
	WRITE_ONCE(hook->ms, ms);
	return 0;
}

static int lpshim_func_hook_get(char *buf, const struct kernel_param *kp)
{
	struct lpshim_func_hook *hook = kp->arg;

	return sysfs_emit(buf, "%ps:%u\n", (void *)READ_ONCE(hook->ip), READ_ONCE(hook->ms));
}

static const struct kernel_param_ops lpshim_func_hook_ops = {
	.set = lpshim_func_hook_set,
	.get = lpshim_func_hook_get,
};

module_param_cb(test_delay_after_top, &lpshim_func_hook_ops, &delay_after_top, 0644);
MODULE_PARM_DESC(test_delay_after_top, "debug build: FUNC:MS, see shim-kmod/debug.h");
module_param_cb(test_sleep_after_choice, &lpshim_func_hook_ops, &sleep_after_choice, 0644);
MODULE_PARM_DESC(test_sleep_after_choice, "debug build: FUNC:MS, see shim-kmod/debug.h");

static unsigned int test_table_delay_ms;
module_param(test_table_delay_ms, uint, 0644);
MODULE_PARM_DESC(test_table_delay_ms, "debug build: MS, see shim-kmod/debug.h");

static unsigned int test_pass_delay_ms;
module_param(test_pass_delay_ms, uint, 0644);
MODULE_PARM_DESC(test_pass_delay_ms, "debug build: MS, see shim-kmod/debug.h");

static int test_fail_task_alloc;
module_param(test_fail_task_alloc, int, 0644);
MODULE_PARM_DESC(test_fail_task_alloc, "debug build: TGID, see shim-kmod/debug.h");

static unsigned int test_switch_work_delay_ms;
module_param(test_switch_work_delay_ms, uint, 0644);
MODULE_PARM_DESC(test_switch_work_delay_ms, "debug build: MS, see shim-kmod/debug.h");

static unsigned int test_free_delay_ms;
module_param(test_free_delay_ms, uint, 0644);
MODULE_PARM_DESC(test_free_delay_ms, "debug build: MS, see shim-kmod/debug.h");

static int test_fail_exit_record;
module_param(test_fail_exit_record, int, 0644);
MODULE_PARM_DESC(test_fail_exit_record, "debug build: TGID, see shim-kmod/debug.h");

static int test_fail_switch_work;
module_param(test_fail_switch_work, int, 0644);
MODULE_PARM_DESC(test_fail_switch_work, "debug build: TGID, see shim-kmod/debug.h");

/* Read only at load, by lpshim_ksyms_init(): 0444. */
static char *test_ibt_sealed;
module_param(test_ibt_sealed, charp, 0444);
MODULE_PARM_DESC(test_ibt_sealed, "debug build: NAME, see shim-kmod/debug.h");

/* Whether a one-shot TGID hook is armed for @task's process; disarms it when it is. */
static bool lpshim_tgid_hook_take(int *hook, struct task_struct *task)
{
	int tgid = READ_ONCE(*hook);

	return tgid && task->tgid == tgid && cmpxchg(hook, tgid, 0) == tgid;
}

/* Fire @hook if it is armed for @ip (and current's process): its time (ms), disarmed; else 0. */
static __always_inline unsigned int lpshim_func_hook_take(struct lpshim_func_hook *hook,
							   unsigned long ip)
{
	int tgid = READ_ONCE(hook->tgid);

	if (likely(READ_ONCE(hook->ip) != ip) || (tgid && current->tgid != tgid))
		return 0;
	return xchg(&hook->ms, 0);
}

/* In the handler, between reading the top of the func_stack and reading its mark. */
void notrace lpshim_debug_delay_after_top(struct lpshim_func *func)
{
	unsigned int ms;

	if (likely(READ_ONCE(delay_after_top.ip) != func->ip) ||
	    READ_ONCE(func->redirect) != LPSHIM_REDIRECT_TRANSITION)
		return;
	ms = lpshim_func_hook_take(&delay_after_top, func->ip);
	if (ms)
		mdelay(ms);
}

/* In the handler, after it left its recursion-protected region: the choice is made. */
bool notrace lpshim_debug_sleep_after_choice(unsigned long ip)
{
	unsigned int ms;

	if (likely(READ_ONCE(sleep_after_choice.ip) != ip) || !preemptible())
		return false;
	ms = lpshim_func_hook_take(&sleep_after_choice, ip);
	if (!ms)
		return false;
	msleep(ms);
	return true;
}

void lpshim_debug_table_delay(void)
{
	unsigned int ms = xchg(&test_table_delay_ms, 0);

	if (ms) {
		pr_info("test: table set-up waits %u ms\n", ms);
		msleep(ms);
	}
}

void lpshim_debug_pass_delay(void)
{
	unsigned int ms = xchg(&test_pass_delay_ms, 0);

	if (ms) {
		pr_info("test: a pass waits %u ms\n", ms);
		msleep(ms);
		pr_info("test: the pass goes on\n");
	}
}

bool lpshim_debug_fail_task_alloc(struct task_struct *creator)
{
	return lpshim_tgid_hook_take(&test_fail_task_alloc, creator);
}

bool lpshim_debug_fail_exit_record(struct task_struct *task)
{
	return lpshim_tgid_hook_take(&test_fail_exit_record, task);
}

bool lpshim_debug_fail_switch_work(struct task_struct *task)
{
	return lpshim_tgid_hook_take(&test_fail_switch_work, task);
}

bool lpshim_debug_ibt_sealed(const char *name)
{
	return test_ibt_sealed && !strcmp(test_ibt_sealed, name);
}

void lpshim_debug_switch_work_delay(void)
{
	unsigned int ms = xchg(&test_switch_work_delay_ms, 0);

	if (ms)
		msleep(ms);
}

/* Before a freed patch's sysfs entry goes, and (@released) before its module is let go of. */
void lpshim_debug_free_delay(bool released)
{
	unsigned int ms = released ? xchg(&test_free_delay_ms, 0) : READ_ONCE(test_free_delay_ms);

	if (ms)
		msleep(ms);
}

/* --- invariant: no task's stack holds the code of a patch module about to be freed --------- */

#define LPSHIM_DEBUG_STACK_ENTRIES 64

struct lpshim_stack_check {
	struct module *mod;
	unsigned long *entries;
	unsigned long hit;
	bool unreliable;
};

static int lpshim_debug_check_task(struct task_struct *task, void *arg)
{
	struct lpshim_stack_check *c = arg;
	int nr, i;

	if (task != current && lpshim_ksyms.task_curr(task))
		return 0;	/* running: nothing to read; it cannot be inside a freed module yet */
	nr = lpshim_ksyms.stack_trace_save_tsk_reliable(task, c->entries,
							 LPSHIM_DEBUG_STACK_ENTRIES);
	if (nr < 0) {
		c->unreliable = true;
		return 0;
	}
	for (i = 0; i < nr; i++) {
		if (within_module_core(c->entries[i], c->mod)) {
			c->hit = c->entries[i];
			return 1;
		}
	}
	return 0;
}

void lpshim_debug_check_module_unused(struct lpshim_patch *patch)
{
	struct lpshim_stack_check c = { .mod = patch->mod };
	struct task_struct *g, *t;

	c.entries = kcalloc(LPSHIM_DEBUG_STACK_ENTRIES, sizeof(*c.entries), GFP_KERNEL);
	if (!c.entries)
		return;
	read_lock(lpshim_ksyms.tasklist_lock);
	for_each_process_thread(g, t) {
		if (!lpshim_ksyms.task_call_func(t, lpshim_debug_check_task, &c))
			continue;
		pr_err("debug: task %d (%s) runs code of '%s' (%pS), whose module is being released\n",
		       t->pid, t->comm, patch->mod->name, (void *)c.hit);
		WARN_ON_ONCE(1);
		break;
	}
	read_unlock(lpshim_ksyms.tasklist_lock);
	kfree(c.entries);
}

#endif /* LPSHIM_DEBUG */
