// SPDX-License-Identifier: GPL-2.0-only
/*
 * ksyms.c - resolve the kernel helpers that are not exported to modules
 *
 * kallsyms_lookup_name() has not been exported since 5.7. A kprobe on it reports its address;
 * everything else lpshim needs is then looked up through it, once, at load.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kprobes.h>
#include <linux/kallsyms.h>
#include <linux/module.h>
#include <linux/version.h>
#include <linux/tracepoint.h>
#ifdef CONFIG_X86_KERNEL_IBT
#include <asm/ibt.h>
#endif

#include "debug.h"
#include "ksyms.h"

/* Written once in lpshim_ksyms_init(), before any other part of lpshim runs. */
struct lpshim_ksyms lpshim_ksyms;

/*
 * On IBT kernels a kprobe on a function entry is placed after its ENDBR instruction
 * (arch_adjust_kprobe_addr()), 4 bytes into the function; the ENDBR may also have been sealed
 * into a poison NOP. Step back over either to get the symbol's address.
 */
static unsigned long lpshim_func_entry(unsigned long addr)
{
#ifdef CONFIG_X86_KERNEL_IBT
	u32 insn;

	if (!copy_from_kernel_nofault(&insn, (void *)(addr - ENDBR_INSN_SIZE), sizeof(insn)) &&
	    is_endbr(insn))
		return addr - ENDBR_INSN_SIZE;
#endif
	return addr;
}

/*
 * Whether lpshim may call the helper at @addr through a pointer. A CPU that enforces IBT
 * faults (#CP, "Missing ENDBR") on an indirect call that does not land on an ENDBR, and at boot
 * the kernel seals (overwrites with a NOP) the ENDBR of every function it never calls
 * indirectly itself: on Debian's 6.12, task_call_func, find_module, kallsyms_lookup_name and
 * others of lpshim's helpers (docs/architecture.md). lpshim refuses to load rather than fault.
 */
static bool lpshim_indirect_callable(const char *name, unsigned long addr)
{
	if (lpshim_debug_ibt_sealed(name))
		return false;
#ifdef CONFIG_X86_KERNEL_IBT
	if (cpu_feature_enabled(X86_FEATURE_IBT)) {
		u32 insn;

		/* is_endbr() also matches the seal's poison NOP */
		if (copy_from_kernel_nofault(&insn, (void *)addr, sizeof(insn)) ||
		    !is_endbr(insn) || insn == gen_endbr_poison())
			return false;
	}
#endif
	return true;
}

static int lpshim_refuse_sealed(const char *name)
{
	pr_err("cannot call %s: this CPU enforces IBT and the kernel sealed %s at boot against indirect calls; boot with ibt=off to use lpshim on this kernel\n",
	       name, name);
	return -EOPNOTSUPP;
}

static int lpshim_resolve_kallsyms_lookup_name(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	unsigned long addr;
	int ret;

	ret = register_kprobe(&kp);
	if (ret) {
		pr_err("cannot find kallsyms_lookup_name: register_kprobe failed (%d); lpshim needs CONFIG_KPROBES\n",
		       ret);
		return ret;
	}
	addr = lpshim_func_entry((unsigned long)kp.addr);
	unregister_kprobe(&kp);
	if (!lpshim_indirect_callable("kallsyms_lookup_name", addr))
		return lpshim_refuse_sealed("kallsyms_lookup_name");

	lpshim_ksyms.kallsyms_lookup_name = (void *)addr;
	/* A wrong entry address would crash here rather than later: check it finds itself. */
	if (lpshim_ksyms.kallsyms_lookup_name("kallsyms_lookup_name") != addr) {
		lpshim_ksyms.kallsyms_lookup_name = NULL;
		pr_err("cannot find kallsyms_lookup_name: the kprobe address %px is not its entry\n",
		       kp.addr);
		return -ENOENT;
	}
	return 0;
}

static const struct {
	const char *name;
	struct tracepoint **tp;
} lpshim_tracepoints[] = {
	{ "task_newtask", &lpshim_ksyms.tp_task_newtask },
	{ "sched_process_exit", &lpshim_ksyms.tp_sched_process_exit },
	{ "sched_process_free", &lpshim_ksyms.tp_sched_process_free },
	{ "sched_switch", &lpshim_ksyms.tp_sched_switch },
};

static void lpshim_match_tracepoint(struct tracepoint *tp, void *data)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(lpshim_tracepoints); i++)
		if (!strcmp(tp->name, lpshim_tracepoints[i].name))
			*lpshim_tracepoints[i].tp = tp;
}

static int lpshim_find_tracepoints(void)
{
	int i;

	for_each_kernel_tracepoint(lpshim_match_tracepoint, NULL);
	for (i = 0; i < ARRAY_SIZE(lpshim_tracepoints); i++) {
		if (!*lpshim_tracepoints[i].tp) {
			pr_err("cannot find the %s tracepoint; lpshim needs CONFIG_TRACEPOINTS\n",
			       lpshim_tracepoints[i].name);
			return -ENOENT;
		}
	}
	return 0;
}

int lpshim_ksyms_init(void)
{
	/* @call: a function lpshim calls through the pointer; else data it reads or locks */
	const struct {
		const char *name;
		void **addr;
		bool call;
	} helpers[] = {
		{ "kallsyms_lookup_size_offset", (void **)&lpshim_ksyms.kallsyms_lookup_size_offset, true },
		{ "kallsyms_on_each_symbol", &lpshim_ksyms.kallsyms_on_each_symbol, true },
		{ "ftrace_location", (void **)&lpshim_ksyms.ftrace_location, true },
		{ "find_module", (void **)&lpshim_ksyms.find_module, true },
		{ "ftrace_enabled", (void **)&lpshim_ksyms.ftrace_enabled, false },
		{ "tasklist_lock", (void **)&lpshim_ksyms.tasklist_lock, false },
		{ "task_call_func", (void **)&lpshim_ksyms.task_call_func, true },
		{ "task_curr", (void **)&lpshim_ksyms.task_curr, true },
		{ "stack_trace_save_tsk_reliable",
		  (void **)&lpshim_ksyms.stack_trace_save_tsk_reliable, true },
		{ "idle_task", (void **)&lpshim_ksyms.idle_task, true },
		{ "wake_up_state", (void **)&lpshim_ksyms.wake_up_state, true },
		{ "task_work_cancel_match", (void **)&lpshim_ksyms.task_work_cancel_match, true },
		{ "text_poke", (void **)&lpshim_ksyms.text_poke, true },
		{ "text_mutex", (void **)&lpshim_ksyms.text_mutex, false },
	};
	unsigned long addr;
	int i, ret;

	ret = lpshim_resolve_kallsyms_lookup_name();
	if (ret)
		return ret;

	for (i = 0; i < ARRAY_SIZE(helpers); i++) {
		addr = lpshim_ksyms.kallsyms_lookup_name(helpers[i].name);
		if (!addr) {
			pr_err("cannot find %s: not in kallsyms; lpshim needs a kernel with CONFIG_KALLSYMS_ALL and CONFIG_LIVEPATCH\n",
			       helpers[i].name);
			return -ENOENT;
		}
		if (helpers[i].call && !lpshim_indirect_callable(helpers[i].name, addr))
			return lpshim_refuse_sealed(helpers[i].name);
		*helpers[i].addr = (void *)addr;
	}
	return lpshim_find_tracepoints();
}

struct lpshim_symbol_walk {
	int (*fn)(void *data, const char *name, unsigned long addr);
	void *data;
};

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
static int lpshim_vmlinux_symbol(void *data, const char *name, struct module *mod,
				 unsigned long addr)
#else
static int lpshim_vmlinux_symbol(void *data, const char *name, unsigned long addr)
#endif
{
	struct lpshim_symbol_walk *walk = data;

	return walk->fn(walk->data, name, addr);
}

int lpshim_for_each_vmlinux_symbol(int (*fn)(void *data, const char *name, unsigned long addr),
				   void *data)
{
	struct lpshim_symbol_walk walk = { .fn = fn, .data = data };
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
	int (*each)(int (*)(void *, const char *, struct module *, unsigned long), void *);
#else
	int (*each)(int (*)(void *, const char *, unsigned long), void *);
#endif

	each = lpshim_ksyms.kallsyms_on_each_symbol;
	return each(lpshim_vmlinux_symbol, &walk);
}

int lpshim_for_each_module_symbol(struct module *mod,
				  int (*fn)(void *data, const char *name, unsigned long addr),
				  void *data)
{
	struct mod_kallsyms *kallsyms;
	unsigned int i;
	int ret = 0;

	/* mod->kallsyms moves from the full table to core_kallsyms after init: RCU-sched */
	preempt_disable();
	kallsyms = rcu_dereference_sched(mod->kallsyms);
	for (i = 0; i < kallsyms->num_symtab && !ret; i++) {
		const Elf_Sym *sym = &kallsyms->symtab[i];

		if (sym->st_shndx == SHN_UNDEF || !sym->st_value)
			continue;
		ret = fn(data, kallsyms->strtab + sym->st_name, sym->st_value);
	}
	preempt_enable();
	return ret;
}
