// SPDX-License-Identifier: GPL-2.0-only
#include "bpf/transition_events.hpp"

#include <cerrno>
#include <cstring>
#include <system_error>

#include "bpf/libbpf_messages.hpp"

#include <bpf/libbpf.h>
#include <transition_events.h>
#include <transition_events.skel.h>

namespace livepatchd {

namespace {

Error failure(int errnum, const std::string& what)
{
    std::string rejected;
    (void)libbpf_saw_program_rejected(&rejected);
    return Error{errnum, bpf_failure_text(errnum, what, std::generic_category().message(errnum),
                                          rejected)};
}

} // namespace

Result<std::unique_ptr<TransitionEvents>> TransitionEvents::open(Handler handler)
{
    transition_events* skel = transition_events__open_and_load();
    if (!skel)
        return failure(errno, "load the BPF programs of transition_events");
    std::unique_ptr<TransitionEvents> events(new TransitionEvents(skel, std::move(handler)));
    if (int r = transition_events__attach(skel); r < 0)
        return failure(-r, "attach to lpshim's tracepoints lpshim_transition_start/end (is "
                           "lpshim.ko loaded?)");
    events->ring_ = ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, events.get(),
                                     nullptr);
    if (!events->ring_)
        return failure(errno, "open the ring buffer of transition_events");
    return events;
}

TransitionEvents::TransitionEvents(transition_events* skel, Handler handler)
    : skel_(skel), handler_(std::move(handler))
{
}

TransitionEvents::~TransitionEvents()
{
    ring_buffer__free(ring_);
    transition_events__destroy(skel_); // detaches: lpshim.ko can be unloaded again
}

int TransitionEvents::fd() const
{
    return ring_buffer__epoll_fd(ring_);
}

Result<int> TransitionEvents::consume()
{
    const int n = ring_buffer__consume(ring_);
    if (n < 0)
        return failure(-n, "read the transition events");
    // After the records: a drop happened when the buffer was full, after the last record that
    // fit, so the reader acts on what it got first and then looks at sysfs.
    if (const std::uint64_t now_dropped = dropped(); now_dropped != dropped_seen_) {
        TransitionEvent lost;
        lost.type = TransitionEvent::Type::lost;
        lost.count = static_cast<std::uint32_t>(now_dropped - dropped_seen_);
        dropped_seen_ = now_dropped;
        handler_(lost);
    }
    return n;
}

std::uint64_t TransitionEvents::dropped() const
{
    // Written by the programs on any CPU: read once, whole (an aligned u64).
    return __atomic_load_n(&skel_->bss->dropped, __ATOMIC_RELAXED);
}

int TransitionEvents::on_record(void* self, void* data, std::size_t size)
{
    if (size < sizeof(transition_event))
        return 0; // not one of ours: ignore it rather than read past it
    const auto* e = static_cast<const transition_event*>(data);
    TransitionEvent event;
    event.type = e->type == TRANSITION_EVENT_END ? TransitionEvent::Type::end
                                                 : TransitionEvent::Type::start;
    event.patch.assign(e->patch, strnlen(e->patch, sizeof e->patch));
    event.to_patched = e->target == 1;
    event.count = e->count;
    event.duration_ns = e->duration_ns;
    event.time_ns = e->time_ns;
    try { // nothing unwinds through libbpf
        static_cast<TransitionEvents*>(self)->handler_(event);
    } catch (...) {
    }
    return 0;
}

} // namespace livepatchd
