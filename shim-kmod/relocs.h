/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * relocs.h - livepatch relocations of patch modules: the references of a patch's code to
 * symbols that are not exported (static functions and data of vmlinux or of a module)
 *
 * lpshim takes upstream livepatch's format (Documentation/livepatch/module-elf-format.rst):
 * sections .klp.rela.<object>.<section> flagged SHF_RELA_LIVEPATCH | SHF_ALLOC, whose symbols
 * are .klp.sym.<object>.<name>,<position> in SHN_LIVEPATCH, in a module whose modinfo says
 * livepatch=Y (LPSHIM_PATCH_MODULE() does). The kernel's module loader applies the vmlinux
 * sections when the patch module loads and keeps the ELF information (mod->klp_info); lpshim
 * applies a module object's sections when that module is loaded (at enable, or as it loads
 * later), and clears them when it goes, so that its next load is patched again.
 */
#ifndef _LPSHIM_RELOCS_H
#define _LPSHIM_RELOCS_H

#include <lpshim/lpshim.h>

/*
 * Before a patch is enabled: refuse one whose livepatch relocations could not be applied (the
 * module has relocations for module objects but no livepatch modinfo, or one of an object the
 * patch does not patch). Logs why.
 */
int lpshim_check_patch_relocs(struct lpshim_patch *patch);

/*
 * Apply the livepatch relocations of @obj, a module object whose module is loaded (or coming):
 * every symbol is resolved and every relocation checked before any is written, so that a
 * refusal (logged, with the symbol and the reason) changes nothing. lpshim_mutex held.
 */
int lpshim_apply_object_relocs(struct lpshim_patch *patch, struct lpshim_object *obj);

/* Undo lpshim_apply_object_relocs() as @obj's module goes. lpshim_mutex held. */
void lpshim_clear_object_relocs(struct lpshim_patch *patch, struct lpshim_object *obj);

#endif /* _LPSHIM_RELOCS_H */
