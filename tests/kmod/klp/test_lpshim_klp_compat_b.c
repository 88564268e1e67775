// SPDX-License-Identifier: GPL-2.0-only
/* klp-compat.h first, then <linux/livepatch.h> directly and through <linux/init_task.h>. */
#define LPSHIM_KLP_COMPAT_NO_MARKER
#include <lpshim/klp-compat.h>

#include <linux/init_task.h>
#include <linux/livepatch.h>
#include <linux/slab.h>

int test_lpshim_klp_compat_b_init(void);

static int ctor(void *obj, void *shadow_data, void *ctor_data)
{
	return 0;
}

static void dtor(void *obj, void *shadow_data)
{
}

static klp_shadow_ctor_t ctors[] = { ctor };
static klp_shadow_dtor_t dtors[] = { dtor };

int test_lpshim_klp_compat_b_init(void)
{
	struct klp_func f = { .old_name = "x" };
	void *p = klp_shadow_alloc(&f, 3, 8, GFP_KERNEL, ctors[0], NULL);

	if (p)
		klp_shadow_free(&f, 3, dtors[0]);
	return klp_shadow_get(&f, 3) ? -EINVAL : 0;
}
