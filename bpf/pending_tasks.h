/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by pending_stacks.bpf.c and the daemon (daemon/bpf/task_stacks.cpp).
 *
 * Everything here is fixed-width, pointer-free and explicitly padded: the same bytes are a BPF
 * map key/value or a seq_file record on one side and a C++ struct on the other. Change a layout
 * only together with both sides (they are built from one tree, so there is no versioning).
 *
 * The "pending" map is keyed by tid and holds the tasks someone wants the kernel stack of. Today
 * only userspace fills it (TaskStackCollector::watch); the raw_tracepoint programs on lpshim's
 * tracepoints that come later will add and remove tasks as they enter and leave a transition, so
 * the value already carries room for the producer's flags.
 */
#ifndef LIVEPATCHD_BPF_PENDING_STACKS_H
#define LIVEPATCHD_BPF_PENDING_STACKS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* Kernel frames kept per task; deeper stacks are truncated (outermost frames lost). */
#define MAX_FRAMES 32
#define TASK_STACK_COMM_LEN 16 /* the kernel's TASK_COMM_LEN; vmlinux.h has it as an enum only */

/* Default capacity of the pending map; userspace may change it before load. */
#define PENDING_TASKS_MAX 16384

/* Value of the pending map, key: __u32 tid (the kernel's task->pid, in the initial pid ns). */
struct pending_task {
	__u64 first_seen_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) when the task was added */
	__u32 flags;         /* PENDING_TASK_F_*; none defined yet, must be 0 */
	__u32 reserved;
};

/*
 * One record per pending task that still exists, written by the iter/task program with
 * bpf_seq_write() and read back whole from the iterator fd: no framing, no text.
 */
struct task_stack_record {
	__u32 tid;
	__u32 tgid;
	char comm[TASK_STACK_COMM_LEN];
	__u32 nr_frames;  /* valid entries in frames[], innermost first */
	__s32 stack_err;  /* 0, or the negative errno of bpf_get_task_stack() (then nr_frames is 0) */
	__u64 frames[MAX_FRAMES];
};

#ifdef __cplusplus
static_assert(sizeof(struct pending_task) == 16, "pending_task layout is shared with BPF");
static_assert(sizeof(struct task_stack_record) == 32 + 8 * MAX_FRAMES,
	      "task_stack_record layout is shared with BPF");
#else
_Static_assert(sizeof(struct pending_task) == 16, "pending_task layout is shared with userspace");
_Static_assert(sizeof(struct task_stack_record) == 32 + 8 * MAX_FRAMES,
	       "task_stack_record layout is shared with userspace");
#endif

#endif /* LIVEPATCHD_BPF_PENDING_STACKS_H */
