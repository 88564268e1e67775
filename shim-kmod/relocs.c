// SPDX-License-Identifier: GPL-2.0-only
/*
 * relocs.c - livepatch relocations of patch modules (relocs.h)
 *
 * A module object's relocations are checked whole before any is written: every section name,
 * every symbol (its format, its object, its position among the object's symbols of that name),
 * every relocation type and target. Only then are they written, with text_poke() as the
 * kernel's apply_relocate_add() writes them into a live module (not through that function:
 * Debian's 6.12 seals it, and a call through a pointer to a sealed function faults on a CPU
 * with IBT). Clearing writes zeros back only where a site still holds what was written there.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/elf.h>
#include <linux/kallsyms.h>
#include <linux/memory.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <asm/sync_core.h>

#include "core.h"
#include "ksyms.h"
#include "relocs.h"

#define KLP_RELA_PREFIX	".klp.rela."
#define KLP_SYM_PREFIX	".klp.sym."

/* What lpshim needs of a patch module's ELF: kept for it by the loader (livepatch=Y). */
struct lpshim_elf {
	Elf_Shdr *sechdrs;
	const char *secstrings;
	Elf_Word secstrings_size;
	const char *strtab;
	Elf_Sym *symtab;
	unsigned int nr_sections;
	unsigned int symndx;
};

static bool lpshim_patch_elf(struct lpshim_patch *patch, struct lpshim_elf *elf)
{
#ifdef CONFIG_LIVEPATCH
	struct klp_modinfo *info = patch->mod->klp_info;

	if (!info)
		return false;
	elf->sechdrs = info->sechdrs;
	elf->secstrings = info->secstrings;
	elf->secstrings_size = info->sechdrs[info->hdr.e_shstrndx].sh_size;
	elf->nr_sections = info->hdr.e_shnum;
	elf->symndx = info->symndx;
	elf->symtab = (Elf_Sym *)info->sechdrs[info->symndx].sh_addr;
	elf->strtab = patch->mod->core_kallsyms.strtab;
	return true;
#else
	return false;
#endif
}

/* The loader checks the names of the sections it keeps; a livepatch one need not be. */
static const char *lpshim_section_name(struct lpshim_elf *elf, unsigned int i)
{
	Elf_Word name = elf->sechdrs[i].sh_name;

	if (name >= elf->secstrings_size ||
	    !memchr(elf->secstrings + name, '\0', elf->secstrings_size - name))
		return "";
	return elf->secstrings + name;
}

/* The object of a .klp.rela.<object>.<section> name into @obj; false when malformed. */
static bool lpshim_reloc_section_object(const char *name, char *obj)
{
	const char *p, *dot;

	if (strncmp(name, KLP_RELA_PREFIX, strlen(KLP_RELA_PREFIX)))
		return false;
	p = name + strlen(KLP_RELA_PREFIX);
	dot = strchr(p, '.');
	if (!dot || dot == p || dot - p >= MODULE_NAME_LEN || !dot[1])
		return false;
	memcpy(obj, p, dot - p);
	obj[dot - p] = '\0';
	return true;
}

/**
 * struct lpshim_klp_sym - a livepatch symbol, .klp.sym.<object>.<name>,<position>
 * @object:	the object it is in
 * @name:	its name, up to @name_len bytes of the symbol's string
 * @name_len:	length of @name
 * @pos:	its position among the object's symbols of that name, from 1; 0 if unique
 */
struct lpshim_klp_sym {
	char object[MODULE_NAME_LEN];
	const char *name;
	size_t name_len;
	unsigned long pos;
};

static bool lpshim_parse_klp_sym(const char *s, struct lpshim_klp_sym *sym)
{
	const char *p, *dot, *comma;

	if (strncmp(s, KLP_SYM_PREFIX, strlen(KLP_SYM_PREFIX)))
		return false;
	p = s + strlen(KLP_SYM_PREFIX);
	dot = strchr(p, '.');
	comma = strrchr(p, ',');
	if (!dot || dot == p || dot - p >= MODULE_NAME_LEN || !comma || comma < dot + 2 ||
	    comma - (dot + 1) >= KSYM_NAME_LEN || kstrtoul(comma + 1, 10, &sym->pos))
		return false;
	memcpy(sym->object, p, dot - p);
	sym->object[dot - p] = '\0';
	sym->name = dot + 1;
	sym->name_len = comma - (dot + 1);
	return true;
}

/* Counting the symbols of one name in a module, up to a position. */
struct lpshim_sym_search {
	const struct lpshim_klp_sym *sym;
	unsigned int matches;
	unsigned long addr;
};

static int lpshim_sym_search_fn(void *data, const char *name, unsigned long addr)
{
	struct lpshim_sym_search *s = data;

	if (strlen(name) != s->sym->name_len || strncmp(name, s->sym->name, s->sym->name_len))
		return 0;
	if (++s->matches == max(s->sym->pos, 1UL))
		s->addr = addr;
	return 0;
}

/*
 * The address of @sym in @obj's module, or 0 with the reason logged: not found, ambiguous (no
 * position given), or no such position. The same rules as a function's old_sympos.
 */
static unsigned long lpshim_resolve_klp_sym(struct lpshim_patch *patch, struct lpshim_object *obj,
					    const struct lpshim_klp_sym *sym)
{
	struct lpshim_sym_search s = { .sym = sym };

	lpshim_for_each_module_symbol(obj->mod, lpshim_sym_search_fn, &s);
	if (!s.matches)
		pr_err("patch '%s': symbol '%.*s' not found in '%s'\n", patch->mod->name,
		       (int)sym->name_len, sym->name, obj->name);
	else if (!sym->pos && s.matches > 1)
		pr_err("patch '%s': symbol '%.*s' is ambiguous in '%s' (%u matches): its livepatch symbol must give its position\n",
		       patch->mod->name, (int)sym->name_len, sym->name, obj->name, s.matches);
	else if (sym->pos > s.matches)
		pr_err("patch '%s': symbol '%.*s' in '%s' has no position %lu (%u matches)\n",
		       patch->mod->name, (int)sym->name_len, sym->name, obj->name, sym->pos,
		       s.matches);
	else if (within_module_init(s.addr, obj->mod))
		pr_err("patch '%s': symbol '%.*s' is in the init code or data of '%s', freed once it has loaded\n",
		       patch->mod->name, (int)sym->name_len, sym->name, obj->name);
	else
		return s.addr;
	return 0;
}

/* Bytes a relocation of @type writes (x86-64), or 0 for a type lpshim does not apply. */
static unsigned int lpshim_reloc_size(unsigned int type)
{
	switch (type) {
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
	case R_X86_64_32:
	case R_X86_64_32S:
		return 4;
	case R_X86_64_64:
	case R_X86_64_PC64:
		return 8;
	default:
		return 0;
	}
}

static bool lpshim_is_zero(const void *p, unsigned int size)
{
	return size == 4 ? !*(const u32 *)p : !*(const u64 *)p;
}

/* [@addr, @addr + @size) is non-empty and inside @mod's core (not its init, not the image). */
static bool lpshim_within_core(struct module *mod, unsigned long addr, u64 size)
{
	return size && addr + size - 1 >= addr && within_module_core(addr, mod) &&
	       within_module_core(addr + size - 1, mod);
}

/*
 * Section @i's relocations and the section they write into, or NULL: the relocation table
 * must be an allocated SHT_RELA section in the patch module's core (one the loader did not
 * keep is in the image it freed), its target an allocated section there too (a section freed
 * with the init code must not be written after it).
 */
static Elf_Rela *lpshim_reloc_table(struct lpshim_patch *patch, struct lpshim_elf *elf,
				    unsigned int i, Elf_Shdr **target, unsigned int *n)
{
	Elf_Shdr *sec = &elf->sechdrs[i];

	/* Not sh_entsize: the module loader kept its layout offset there. */
	if (sec->sh_type != SHT_RELA || !(sec->sh_flags & SHF_ALLOC) ||
	    sec->sh_size % sizeof(Elf_Rela) ||
	    !lpshim_within_core(patch->mod, sec->sh_addr, sec->sh_size) ||
	    sec->sh_info == 0 || sec->sh_info >= elf->nr_sections)
		return NULL;
	*target = &elf->sechdrs[sec->sh_info];
	if (!((*target)->sh_flags & SHF_ALLOC) ||
	    !lpshim_within_core(patch->mod, (*target)->sh_addr, (*target)->sh_size))
		return NULL;
	*n = sec->sh_size / sizeof(Elf_Rela);
	return (Elf_Rela *)sec->sh_addr;
}

/* Relocation @r of size @size fits in @target. */
static bool lpshim_reloc_in_bounds(const Elf_Rela *r, unsigned int size, const Elf_Shdr *target)
{
	return size <= target->sh_size && r->r_offset <= target->sh_size - size;
}

/* What relocation @r (of @type, into @target) writes for a symbol at @addr. */
static u64 lpshim_reloc_value(const Elf_Rela *r, unsigned int type, const Elf_Shdr *target,
			      unsigned long addr)
{
	u64 val = addr + r->r_addend;

	if (type == R_X86_64_PC32 || type == R_X86_64_PLT32 || type == R_X86_64_PC64)
		val -= target->sh_addr + r->r_offset;
	return val;
}

/*
 * Sections the kernel reads once, as the patch module loads (jump labels, static calls,
 * alternatives, exception and bug tables, unwind data): a value written there later is
 * never seen, or is read half-made.
 */
static bool lpshim_read_at_load(const char *name)
{
	static const char *const prefixes[] = {
		"__jump_table", ".static_call_sites", ".altinstr", "__ex_table", "__bug_table",
		".parainstructions", ".retpoline_sites", ".return_sites", ".call_sites",
		".ibt_endbr_seal", ".orc_unwind", ".smp_locks", "__patchable_function_entries",
	};
	unsigned int k;

	for (k = 0; k < ARRAY_SIZE(prefixes); k++)
		if (!strncmp(name, prefixes[k], strlen(prefixes[k])))
			return true;
	return false;
}

/*
 * Check section @i, a relocation section of @obj, and resolve its symbols: kept in the patch
 * module's symbol table (st_value), where lpshim_write_reloc_section() and
 * lpshim_clear_reloc_section() read them.
 */
static int lpshim_prepare_reloc_section(struct lpshim_patch *patch, struct lpshim_object *obj,
					struct lpshim_elf *elf, unsigned int i)
{
	const char *secname = lpshim_section_name(elf, i);
	unsigned int n, j, size, type, symi;
	struct lpshim_klp_sym ksym;
	unsigned long addr;
	Elf_Shdr *target;
	Elf_Rela *relas;
	Elf_Sym *sym;
	u64 val;

	relas = lpshim_reloc_table(patch, elf, i, &target, &n);
	if (!relas) {
		pr_err("patch '%s': relocation section '%s' is malformed (not an allocated SHT_RELA section, or no allocated target section in the module's core)\n",
		       patch->mod->name, secname);
		return -EINVAL;
	}
	if (lpshim_read_at_load(lpshim_section_name(elf, elf->sechdrs[i].sh_info))) {
		pr_err("patch '%s': relocation section '%s' is for section '%s', which the kernel reads only as the patch loads\n",
		       patch->mod->name, secname, lpshim_section_name(elf, elf->sechdrs[i].sh_info));
		return -EINVAL;
	}
	for (j = 0; j < n; j++) {
		type = ELF_R_TYPE(relas[j].r_info);
		symi = ELF_R_SYM(relas[j].r_info);
		size = lpshim_reloc_size(type);
		if (!size) {
			pr_err("patch '%s': relocation type %u in '%s' is not one lpshim applies\n",
			       patch->mod->name, type, secname);
			return -EINVAL;
		}
		if (!lpshim_reloc_in_bounds(&relas[j], size, target) ||
		    symi >= elf->sechdrs[elf->symndx].sh_size / sizeof(Elf_Sym)) {
			pr_err("patch '%s': relocation %u of '%s' is out of bounds\n",
			       patch->mod->name, j, secname);
			return -EINVAL;
		}
		sym = &elf->symtab[symi];
		if (sym->st_shndx != SHN_LIVEPATCH) {
			pr_err("patch '%s': relocation section '%s' refers to '%s', which is not a livepatch symbol\n",
			       patch->mod->name, secname, elf->strtab + sym->st_name);
			return -EINVAL;
		}
		if (!lpshim_parse_klp_sym(elf->strtab + sym->st_name, &ksym)) {
			pr_err("patch '%s': symbol '%s' is malformed (.klp.sym.<object>.<name>,<position>)\n",
			       patch->mod->name, elf->strtab + sym->st_name);
			return -EINVAL;
		}
		if (strcmp(ksym.object, obj->name)) {
			pr_err("patch '%s': symbol '%s' is not in '%s', the object of relocation section '%s'\n",
			       patch->mod->name, elf->strtab + sym->st_name, obj->name, secname);
			return -EINVAL;
		}
		addr = lpshim_resolve_klp_sym(patch, obj, &ksym);
		if (!addr)
			return -EINVAL;
		/* The same checks as apply_relocate_add(), made before anything is written. */
		val = lpshim_reloc_value(&relas[j], type, target, addr);
		if (!lpshim_is_zero((void *)(target->sh_addr + relas[j].r_offset), size) ||
		    (type == R_X86_64_32 && val != (u32)val) ||
		    ((type == R_X86_64_32S || type == R_X86_64_PC32 || type == R_X86_64_PLT32) &&
		     (s64)val != (s32)val)) {
			pr_err("patch '%s': relocation %u of '%s' (type %u, symbol '%s') cannot be written\n",
			       patch->mod->name, j, secname, type, elf->strtab + sym->st_name);
			return -EINVAL;
		}
		sym->st_value = addr;
	}
	return 0;
}

/*
 * Write section @i's relocations, checked by lpshim_prepare_reloc_section(). A site that is
 * no longer zero was written by an earlier relocation of this object (two relocations at one
 * place): refused, and the caller clears what was written. text_mutex held.
 */
static int lpshim_write_reloc_section(struct lpshim_patch *patch, struct lpshim_elf *elf,
				      unsigned int i, unsigned int *written)
{
	unsigned int n, j, size, type;
	Elf_Shdr *target;
	Elf_Rela *relas;
	void *loc;
	u64 val;

	relas = lpshim_reloc_table(patch, elf, i, &target, &n);
	if (WARN_ON_ONCE(!relas))	/* checked by lpshim_prepare_reloc_section() */
		return -EINVAL;
	for (j = 0; j < n; j++) {
		type = ELF_R_TYPE(relas[j].r_info);
		size = lpshim_reloc_size(type);
		loc = (void *)(target->sh_addr + relas[j].r_offset);
		if (!lpshim_is_zero(loc, size)) {
			pr_err("patch '%s': relocation %u of '%s' writes where another relocation wrote\n",
			       patch->mod->name, j, lpshim_section_name(elf, i));
			return -EINVAL;
		}
		val = lpshim_reloc_value(&relas[j], type, target,
					 elf->symtab[ELF_R_SYM(relas[j].r_info)].st_value);
		lpshim_ksyms.text_poke(loc, &val, size);	/* little-endian: the low bytes */
		(*written)++;
	}
	return 0;
}

/*
 * Write zeros where section @i's relocations were written: only where a site holds what the
 * relocation wrote, so that a section that was refused, or never written, is left as it is.
 * How many were cleared. text_mutex held.
 */
static unsigned int lpshim_clear_reloc_section(struct lpshim_patch *patch,
					       struct lpshim_elf *elf, unsigned int i)
{
	static const u64 zero;
	unsigned int n, j, size, type, symi, cleared = 0;
	Elf_Shdr *target;
	Elf_Rela *relas;
	void *loc;
	u64 val;

	relas = lpshim_reloc_table(patch, elf, i, &target, &n);
	if (!relas)
		return 0;
	for (j = 0; j < n; j++) {
		type = ELF_R_TYPE(relas[j].r_info);
		symi = ELF_R_SYM(relas[j].r_info);
		size = lpshim_reloc_size(type);
		if (!size || !lpshim_reloc_in_bounds(&relas[j], size, target) ||
		    symi >= elf->sechdrs[elf->symndx].sh_size / sizeof(Elf_Sym) ||
		    elf->symtab[symi].st_shndx != SHN_LIVEPATCH)
			continue;
		loc = (void *)(target->sh_addr + relas[j].r_offset);
		val = lpshim_reloc_value(&relas[j], type, target, elf->symtab[symi].st_value);
		if (!lpshim_is_zero(loc, size) && !memcmp(loc, &val, size)) {
			lpshim_ksyms.text_poke(loc, &zero, size);
			cleared++;
		}
	}
	return cleared;
}

static void lpshim_sync_core(void *unused)
{
	sync_core();
}

/* Each livepatch relocation section of @elf, as index @i. */
#define lpshim_for_each_reloc_section(elf, i)				\
	for (i = 1; i < (elf)->nr_sections; i++)				\
		if ((elf)->sechdrs[i].sh_flags & SHF_RELA_LIVEPATCH)

static bool lpshim_section_is_for(struct lpshim_elf *elf, unsigned int i, const char *object)
{
	char obj[MODULE_NAME_LEN];

	return lpshim_reloc_section_object(lpshim_section_name(elf, i), obj) &&
	       !strcmp(obj, object);
}

int lpshim_apply_object_relocs(struct lpshim_patch *patch, struct lpshim_object *obj)
{
	unsigned int i, written = 0;
	struct lpshim_elf elf;
	int ret = 0;

	lockdep_assert_held(&lpshim_mutex);
	if (!obj->name || !lpshim_patch_elf(patch, &elf))
		return 0;	/* vmlinux: the module loader applied them */
	lpshim_for_each_reloc_section(&elf, i) {
		if (!lpshim_section_is_for(&elf, i, obj->name))
			continue;
		ret = lpshim_prepare_reloc_section(patch, obj, &elf, i);
		if (ret)
			return ret;
	}
	mutex_lock(lpshim_ksyms.text_mutex);
	lpshim_for_each_reloc_section(&elf, i) {
		if (!lpshim_section_is_for(&elf, i, obj->name))
			continue;
		ret = lpshim_write_reloc_section(patch, &elf, i, &written);
		if (ret)
			break;
	}
	if (ret) {
		/* Nothing stays half-written. */
		lpshim_for_each_reloc_section(&elf, i)
			if (lpshim_section_is_for(&elf, i, obj->name))
				lpshim_clear_reloc_section(patch, &elf, i);
	}
	/* As text_poke_sync(): no CPU runs instructions fetched before the writes. */
	on_each_cpu(lpshim_sync_core, NULL, 1);
	mutex_unlock(lpshim_ksyms.text_mutex);
	if (!ret && written)
		pr_notice("'%s': applied %u livepatch relocations for '%s'\n", patch->mod->name,
			  written, obj->name);
	return ret;
}

void lpshim_clear_object_relocs(struct lpshim_patch *patch, struct lpshim_object *obj)
{
	struct lpshim_elf elf;
	unsigned int i, cleared = 0;

	lockdep_assert_held(&lpshim_mutex);
	if (!obj->name || !lpshim_patch_elf(patch, &elf))
		return;
	mutex_lock(lpshim_ksyms.text_mutex);
	lpshim_for_each_reloc_section(&elf, i)
		if (lpshim_section_is_for(&elf, i, obj->name))
			cleared += lpshim_clear_reloc_section(patch, &elf, i);
	on_each_cpu(lpshim_sync_core, NULL, 1);
	mutex_unlock(lpshim_ksyms.text_mutex);
	if (cleared)
		pr_notice("'%s': cleared %u livepatch relocations for '%s'\n", patch->mod->name,
			  cleared, obj->name);
}

/* The patch module has livepatch symbols: it needs its ELF information kept (livepatch=Y). */
static bool lpshim_has_klp_symbols(struct module *mod)
{
	struct mod_kallsyms *kallsyms;
	bool found = false;
	unsigned int i;

	/* During the module's init, mod->kallsyms is its full symbol table. */
	preempt_disable();
	kallsyms = rcu_dereference_sched(mod->kallsyms);
	for (i = 0; i < kallsyms->num_symtab && !found; i++)
		found = kallsyms->symtab[i].st_shndx == SHN_LIVEPATCH;
	preempt_enable();
	return found;
}

/*
 * Before lpshim_init_patch(): patch->obj_list is not set up yet, so this walks the patch
 * module's array, as lpshim_check_patch() does.
 */
static bool lpshim_patch_has_object(struct lpshim_patch *patch, const char *name)
{
	struct lpshim_object *obj;

	for (obj = patch->objs; obj->funcs; obj++)
		if (obj->name && !strcmp(obj->name, name))
			return true;
	return false;
}

int lpshim_check_patch_relocs(struct lpshim_patch *patch)
{
	char obj[MODULE_NAME_LEN];
	struct lpshim_elf elf;
	const char *name;
	unsigned int i;

	if (!lpshim_patch_elf(patch, &elf)) {
		if (!lpshim_has_klp_symbols(patch->mod))
			return 0;
		pr_err("patch '%s' has livepatch symbols but the kernel kept no ELF information for it: build it with LPSHIM_PATCH_MODULE() (modinfo livepatch=Y)\n",
		       patch->mod->name);
		return -EINVAL;
	}
	lpshim_for_each_reloc_section(&elf, i) {
		name = lpshim_section_name(&elf, i);
		if (!lpshim_reloc_section_object(name, obj)) {
			pr_err("patch '%s': relocation section '%s' is malformed (.klp.rela.<object>.<section>)\n",
			       patch->mod->name, name);
			return -EINVAL;
		}
		if (strcmp(obj, "vmlinux") && !lpshim_patch_has_object(patch, obj)) {
			pr_err("patch '%s': relocation section '%s' is for '%s', which the patch does not patch\n",
			       patch->mod->name, name, obj);
			return -EINVAL;
		}
	}
	return 0;
}
