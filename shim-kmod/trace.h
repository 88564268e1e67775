/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * trace.h - lpshim's tracepoints (system "lpshim"), the stream livepatchd's BPF programs read
 *
 * Their arguments are an ABI for raw tracepoint programs (no module BTF): keep the order and
 * types; docs/tracepoints.md documents them and bpf/ mirrors the enums.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM lpshim

#if !defined(_LPSHIM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _LPSHIM_TRACE_H

#include <linux/tracepoint.h>

#ifndef _LPSHIM_TRACE_ENUMS
#define _LPSHIM_TRACE_ENUMS
#include <linux/version.h>
/* __assign_str() lost its source argument in 6.10 (it comes from __string() now) */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
#define lpshim_assign_str(dst, src) __assign_str(dst)
#else
#define lpshim_assign_str(dst, src) __assign_str(dst, src)
#endif
/* How a task switched (lpshim_task_switch "how") */
enum lpshim_switch_how {
	LPSHIM_SWITCH_STACK,		/* the transition found its stack clean */
	LPSHIM_SWITCH_USER_RETURN,	/* on its way back to user mode */
	LPSHIM_SWITCH_IDLE,		/* an idle task in the idle loop */
	LPSHIM_SWITCH_FORK,		/* created from a switched parent */
	LPSHIM_SWITCH_SCHED,		/* scheduling out with a clean stack */
	LPSHIM_SWITCH_FORCE,		/* forced */
};
#endif

TRACE_EVENT(lpshim_transition_start,
	TP_PROTO(const char *patch, int target, unsigned int pending),
	TP_ARGS(patch, target, pending),
	TP_STRUCT__entry(
		__string(patch, patch)
		__field(int, target)
		__field(unsigned int, pending)
	),
	TP_fast_assign(
		lpshim_assign_str(patch, patch);
		__entry->target = target;
		__entry->pending = pending;
	),
	TP_printk("patch=%s target=%s pending=%u", __get_str(patch),
		  __entry->target ? "patched" : "unpatched", __entry->pending)
);

TRACE_EVENT(lpshim_transition_end,
	TP_PROTO(const char *patch, int target, unsigned int forced_tasks, u64 duration_ns),
	TP_ARGS(patch, target, forced_tasks, duration_ns),
	TP_STRUCT__entry(
		__string(patch, patch)
		__field(int, target)
		__field(unsigned int, forced_tasks)
		__field(u64, duration_ns)
	),
	TP_fast_assign(
		lpshim_assign_str(patch, patch);
		__entry->target = target;
		__entry->forced_tasks = forced_tasks;
		__entry->duration_ns = duration_ns;
	),
	TP_printk("patch=%s target=%s forced_tasks=%u duration_ns=%llu", __get_str(patch),
		  __entry->target ? "patched" : "unpatched", __entry->forced_tasks,
		  __entry->duration_ns)
);

TRACE_EVENT(lpshim_task_switch,
	TP_PROTO(pid_t tid, int state, int how),
	TP_ARGS(tid, state, how),
	TP_STRUCT__entry(
		__field(pid_t, tid)
		__field(int, state)
		__field(int, how)
	),
	TP_fast_assign(
		__entry->tid = tid;
		__entry->state = state;
		__entry->how = how;
	),
	TP_printk("tid=%d state=%s how=%s", __entry->tid,
		  __entry->state ? "patched" : "unpatched",
		  __print_symbolic(__entry->how, { 0, "stack" }, { 1, "user-return" },
				   { 2, "idle" }, { 3, "fork" }, { 4, "sched" }, { 5, "force" }))
);

TRACE_EVENT(lpshim_task_blocked,
	TP_PROTO(pid_t tid, int reason, unsigned long func, unsigned int attempt),
	TP_ARGS(tid, reason, func, attempt),
	TP_STRUCT__entry(
		__field(pid_t, tid)
		__field(int, reason)
		__field(unsigned long, func)
		__field(unsigned int, attempt)
	),
	TP_fast_assign(
		__entry->tid = tid;
		__entry->reason = reason;
		__entry->func = func;
		__entry->attempt = attempt;
	),
	TP_printk("tid=%d reason=%s func=%ps attempt=%u", __entry->tid,
		  __print_symbolic(__entry->reason, { 1, "running" }, { 2, "sleeping-in-function" },
				   { 3, "unreliable-stack" }),
		  (void *)__entry->func, __entry->attempt)
);

#endif /* _LPSHIM_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
