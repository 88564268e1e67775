// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_lpshim_shadow_vars.c - the shadow variable API of lpshim.ko, call by call
 *
 * A port of upstream's lib/livepatch/test_klp_shadow_vars.c to lpshim: a plain module, not a
 * patch. Its init gives each of three objects two new "fields" as shadow variables, then looks
 * them up, allocates them again, and frees them one by one and all at once, logging every call
 * with its result. Pointers are logged as PTR<n>, numbered in the order they first appear
 * (PTR0 is NULL), so that the log is the same on every run and on every kernel:
 * tests/vm/cases/shadow-vars.sh compares it exactly. Each id is taken in a statement of its
 * own, never inside the pr_info() arguments, whose order of evaluation C leaves open.
 *
 * A check that fails logs "got unexpected" and fails the load, so that a broken lpshim does not
 * show up only as a difference in the log.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/printk.h>

#include <lpshim/lpshim.h>

#define NUM_OBJS	3
#define SV_ID1		0x1234	/* a char * field added to every object */
#define SV_ID2		0x1235	/* an int * field added to every object */

/* pointers seen so far; the id of ptrs[i] is i + 1 */
static const void *ptrs[32];
static unsigned int nr_ptrs;

static int ptr_id(const void *ptr)
{
	unsigned int i;

	if (!ptr)
		return 0;
	for (i = 0; i < nr_ptrs; i++)
		if (ptrs[i] == ptr)
			return i + 1;
	if (WARN_ON_ONCE(nr_ptrs == ARRAY_SIZE(ptrs)))
		return -1;
	ptrs[nr_ptrs++] = ptr;
	return nr_ptrs;
}

/* The gfp flags by name, as the test logs them. */
#define GFP(flags)	flags, #flags

static void *shadow_get(void *obj, unsigned long id)
{
	void *ret = lpshim_shadow_get(obj, id);
	int obj_id = ptr_id(obj);
	int ret_id = ptr_id(ret);

	pr_info("lpshim_shadow_get(obj=PTR%d, id=0x%lx) = PTR%d\n", obj_id, id, ret_id);
	return ret;
}

static void log_alloc(const char *func, void *obj, unsigned long id, size_t size,
		      const char *gfp_name, lpshim_shadow_ctor_t ctor, void *ctor_data, void *ret)
{
	int obj_id = ptr_id(obj);
	int ctor_id = ptr_id((const void *)ctor);
	int ctor_data_id = ptr_id(ctor_data);
	int ret_id = ptr_id(ret);

	pr_info("%s(obj=PTR%d, id=0x%lx, size=%zu, gfp_flags=%s, ctor=PTR%d, ctor_data=PTR%d) = PTR%d\n",
		func, obj_id, id, size, gfp_name, ctor_id, ctor_data_id, ret_id);
}

static void *shadow_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp_flags,
			  const char *gfp_name, lpshim_shadow_ctor_t ctor, void *ctor_data)
{
	void *ret = lpshim_shadow_alloc(obj, id, size, gfp_flags, ctor, ctor_data);

	log_alloc("lpshim_shadow_alloc", obj, id, size, gfp_name, ctor, ctor_data, ret);
	return ret;
}

static void *shadow_get_or_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp_flags,
				 const char *gfp_name, lpshim_shadow_ctor_t ctor, void *ctor_data)
{
	void *ret = lpshim_shadow_get_or_alloc(obj, id, size, gfp_flags, ctor, ctor_data);

	log_alloc("lpshim_shadow_get_or_alloc", obj, id, size, gfp_name, ctor, ctor_data, ret);
	return ret;
}

static void shadow_free(void *obj, unsigned long id, lpshim_shadow_dtor_t dtor)
{
	int obj_id, dtor_id;

	lpshim_shadow_free(obj, id, dtor);
	obj_id = ptr_id(obj);
	dtor_id = ptr_id((const void *)dtor);
	pr_info("lpshim_shadow_free(obj=PTR%d, id=0x%lx, dtor=PTR%d)\n", obj_id, id, dtor_id);
}

static void shadow_free_all(unsigned long id, lpshim_shadow_dtor_t dtor)
{
	int dtor_id;

	lpshim_shadow_free_all(id, dtor);
	dtor_id = ptr_id((const void *)dtor);
	pr_info("lpshim_shadow_free_all(id=0x%lx, dtor=PTR%d)\n", id, dtor_id);
}

/* The shadow variable is a pointer to the field; @ctor_data points to the field's address. */
static int shadow_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	void **sv = shadow_data;
	void **field = ctor_data;
	int sv_id, field_id;

	if (!field) {
		pr_info("shadow_ctor: no field given, refusing\n");
		return -EINVAL;
	}
	*sv = *field;
	sv_id = ptr_id(sv);
	field_id = ptr_id(*sv);
	pr_info("shadow_ctor: PTR%d -> PTR%d\n", sv_id, field_id);
	return 0;
}

static void shadow_dtor(void *obj, void *shadow_data)
{
	int obj_id = ptr_id(obj);
	int sv_id = ptr_id(shadow_data);

	pr_info("shadow_dtor(obj=PTR%d, shadow_data=PTR%d)\n", obj_id, sv_id);
}

/* @sv is the variable @expected was, and points to @field. */
static int check(void *sv, void *expected, void *field)
{
	int sv_id = ptr_id(sv);
	int field_id = sv ? ptr_id(*(void **)sv) : 0;

	if (!sv || sv != expected || *(void **)sv != field) {
		pr_err("  got unexpected PTR%d -> PTR%d result\n", sv_id, field_id);
		return -EINVAL;
	}
	pr_info("  got expected PTR%d -> PTR%d result\n", sv_id, field_id);
	return 0;
}

static int check_null(void *sv)
{
	if (sv) {
		pr_err("  got unexpected PTR%d result, expected NULL\n", ptr_id(sv));
		return -EINVAL;
	}
	pr_info("  got expected NULL result\n");
	return 0;
}

struct test_object {
	int value;
};

static int __init test_lpshim_shadow_vars_init(void)
{
	struct test_object objs[NUM_OBJS];
	char nfields1[NUM_OBJS], *pnfields1[NUM_OBJS], **sv1[NUM_OBJS], *pndup[NUM_OBJS];
	int nfields2[NUM_OBJS], *pnfields2[NUM_OBJS], **sv2[NUM_OBJS];
	int ret, i;

	/* the objects are PTR1, PTR2, PTR3 */
	for (i = 0; i < NUM_OBJS; i++)
		ptr_id(&objs[i]);

	/* With no variable at all, nothing is found. */
	ret = check_null(shadow_get(&objs[0], SV_ID1));
	if (ret)
		goto out;

	/* pass 1: add both fields to every object; the first by alloc and get_or_alloc in turn */
	for (i = 0; i < NUM_OBJS; i++) {
		pnfields1[i] = &nfields1[i];
		ptr_id(pnfields1[i]);
		if (i % 2)
			sv1[i] = shadow_alloc(&objs[i], SV_ID1, sizeof(pnfields1[i]),
					      GFP(GFP_KERNEL), shadow_ctor, &pnfields1[i]);
		else
			sv1[i] = shadow_get_or_alloc(&objs[i], SV_ID1, sizeof(pnfields1[i]),
						     GFP(GFP_KERNEL), shadow_ctor, &pnfields1[i]);
		if (!sv1[i]) {
			ret = -ENOMEM;
			goto out;
		}

		pnfields2[i] = &nfields2[i];
		ptr_id(pnfields2[i]);
		sv2[i] = shadow_alloc(&objs[i], SV_ID2, sizeof(pnfields2[i]),
				      GFP(GFP_KERNEL), shadow_ctor, &pnfields2[i]);
		if (!sv2[i]) {
			ret = -ENOMEM;
			goto out;
		}
	}

	/* pass 2: every variable is found, and points to its field */
	for (i = 0; i < NUM_OBJS; i++) {
		ret = check(shadow_get(&objs[i], SV_ID1), sv1[i], pnfields1[i]);
		if (ret)
			goto out;
		ret = check(shadow_get(&objs[i], SV_ID2), sv2[i], pnfields2[i]);
		if (ret)
			goto out;
	}

	/* pass 3: get_or_alloc returns the existing variable, without running the constructor */
	for (i = 0; i < NUM_OBJS; i++) {
		pndup[i] = &nfields1[i];
		ptr_id(pndup[i]);
		ret = check(shadow_get_or_alloc(&objs[i], SV_ID1, sizeof(pndup[i]),
						GFP(GFP_KERNEL), shadow_ctor, &pndup[i]),
			    sv1[i], pnfields1[i]);
		if (ret)
			goto out;
	}

	/* pass 4: free the first field of every object, with the destructor */
	for (i = 0; i < NUM_OBJS; i++) {
		shadow_free(&objs[i], SV_ID1, shadow_dtor);
		ret = check_null(shadow_get(&objs[i], SV_ID1));
		if (ret)
			goto out;
	}

	/* pass 5: the second fields are untouched */
	for (i = 0; i < NUM_OBJS; i++) {
		ret = check(shadow_get(&objs[i], SV_ID2), sv2[i], pnfields2[i]);
		if (ret)
			goto out;
	}

	/* pass 6: free every second field at once, without destructor */
	shadow_free_all(SV_ID2, NULL);
	for (i = 0; i < NUM_OBJS; i++) {
		ret = check_null(shadow_get(&objs[i], SV_ID2));
		if (ret)
			goto out;
	}

	/* pass 7 (not upstream): a constructor that fails adds nothing */
	ret = check_null(shadow_alloc(&objs[0], SV_ID1, sizeof(pnfields1[0]),
				      GFP(GFP_KERNEL), shadow_ctor, NULL));
	if (ret)
		goto out;
	ret = check_null(shadow_get(&objs[0], SV_ID1));
out:
	/* leave nothing behind, whatever failed */
	lpshim_shadow_free_all(SV_ID1, NULL);
	lpshim_shadow_free_all(SV_ID2, NULL);
	return ret;
}

static void __exit test_lpshim_shadow_vars_exit(void)
{
}

module_init(test_lpshim_shadow_vars_init);
module_exit(test_lpshim_shadow_vars_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim: test of the shadow variable API");
