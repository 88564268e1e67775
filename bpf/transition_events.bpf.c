// SPDX-License-Identifier: GPL-2.0
/*
 * lpshim's transitions, as they happen, for livepatchd: raw tracepoint programs on
 * lpshim:lpshim_transition_start and lpshim:lpshim_transition_end (shim-kmod/trace.h) send one
 * record each through a ring buffer, which the daemon's event loop reads when it becomes
 * readable: no polling between transitions.
 *
 * Raw tracepoints, not tp_btf: lpshim.ko is built without BTF (Debian's headers have no vmlinux
 * for pahole), and a raw tracepoint needs none of the module's; its arguments are the
 * TP_PROTO's, as u64s. (The kernel's own BTF is still needed: ctx->args is CO-RE-relocated.)
 * An attached raw tracepoint holds a reference on lpshim.ko: the daemon detaches before lpshim
 * can be unloaded.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "transition_events.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* Events the ring buffer had no room for: the daemon reads it after each consume, says so, and
 * reads lpshim's sysfs instead (TransitionEvent::Type::lost). */
__u64 dropped = 0;

static __always_inline int send(__u32 type, const char *patch, __s32 target, __u32 count,
				__u64 duration_ns)
{
	struct transition_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	e->type = type;
	e->target = target;
	e->count = count;
	e->reserved = 0;
	e->duration_ns = duration_ns;
	e->time_ns = bpf_ktime_get_ns();
	if (bpf_probe_read_kernel_str(e->patch, sizeof(e->patch), patch) < 0)
		e->patch[0] = '\0';
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* TP_PROTO(const char *patch, int target, unsigned int pending) */
SEC("raw_tracepoint/lpshim_transition_start")
int on_transition_start(struct bpf_raw_tracepoint_args *ctx)
{
	return send(TRANSITION_EVENT_START, (const char *)ctx->args[0], (__s32)ctx->args[1],
		    (__u32)ctx->args[2], 0);
}

/* TP_PROTO(const char *patch, int target, unsigned int forced_tasks, u64 duration_ns) */
SEC("raw_tracepoint/lpshim_transition_end")
int on_transition_end(struct bpf_raw_tracepoint_args *ctx)
{
	return send(TRANSITION_EVENT_END, (const char *)ctx->args[0], (__s32)ctx->args[1],
		    (__u32)ctx->args[2], ctx->args[3]);
}
