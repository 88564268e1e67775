// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_callbacks_demo - lib/livepatch/test_klp_callbacks_demo.c (6.1), ported to lpshim
 *
 * Three objects, each with all four callbacks logging "<callback>: vmlinux" or
 * "<callback>: <module> -> <module state>": vmlinux and test_lpshim_callbacks_mod patch no
 * function, test_lpshim_callbacks_busy has busymod_work_func() replaced. pre_patch returns the
 * parameter pre_patch_ret (read at each call), so a test can make it fail with -19 (-ENODEV).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/workqueue.h>
#include <lpshim/lpshim.h>

static int pre_patch_ret;
module_param(pre_patch_ret, int, 0644);
MODULE_PARM_DESC(pre_patch_ret, "pre_patch_ret (default=0)");

static const char *const module_state[] = {
	[MODULE_STATE_LIVE]	= "[MODULE_STATE_LIVE] Normal state",
	[MODULE_STATE_COMING]	= "[MODULE_STATE_COMING] Full formed, running module_init",
	[MODULE_STATE_GOING]	= "[MODULE_STATE_GOING] Going away",
	[MODULE_STATE_UNFORMED]	= "[MODULE_STATE_UNFORMED] Still setting it up",
};

static void callback_info(const char *callback, struct lpshim_object *obj)
{
	if (obj->mod)
		pr_info("%s: %s -> %s\n", callback, obj->mod->name,
			(unsigned int)obj->mod->state < ARRAY_SIZE(module_state) ?
			module_state[obj->mod->state] : "[?] unknown state");
	else
		pr_info("%s: vmlinux\n", callback);
}

/* Before the object's functions are redirected: a non-zero return refuses the patch */
static int pre_patch_callback(struct lpshim_object *obj)
{
	callback_info(__func__, obj);
	return pre_patch_ret;
}

/* Once every task runs the patched object */
static void post_patch_callback(struct lpshim_object *obj)
{
	callback_info(__func__, obj);
}

/* Before the unpatching transition starts */
static void pre_unpatch_callback(struct lpshim_object *obj)
{
	callback_info(__func__, obj);
}

/* Once every task runs the original object again */
static void post_unpatch_callback(struct lpshim_object *obj)
{
	callback_info(__func__, obj);
}

static void patched_work_func(struct work_struct *work)
{
	pr_info("%s\n", __func__);
}

static struct lpshim_func no_funcs[] = {
	{ }
};

static struct lpshim_func busymod_funcs[] = {
	{
		.old_name = "busymod_work_func",
		.new_func = patched_work_func,
	}, { }
};

#define DEMO_CALLBACKS {				\
	.pre_patch = pre_patch_callback,		\
	.post_patch = post_patch_callback,		\
	.pre_unpatch = pre_unpatch_callback,		\
	.post_unpatch = post_unpatch_callback,		\
}

static struct lpshim_object objs[] = {
	{
		.name = NULL,	/* vmlinux */
		.funcs = no_funcs,
		.callbacks = DEMO_CALLBACKS,
	}, {
		.name = "test_lpshim_callbacks_mod",
		.funcs = no_funcs,
		.callbacks = DEMO_CALLBACKS,
	}, {
		.name = "test_lpshim_callbacks_busy",
		.funcs = busymod_funcs,
		.callbacks = DEMO_CALLBACKS,
	}, { }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int test_lpshim_callbacks_demo_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void test_lpshim_callbacks_demo_exit(void)
{
}

module_init(test_lpshim_callbacks_demo_init);
module_exit(test_lpshim_callbacks_demo_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: livepatch demo with callbacks");
LPSHIM_PATCH_MODULE();
