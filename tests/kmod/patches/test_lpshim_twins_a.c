// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_twins - a target with two static functions of one name, twin(), one in each of its
 * two source files, and a function ftrace does not trace: what a patch must name with
 * old_sympos, and what lpshim must refuse (lpshim-refusals.sh). Reading the parameter
 * /sys/module/test_lpshim_twins/parameters/twins calls both twins: "a b" unpatched.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

const char *test_lpshim_twins_call_b(void);
int test_lpshim_twins_untraceable(void);

/* __used: nothing else calls it but the parameter below, and its name must stay in kallsyms. */
static noinline __used __noclone __noipa const char *twin(void)
{
	return "a";
}

/* Traced by nothing: a function lpshim cannot redirect. */
noinline __noclone __noipa notrace int test_lpshim_twins_untraceable(void)
{
	return 0;
}
EXPORT_SYMBOL_GPL(test_lpshim_twins_untraceable);

static int twins_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s %s\n", twin(), test_lpshim_twins_call_b());
}

static const struct kernel_param_ops twins_ops = {
	.get = twins_get,
};
module_param_cb(twins, &twins_ops, NULL, 0444);
MODULE_PARM_DESC(twins, "what the two twin() functions return, in source file order");

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim test: two static functions of one name, and an untraceable one");
