// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_klp_module - fix a static function of a module, with that module's static code
 * and data
 *
 * lpshim_klp_target's static klp_target_name() lets the index klp_target_limit past its bounds
 * check (lpshim_klp_target.c). The fix is the function with ">=" for ">": it calls the module's
 * static klp_target_reject(), reads its static klp_target_names[], and calls its exported
 * lpshim_klp_target_limit(). None of them can be linked by the module loader; declared extern,
 * they become livepatch relocations of the object "lpshim_klp_target" (lpshim-klp-convert
 * --module lpshim_klp_target, docs/klp-convert.md), which lpshim resolves whenever
 * lpshim_klp_target loads: before or after this patch, and again after every reload.
 *
 *	$ insmod lpshim_example_klp_module.ko		(lpshim_klp_target loaded or not)
 *	$ insmod lpshim_klp_target.ko
 *	$ echo 4 > /sys/kernel/debug/lpshim_klp_target/name
 *	$ cat /sys/kernel/debug/lpshim_klp_target/name
 *	out of range
 *
 * The module-specific relocations also make the export lpshim_klp_target_limit() a livepatch
 * symbol rather than a link: this module does not depend on lpshim_klp_target, does not pin
 * it, and lpshim_klp_target can be removed and loaded again while the patch stays.
 */
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/module.h>

#include <lpshim/lpshim.h>

/*
 * The target's symbols, as its source declares them; no header has them. The converter finds
 * each in lpshim_klp_target.ko's symbol table.
 */
extern const char *const klp_target_names[];
extern const char *klp_target_reject(unsigned int index);
extern unsigned int lpshim_klp_target_limit(void);

/*
 * A direct call to klp_target_reject(), never a pointer to it: the converter refuses a
 * function's address unless the function is exported (IBT, docs/klp-convert.md).
 */
static const char *lpshim_example_klp_target_name(unsigned int index)
{
	if (index >= lpshim_klp_target_limit())
		return klp_target_reject(index);
	return klp_target_names[index];
}

static struct lpshim_func funcs[] = {
	{
		.old_name = "klp_target_name",
		.new_func = lpshim_example_klp_target_name,
	},
	{ }
};

static struct lpshim_object objs[] = {
	{
		.name = "lpshim_klp_target",
		.funcs = funcs,
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lpshim_example_klp_module_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_klp_module_exit(void)
{
}

module_init(lpshim_example_klp_module_init);
module_exit(lpshim_example_klp_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: fix a module's static function with its static code and data");
LPSHIM_PATCH_MODULE();
