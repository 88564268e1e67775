// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel stacks of the tasks livepatchd is waiting for, for the people reading its reports.
 *
 * An iter/task program: reading the iterator fd walks every task (every thread) once; each one
 * whose tid is in the "pending" map yields one fixed-size struct task_stack_record.
 *
 * The stack is for people only; it must never be used for a consistency decision. For a task
 * other than current, bpf_get_task_stack() uses the non-reliable stack_trace_save_tsk(): it can
 * race with a task that is running on another CPU, skips the scheduler frames and does not tell
 * whether the unwind was complete. Whether a task may switch to the patched code is decided by
 * lpshim in the kernel, with a reliable stack check under task_call_func().
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "pending_stacks.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PENDING_TASKS_MAX);
	__type(key, __u32); /* tid */
	__type(value, struct pending_task);
} pending SEC(".maps");

/*
 * The record is built in a per-CPU map value, not on the 512-byte BPF stack: it is 288 bytes, and
 * bpf_get_task_stack() and bpf_seq_write() take a map value without the verifier having to prove
 * every byte initialised. Iterator programs run with migration disabled, so the slot is this
 * CPU's; only two readers of the iterator preempting each other on one CPU (preempt=full) could
 * interleave in it, and the daemon has a single reader.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct task_stack_record);
} record_scratch SEC(".maps");

SEC("iter/task")
int dump_pending_stacks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct task_stack_record *rec;
	__u32 tid, zero = 0;
	long n;

	if (!task) /* the final call, after the last task */
		return 0;

	tid = task->pid;
	if (!bpf_map_lookup_elem(&pending, &tid))
		return 0;

	rec = bpf_map_lookup_elem(&record_scratch, &zero);
	if (!rec)
		return 0;

	rec->tid = tid;
	rec->tgid = task->tgid;
	/* The whole field, so that no byte of the previous task's comm stays in the scratch. */
	bpf_probe_read_kernel(rec->comm, sizeof(rec->comm), task->comm);

	/* Userspace reads only nr_frames entries: stale ones past them do not matter. */
	n = bpf_get_task_stack(task, rec->frames, sizeof(rec->frames), 0);
	if (n < 0) {
		rec->nr_frames = 0;
		rec->stack_err = n;
	} else {
		rec->nr_frames = n / sizeof(rec->frames[0]);
		rec->stack_err = 0;
	}

	/*
	 * On -EOVERFLOW (seq buffer full) the kernel stops this read and calls the program again for
	 * the same task on the next one: nothing is lost and no partial record is emitted.
	 */
	bpf_seq_write(seq, rec, sizeof(*rec));
	return 0;
}
