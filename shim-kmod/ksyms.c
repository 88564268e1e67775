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
#ifdef CONFIG_X86_KERNEL_IBT
#include <asm/ibt.h>
#endif

#include "ksyms.h"

typedef unsigned long (*kallsyms_lookup_name_t)(const char *name);

/* Written once in lpshim_ksyms_init(), before anything can call lpshim_lookup_name(). */
static kallsyms_lookup_name_t lpshim_kallsyms_lookup_name;

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

int lpshim_ksyms_init(void)
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

	lpshim_kallsyms_lookup_name = (kallsyms_lookup_name_t)addr;
	/* A wrong entry address would crash here rather than later: check it finds itself. */
	if (lpshim_kallsyms_lookup_name("kallsyms_lookup_name") != addr) {
		lpshim_kallsyms_lookup_name = NULL;
		pr_err("cannot find kallsyms_lookup_name: the kprobe address %px is not its entry\n",
		       kp.addr);
		return -ENOENT;
	}
	return 0;
}

unsigned long lpshim_lookup_name(const char *name)
{
	if (WARN_ON_ONCE(!lpshim_kallsyms_lookup_name))
		return 0;
	return lpshim_kallsyms_lookup_name(name);
}
