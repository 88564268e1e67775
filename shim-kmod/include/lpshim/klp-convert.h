/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * klp-convert.h - what a patch module's source tells lpshim-klp-convert
 *
 * A patch module may call functions and use variables of the kernel, or of the module it
 * patches, that are not exported: it declares them extern, as if they were, and after Kbuild
 * has built it, lpshim-klp-convert turns each reference into a livepatch relocation that the
 * kernel and lpshim resolve when the patch loads (docs/klp-convert.md).
 *
 * A name that several static symbols of one object share is ambiguous, and the converter
 * refuses it, listing them, until the source names the one it means:
 *
 *	extern unsigned long total_swap_pages;
 *	LPSHIM_SYMPOS(show_val_kb, "vmlinux", 2);
 *
 * The records go to a section that the module loader never loads (SHT_NOTE, which modpost
 * expects not to be allocated), and the converter removes
 * it; they reference no symbol.
 */
#ifndef _LPSHIM_KLP_CONVERT_H
#define _LPSHIM_KLP_CONVERT_H

#include <linux/stringify.h>

/*
 * LPSHIM_SYMPOS - which symbol a patch module means by a name
 * @sym:	the symbol, as the source names it; it must be declared before
 * @object:	a string: "vmlinux", or a module's name as lsmod shows it
 * @pos:	its position among the symbols named @sym in @object, counted from 1 in
 *		/proc/kallsyms order (a module's: in the order of its symbol table); 0 when the name
 *		is unique in @object
 *
 * Use it at file scope. It also tells the object of a symbol that vmlinux and a module both
 * have. The position is what upstream livepatch calls sympos, and what lpshim_func.old_sympos
 * means for the function a patch replaces.
 */
#define LPSHIM_SYMPOS(sym, object, pos)						\
	extern __typeof__(sym) sym;						\
	asm(".pushsection .lpshim.klp.sympos, \"\", @note\n\t"		\
	    ".asciz \"" #sym "\"\n\t"						\
	    ".asciz \"" object "\"\n\t"						\
	    ".asciz \"" __stringify(pos) "\"\n\t"				\
	    ".asciz \"" __FILE__ ":" __stringify(__LINE__) "\"\n\t"		\
	    ".popsection")

#endif /* _LPSHIM_KLP_CONVERT_H */
