// SPDX-License-Identifier: GPL-2.0
/*
 * The tasks an lpshim transition waits for, kept in the kernel for livepatchd.
 *
 * Raw tracepoint programs on lpshim's tracepoints (shim-kmod/trace.h; raw because lpshim.ko has
 * no BTF) keep the "pending" map: tid -> why it is blocked, the function, when it was first
 * found blocked and how many times. An iter/task program reports, for every task in the map
 * that still exists, one record with its comm and tgid and, when asked, its kernel stack, and a
 * marker after every few tasks it passes by (pending_tasks.h).
 *
 * Transition epochs. transition_epoch changes at every transition start and end, so a record
 * left from an earlier transition (a task that never switched because the transition was
 * reversed or forced, or that exited) is never reported: its epoch is not the current one.
 * Such leftovers are overwritten when the task blocks again, deleted by the iterator when it
 * meets them, or by the exit program when their task exits.
 * lpshim emits start and end under its mutex, but task_blocked and task_switch also from
 * switch points outside it (return to user mode, sched_switch) and on other CPUs, so two
 * races are closed here rather than assumed away:
 * - a pass reports a task blocked (under the task's runqueue lock) while the task switches on
 *   its way to user mode on another CPU, and the switch's program runs first: task_switch
 *   leaves a tombstone, "switched in epoch E" (PENDING_TASK_F_SWITCHED), instead of deleting,
 *   and task_blocked ignores a tombstone of the current epoch;
 * - after a reversal, a late task_switch to the old target (its program ran after the new
 *   start's) would delete a task that is pending again: task_switch acts only when its state
 *   is the current transition's target (transition_target, from the start's args[1]).
 * A task_blocked emitted between lpshim's range update and its start tracepoint carries the
 * epoch before: its record is stale at once, and the next pass reports the task again.
 *
 * The stack is for people only; it must never be used for a consistency decision. For a task
 * other than current, bpf_get_task_stack() uses the non-reliable stack_trace_save_tsk(): it can
 * race with a task that is running on another CPU, skips the scheduler frames and does not tell
 * whether the unwind was complete. Whether a task may switch to the patched code is decided by
 * lpshim in the kernel, with a reliable stack check under task_call_func().
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "pending_tasks.h"
#include "pending_tasks_rules.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * A plain hash map, never LRU: an LRU map evicts silently (from about max - 128 x (CPUs - 1)
 * entries, as each CPU parks free nodes), while the daemon acts on this map as the pending set.
 * Userspace sizes it from the system's task limit (kernel.threads-max) before load; an insert
 * that finds it full is counted in overflowed, and the daemon then takes lpshim's own list.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PENDING_TASKS_MAX);
	__type(key, __u32); /* tid */
	__type(value, struct pending_task);
} pending SEC(".maps");

/* Changed by the transition start and end programs; see the comment at the top. */
__u32 transition_epoch = 0;
/* The target of the transition under way (1 patched, 0 unpatched): a task_switch to another
 * target is a late one of before a reversal. -1 between transitions, and when attached during
 * one (livepatchd restarted): then every switch is taken as one. */
__s32 transition_target = -1;

/* Inserts refused because the map was full, since the last transition start: while not 0, the
 * map misses tasks that block the transition. */
__u64 overflowed = 0;

/*
 * Set by userspace before it reads the iterator: which records carry stacks (enum
 * pending_stack_mode; STACKS_SELECTED: the tasks in stack_wanted). A stack costs a walk and a
 * symbol lookup per frame, so the daemon asks only for those it logs or is asked for. A single
 * reader (the daemon's one thread) sets it and reads, so no two reads see each other's setting.
 */
__u32 stack_mode = PENDING_STACKS_NONE;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PENDING_STACKS_SELECTED_MAX);
	__type(key, __u32); /* tid */
	__type(value, __u8);
} stack_wanted SEC(".maps");

/* TP_PROTO(const char *patch, int target, unsigned int pending) */
SEC("raw_tracepoint/lpshim_transition_start")
int pending_on_transition_start(struct bpf_raw_tracepoint_args *ctx)
{
	transition_target = (__s32)ctx->args[1];
	__sync_fetch_and_add(&transition_epoch, 1);
	/* lpshim's first pass reports every blocked task again: counted anew from here. */
	overflowed = 0;
	return 0;
}

/* TP_PROTO(const char *patch, int target, unsigned int forced_tasks, u64 duration_ns) */
SEC("raw_tracepoint/lpshim_transition_end")
int pending_on_transition_end(struct bpf_raw_tracepoint_args *ctx)
{
	transition_target = -1;
	__sync_fetch_and_add(&transition_epoch, 1);
	return 0;
}

/* TP_PROTO(pid_t tid, int reason, unsigned long func, unsigned int attempt) */
SEC("raw_tracepoint/lpshim_task_blocked")
int pending_on_task_blocked(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tid = (__u32)ctx->args[0];
	__u32 epoch = transition_epoch;
	struct pending_task *p, fresh = {};

	if (tid == 0) /* an idle task: per CPU, not a task anyone can act on */
		return 0;
	p = bpf_map_lookup_elem(&pending, &tid);
	switch (pending_rule_blocked(p, epoch)) {
	case PENDING_STEP_INSERT:
		break;
	case PENDING_STEP_UPDATE:
		if (!p)
			return 0; /* cannot happen; for the verifier */
		/* Plain stores: a report may see one field updated before the other. */
		p->reason = (__u32)ctx->args[1];
		p->function = ctx->args[2];
		p->transition = epoch;
		p->attempts = (__u32)ctx->args[3] + 1; /* lpshim's pass, counted from 1 */
		return 0;
	default:
		return 0;
	}
	fresh.first_seen_ns = bpf_ktime_get_ns();
	fresh.function = ctx->args[2];
	fresh.transition = epoch;
	fresh.attempts = (__u32)ctx->args[3] + 1;
	fresh.reason = (__u32)ctx->args[1];
	/*
	 * The result as an int: before 6.4 the verifier turns this call into one of the map's
	 * update op, which returns int, and r0's upper half is not sign-extended (fixed upstream
	 * by "bpf: Change return type of map ops to long"): compared as a long, -E2BIG of a full
	 * map read as success, and nothing was counted (seen on 6.1).
	 */
	if ((int)bpf_map_update_elem(&pending, &tid, &fresh, BPF_ANY) < 0)
		__sync_fetch_and_add(&overflowed, 1);
	return 0;
}

/* TP_PROTO(pid_t tid, int state, int how) */
SEC("raw_tracepoint/lpshim_task_switch")
int pending_on_task_switch(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tid = (__u32)ctx->args[0];
	struct pending_task *p, tombstone = {};

	p = bpf_map_lookup_elem(&pending, &tid);
	if (pending_rule_switch(p, (__s32)ctx->args[1], transition_target) != PENDING_STEP_TOMBSTONE)
		return 0;
	/*
	 * "Switched in this epoch", not a delete: a task_blocked of the same pass may come after
	 * it (see pending_on_task_blocked). Not reported; given back by the iterator or at exit.
	 */
	tombstone.transition = transition_epoch;
	tombstone.flags = PENDING_TASK_F_SWITCHED;
	bpf_map_update_elem(&pending, &tid, &tombstone, BPF_ANY);
	return 0;
}

/*
 * A task exits (TP_PROTO(struct task_struct *p), p == current in do_exit()): its entry goes, so
 * that exited tasks do not fill the map, nor leave a record a later task with their tid would
 * inherit. One lookup per thread exit. A watched task stays (userspace forgets it).
 */
SEC("raw_tracepoint/sched_process_exit")
int pending_on_task_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_task *p;

	p = bpf_map_lookup_elem(&pending, &tid);
	if (p && !(p->flags & PENDING_TASK_F_WATCHED))
		bpf_map_delete_elem(&pending, &tid);
	return 0;
}

/*
 * A record is built in a per-CPU map value, not on the 512-byte BPF stack: it is 3 KB, and
 * bpf_get_task_stack(), bpf_snprintf() and bpf_seq_write() take a map value without the verifier
 * having to prove every byte initialised. Iterator programs run with migration disabled, so the
 * slot is this CPU's; only two readers of the iterator preempting each other on one CPU
 * (preempt=full) could interleave in it, and the daemon has a single reader.
 */
struct record_scratch {
	struct pending_task_record rec;
	__u64 frames[MAX_FRAMES];
	char frame_text[MAX_FRAMES][FRAME_TEXT_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record_scratch);
} record_scratch SEC(".maps");

/* Tasks passed without a record since the last one written (pending_tasks.h, markers). */
__u32 unreported = 0;

/* task is not reported: after PENDING_MARKER_EVERY such, a marker ends a read that is full. */
static __always_inline void pass_by(struct seq_file *seq)
{
	struct pending_task_record marker = {};

	if (++unreported < PENDING_MARKER_EVERY)
		return;
	unreported = 0;
	bpf_seq_write(seq, &marker, sizeof(marker));
}

static const char function_fmt[] = "%ps";
static const char frame_fmt[] = "%pB";

SEC("iter/task")
int dump_pending_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct record_scratch *scratch;
	struct pending_task_record *rec;
	struct pending_task *p;
	__u32 tid, zero = 0, i, nr = 0;
	long n;

	if (!task) /* the final call, after the last task */
		return 0;

	tid = task->pid;
	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p) {
		pass_by(seq);
		return 0;
	}
	switch (pending_rule_report(p, transition_epoch)) {
	case PENDING_STEP_UPDATE:
		break;
	case PENDING_STEP_DELETE:
		/* A leftover of an earlier transition (reversed past it, or forced): its room is
		 * given back, so that a plain hash map does not fill with them. */
		bpf_map_delete_elem(&pending, &tid);
		pass_by(seq);
		return 0;
	default:
		pass_by(seq);
		return 0;
	}
	unreported = 0;

	scratch = bpf_map_lookup_elem(&record_scratch, &zero);
	if (!scratch)
		return 0;
	rec = &scratch->rec;

	rec->tid = tid;
	rec->tgid = task->tgid;
	/* The whole field, so that no byte of the previous task's comm stays in the scratch. */
	bpf_probe_read_kernel(rec->comm, sizeof(rec->comm), task->comm);
	rec->pending = *p;
	rec->function[0] = '\0';
	if (p->function)
		bpf_snprintf(rec->function, sizeof(rec->function), function_fmt, &p->function,
			     sizeof(p->function));

	rec->stack_err = 0;
	if (stack_mode == PENDING_STACKS_ALL || (p->flags & PENDING_TASK_F_WATCHED) ||
	    (stack_mode == PENDING_STACKS_SELECTED && bpf_map_lookup_elem(&stack_wanted, &tid))) {
		n = bpf_get_task_stack(task, scratch->frames, sizeof(scratch->frames), 0);
		if (n < 0)
			rec->stack_err = n;
		else
			nr = n / sizeof(scratch->frames[0]);
	}
	for (i = 0; i < MAX_FRAMES && i < nr; i++)
		bpf_snprintf(scratch->frame_text[i], FRAME_TEXT_LEN, frame_fmt, &scratch->frames[i],
			     sizeof(scratch->frames[i]));
	rec->nr_frames = nr;

	/*
	 * Both writes are this task's: when the seq buffer overflows, the kernel drops everything
	 * this call wrote and calls the program again for the same task on the next read, so a
	 * header is never emitted without its frames.
	 */
	if (nr > MAX_FRAMES)
		return 0; /* cannot happen; bounds nr for the verifier */
	bpf_seq_write(seq, rec, sizeof(*rec));
	if (nr)
		bpf_seq_write(seq, scratch->frame_text, nr * FRAME_TEXT_LEN);
	return 0;
}
