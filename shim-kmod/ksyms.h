/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ksyms.h - kernel helpers lpshim needs but the kernel does not export
 *
 * They are resolved once, at load, through kallsyms_lookup_name (itself found with a kprobe).
 * lpshim refuses to load when one is missing rather than run without it. After
 * lpshim_ksyms_init() succeeds every pointer below is valid until unload.
 */
#ifndef _LPSHIM_KSYMS_H
#define _LPSHIM_KSYMS_H

#include <linux/elf.h>
#include <linux/types.h>
#include <linux/spinlock_types.h>

struct module;
struct task_struct;
struct tracepoint;
struct callback_head;
struct mutex;

struct lpshim_ksyms {
	unsigned long (*kallsyms_lookup_name)(const char *name);
	int (*kallsyms_lookup_size_offset)(unsigned long addr, unsigned long *size,
					   unsigned long *offset);
	/* vmlinux symbols only; its callback's prototype changed in 6.2 (see ksyms.c) */
	void *kallsyms_on_each_symbol;
	unsigned long (*ftrace_location)(unsigned long ip);
	/* needs module_mutex or preemption disabled */
	struct module *(*find_module)(const char *name);
	int *ftrace_enabled;

	/* the per-task consistency model (transition.c, task_state.c) */
	rwlock_t *tasklist_lock;
	int (*task_call_func)(struct task_struct *p, int (*func)(struct task_struct *, void *),
			      void *arg);
	int (*task_curr)(const struct task_struct *p);
	int (*stack_trace_save_tsk_reliable)(struct task_struct *tsk, unsigned long *store,
					     unsigned int size);
	struct task_struct *(*idle_task)(int cpu);
	int (*wake_up_state)(struct task_struct *p, unsigned int state);
	struct callback_head *(*task_work_cancel_match)(struct task_struct *task,
							bool (*match)(struct callback_head *, void *),
							void *data);
	/* livepatch relocations (relocs.c); text_poke is not sealed on Debian's 6.12 */
	void *(*text_poke)(void *addr, const void *opcode, size_t len);
	struct mutex *text_mutex;
	/* core-kernel tracepoints: not exported, found with for_each_kernel_tracepoint() */
	struct tracepoint *tp_task_newtask;
	struct tracepoint *tp_sched_process_exit;
	struct tracepoint *tp_sched_process_free;
	struct tracepoint *tp_sched_switch;
};

extern struct lpshim_ksyms lpshim_ksyms;

int lpshim_ksyms_init(void);

/*
 * Call @fn for every vmlinux symbol, in kallsyms order, until it returns non-zero (which is
 * then returned). May sleep between symbols.
 */
int lpshim_for_each_vmlinux_symbol(int (*fn)(void *data, const char *name, unsigned long addr),
				   void *data);

/*
 * Same for the symbols of @mod (loaded, or coming: during its init the full symbol table),
 * with preemption disabled: @fn must not sleep.
 */
int lpshim_for_each_module_symbol(struct module *mod,
				  int (*fn)(void *data, const char *name, unsigned long addr),
				  void *data);

#endif /* _LPSHIM_KSYMS_H */
