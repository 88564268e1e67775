/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by transition_events.bpf.c and the daemon (daemon/bpf/transition_events.cpp):
 * one fixed-size record per lpshim transition event, through a BPF ring buffer.
 */
#ifndef LIVEPATCHD_BPF_TRANSITION_EVENTS_H
#define LIVEPATCHD_BPF_TRANSITION_EVENTS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define TRANSITION_PATCH_NAME_LEN 56 /* MODULE_NAME_LEN: a patch is named by its module */

enum transition_event_type {
	TRANSITION_EVENT_START = 1, /* lpshim:lpshim_transition_start */
	TRANSITION_EVENT_END = 2,   /* lpshim:lpshim_transition_end */
};

struct transition_event {
	__u32 type;        /* enum transition_event_type */
	__s32 target;      /* 1: patched, 0: unpatched */
	__u32 count;       /* START: tasks pending at the first attempt; END: tasks forced */
	__u32 reserved;
	__u64 duration_ns; /* END only */
	__u64 time_ns;     /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) when it happened */
	char patch[TRANSITION_PATCH_NAME_LEN];
};

#ifdef __cplusplus
static_assert(sizeof(struct transition_event) == 32 + TRANSITION_PATCH_NAME_LEN,
	      "transition_event layout is shared with BPF");
#else
_Static_assert(sizeof(struct transition_event) == 32 + TRANSITION_PATCH_NAME_LEN,
	       "transition_event layout is shared with userspace");
#endif

#endif /* LIVEPATCHD_BPF_TRANSITION_EVENTS_H */
