/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by pending_tasks.bpf.c and the daemon (daemon/bpf/pending_task_tracker.cpp).
 *
 * Everything here is fixed-width, pointer-free and explicitly padded: the same bytes are a BPF
 * map value or a seq_file record on one side and a C++ struct on the other. Change a layout
 * only together with both sides (they are built from one tree, so there is no versioning).
 *
 * The "pending" map is keyed by tid. The raw tracepoint programs fill it from lpshim's
 * lpshim_task_blocked and empty it on lpshim_task_switch; userspace may add a task of its own
 * (PENDING_TASK_F_WATCHED) to get its stack.
 */
#ifndef LIVEPATCHD_BPF_PENDING_TASKS_H
#define LIVEPATCHD_BPF_PENDING_TASKS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* Kernel frames kept per task; deeper stacks are truncated (outermost frames lost). */
#define MAX_FRAMES 32
/* A function as the kernel's %ps names it ("name" or "name [module]"), NUL-terminated. */
#define FUNCTION_TEXT_LEN 64
/* A stack frame as the kernel's %pB names it ("name+0xoff/0xsize [module]"), NUL-terminated. */
#define FRAME_TEXT_LEN 96
#define TASK_STACK_COMM_LEN 16 /* the kernel's TASK_COMM_LEN; vmlinux.h has it as an enum only */

/* Default capacity of the pending map; userspace sizes it from kernel.threads-max before load. */
#define PENDING_TASKS_MAX 16384

/* Which records of the iterator carry a stack (stack_mode). */
enum pending_stack_mode {
	PENDING_STACKS_NONE = 0,
	PENDING_STACKS_ALL = 1,
	PENDING_STACKS_SELECTED = 2, /* the tids in the stack_wanted map (and watched tasks) */
};
/* Capacity of stack_wanted; asking for more stacks than this asks for all. */
#define PENDING_STACKS_SELECTED_MAX 1024

/* Mirrors shim-kmod/task_state.h enum lpshim_block_reason: an ABI of lpshim_task_blocked. */
enum pending_task_reason {
	PENDING_REASON_NOT_CHECKED = 0,
	PENDING_REASON_RUNNING = 1,
	PENDING_REASON_SLEEPING_IN_FUNC = 2,
	PENDING_REASON_UNRELIABLE_STACK = 3,
};

/* Added by userspace, not by a tracepoint: reported in any transition or none, never removed
 * by a task switch. */
#define PENDING_TASK_F_WATCHED 1u
/* A tombstone: the task switched in transition epoch `transition` (never reported). */
#define PENDING_TASK_F_SWITCHED 2u

/* Value of the pending map, key: __u32 tid (the kernel's task->pid, in the initial pid ns). */
struct pending_task {
	__u64 first_seen_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) of the first block (or watch) */
	__u64 function;      /* the patched function found on its stack, or 0 */
	__u32 transition;    /* the transition epoch it was seen blocked in (see pending_tasks.bpf.c) */
	__u32 attempts;      /* lpshim's pass (from 1) that last found it blocked */
	__u32 reason;        /* enum pending_task_reason, the last one */
	__u32 flags;         /* PENDING_TASK_F_* */
};

/*
 * A record of tid 0 is a marker, not a task (no task the iterator visits has tid 0): the
 * iterator writes one, all zeroes, after every PENDING_MARKER_EVERY tasks it passes without a
 * record. A read of the iterator returns once its output reaches the size asked for (the
 * daemon asks for a page); without markers, a read while few tasks are pending visits every
 * task of the system before it returns (about 100 ms for 30,000 tasks under emulation), and the
 * daemon's event loop waits in it. With them, a read of a page visits at most 1,024 tasks (32
 * markers, 32 tasks each).
 */
#define PENDING_MARKER_EVERY 32

/*
 * One record per task of the map that still exists, written by the iter/task program with
 * bpf_seq_write() and read back from the iterator fd: this header, then nr_frames frames of
 * FRAME_TEXT_LEN bytes each, innermost first. Names are the kernel's own (%ps, %pB), so
 * userspace needs no /proc/kallsyms.
 */
struct pending_task_record {
	__u32 tid;
	__u32 tgid;
	char comm[TASK_STACK_COMM_LEN];
	struct pending_task pending;
	__u32 nr_frames;  /* frames that follow; 0 when stacks were not asked for */
	__s32 stack_err;  /* 0, or the negative errno of bpf_get_task_stack() (then nr_frames is 0) */
	char function[FUNCTION_TEXT_LEN]; /* pending.function named, "" when it is 0 */
};

#ifdef __cplusplus
static_assert(sizeof(struct pending_task) == 32, "pending_task layout is shared with BPF");
static_assert(sizeof(struct pending_task_record) == 64 + FUNCTION_TEXT_LEN,
	      "pending_task_record layout is shared with BPF");
#else
_Static_assert(sizeof(struct pending_task) == 32, "pending_task layout is shared with userspace");
_Static_assert(sizeof(struct pending_task_record) == 64 + FUNCTION_TEXT_LEN,
	       "pending_task_record layout is shared with userspace");
#endif

#endif /* LIVEPATCHD_BPF_PENDING_TASKS_H */
