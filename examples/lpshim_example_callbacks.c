// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_callbacks - the four callbacks of an object, and when they run
 *
 * Mirrors upstream's samples/livepatch/livepatch-callbacks-demo.c. The patch replaces no
 * function; it has two objects, vmlinux and module lpshim_target, and every callback of each
 * logs one line:
 *
 *	lpshim_example_callbacks: <callback>: vmlinux
 *	lpshim_example_callbacks: <callback>: lpshim_target -> <state of the module>
 *
 * with <callback> one of pre_patch_callback, post_patch_callback, pre_unpatch_callback,
 * post_unpatch_callback and the state one of
 *
 *	[MODULE_STATE_LIVE] Normal state
 *	[MODULE_STATE_COMING] Full formed, running module_init
 *	[MODULE_STATE_GOING] Going away
 *
 * Callbacks are what a patch uses to change data, not code, at the right moment: pre_patch
 * to prepare (allocate, check that the system is in a state the patch can handle; a non-zero
 * return refuses the patch), post_patch to switch data over once every task runs the new
 * code, pre_unpatch to switch it back while every task still runs the new code, post_unpatch
 * to clean up once no task does. The rules, as upstream:
 *
 * - Callbacks of an object run only while it is loaded: for a module that loads later,
 *   pre_patch and post_patch run while it loads, before its module_init (state COMING);
 *   pre_unpatch and post_unpatch run when it unloads, after its module_exit (state GOING).
 * - post_unpatch runs only if pre_patch ran and returned 0; pre_unpatch only if post_patch
 *   ran. A transition reversed half-way runs no pre_unpatch, only post_unpatch at its end.
 * - A module that loads while the patch is in transition gets pre_patch at once and its
 *   post_patch when the transition completes.
 * - pre_patch returning an error makes insmod of this module fail with that error, or, for
 *   a module loaded later, refuses the load of that module (its init never runs).
 *
 * With lpshim_target loaded first, loading and then disabling this patch logs:
 *
 *	lpshim: enabling patch 'lpshim_example_callbacks'
 *	lpshim_example_callbacks: pre_patch_callback: vmlinux
 *	lpshim_example_callbacks: pre_patch_callback: lpshim_target -> [MODULE_STATE_LIVE] Normal state
 *	lpshim: 'lpshim_example_callbacks': starting patching transition
 *	lpshim_example_callbacks: post_patch_callback: vmlinux
 *	lpshim_example_callbacks: post_patch_callback: lpshim_target -> [MODULE_STATE_LIVE] Normal state
 *	lpshim: 'lpshim_example_callbacks': patching complete
 *	$ echo 0 > /sys/kernel/lpshim/lpshim_example_callbacks/enabled
 *	lpshim_example_callbacks: pre_unpatch_callback: vmlinux
 *	lpshim_example_callbacks: pre_unpatch_callback: lpshim_target -> [MODULE_STATE_LIVE] Normal state
 *	lpshim: 'lpshim_example_callbacks': starting unpatching transition
 *	lpshim_example_callbacks: post_unpatch_callback: vmlinux
 *	lpshim_example_callbacks: post_unpatch_callback: lpshim_target -> [MODULE_STATE_LIVE] Normal state
 *	lpshim: 'lpshim_example_callbacks': unpatching complete
 *
 * The module parameter pre_patch_ret is what every pre_patch returns (default 0):
 *
 *	$ insmod lpshim_example_callbacks.ko pre_patch_ret=-19		(fails: No such device)
 *
 * or, with the patch enabled and lpshim_target not loaded:
 *
 *	$ echo -19 > /sys/module/lpshim_example_callbacks/parameters/pre_patch_ret
 *	$ insmod lpshim_target.ko					(refused: No such device)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/printk.h>

#include <lpshim/lpshim.h>

static int pre_patch_ret;
module_param(pre_patch_ret, int, 0644);
MODULE_PARM_DESC(pre_patch_ret, "what every pre_patch callback returns (default 0)");

static const char *const module_state[] = {
	[MODULE_STATE_LIVE]	= "[MODULE_STATE_LIVE] Normal state",
	[MODULE_STATE_COMING]	= "[MODULE_STATE_COMING] Full formed, running module_init",
	[MODULE_STATE_GOING]	= "[MODULE_STATE_GOING] Going away",
	[MODULE_STATE_UNFORMED]	= "[MODULE_STATE_UNFORMED] Still setting it up",
};

static void callback_info(const char *callback, struct lpshim_object *obj)
{
	/*
	 * obj->mod is private to lpshim, but set while a module object's callbacks run (they
	 * run only while the module is loaded); upstream's demo reads it the same way.
	 */
	if (!obj->name)
		pr_info("%s: vmlinux\n", callback);
	else if (obj->mod && obj->mod->state < ARRAY_SIZE(module_state))
		pr_info("%s: %s -> %s\n", callback, obj->name, module_state[obj->mod->state]);
	else
		pr_info("%s: %s\n", callback, obj->name);
}

/* Before the object's functions are redirected; an error refuses the patch or the module. */
static int pre_patch_callback(struct lpshim_object *obj)
{
	callback_info(__func__, obj);
	return pre_patch_ret;
}

/* Once every task runs the patched object. */
static void post_patch_callback(struct lpshim_object *obj)
{
	callback_info(__func__, obj);
}

/* Before the unpatching transition starts: every task still runs the patched object. */
static void pre_unpatch_callback(struct lpshim_object *obj)
{
	callback_info(__func__, obj);
}

/* Once no task runs the patched object and the redirection is gone. */
static void post_unpatch_callback(struct lpshim_object *obj)
{
	callback_info(__func__, obj);
}

/*
 * An object may have callbacks and no functions (an array with just the terminator), as in
 * upstream's demo. Each object has its own array, as each entry of one carries lpshim's
 * private state for its object.
 */
static struct lpshim_func vmlinux_funcs[] = {
	{ }
};

static struct lpshim_func lpshim_target_funcs[] = {
	{ }
};

static struct lpshim_object objs[] = {
	{
		.name = NULL,	/* vmlinux */
		.funcs = vmlinux_funcs,
		.callbacks = {
			.pre_patch = pre_patch_callback,
			.post_patch = post_patch_callback,
			.pre_unpatch = pre_unpatch_callback,
			.post_unpatch = post_unpatch_callback,
		},
	},
	{
		.name = "lpshim_target",
		.funcs = lpshim_target_funcs,
		.callbacks = {
			.pre_patch = pre_patch_callback,
			.post_patch = post_patch_callback,
			.pre_unpatch = pre_unpatch_callback,
			.post_unpatch = post_unpatch_callback,
		},
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lpshim_example_callbacks_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_callbacks_exit(void)
{
}

module_init(lpshim_example_callbacks_init);
module_exit(lpshim_example_callbacks_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: the four callbacks on vmlinux and on lpshim_target");
LPSHIM_PATCH_MODULE();
