// SPDX-License-Identifier: GPL-2.0-only
/* test_lpshim_twins: the second static twin() (see test_lpshim_twins_a.c). */
#include <linux/compiler.h>

const char *test_lpshim_twins_call_b(void);

static noinline __used __noclone __noipa const char *twin(void)
{
	return "b";
}

const char *test_lpshim_twins_call_b(void)
{
	return twin();
}
