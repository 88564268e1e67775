// SPDX-License-Identifier: GPL-2.0-only
//
// TransitionEvents: lpshim's transition starts and ends as they happen, from the raw tracepoint
// programs of bpf/transition_events.bpf.c through a ring buffer. fd() becomes readable when
// events are waiting; the daemon's event loop watches it and calls consume(), so nothing polls
// between transitions.
//
// The programs hold a reference on lpshim.ko while attached: destroy this before lpshim is to
// be unloaded.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"

struct transition_events; // the generated skeleton, <transition_events.skel.h>
struct ring_buffer;

namespace livepatchd {

struct TransitionEvent {
    // lost: events the ring buffer had no room for (count of them, since the last consume);
    // what they said is lost with them, so the reader looks at lpshim's sysfs instead.
    enum class Type { start, end, lost };
    Type type = Type::start;
    std::string patch;
    bool to_patched = true;      // start: the target; end: where the patch is now
    std::uint32_t count = 0;     // start: tasks pending; end: tasks forced; lost: events lost
    std::uint64_t duration_ns = 0; // end only
    std::uint64_t time_ns = 0;     // CLOCK_MONOTONIC when lpshim emitted it (not for lost)
};

class TransitionEvents {
public:
    using Handler = std::function<void(const TransitionEvent&)>;

    // Loads and attaches the programs (lpshim.ko must be loaded: its tracepoints are). Needs
    // CAP_BPF and CAP_PERFMON.
    static Result<std::unique_ptr<TransitionEvents>> open(Handler handler);
    ~TransitionEvents();
    TransitionEvents(const TransitionEvents&) = delete; // owns the skeleton and ring buffer
    TransitionEvents& operator=(const TransitionEvents&) = delete;

    int fd() const;
    // Hands every waiting event to the handler, in the order lpshim emitted them, then one
    // `lost` event if the ring buffer dropped any since the last call. Returns how many
    // (lost not counted).
    Result<int> consume();
    // Events lost because the ring buffer was full.
    std::uint64_t dropped() const;

private:
    TransitionEvents(transition_events* skel, Handler handler);
    static int on_record(void* self, void* data, std::size_t size);

    transition_events* skel_;
    ring_buffer* ring_ = nullptr;
    std::uint64_t dropped_seen_ = 0; // dropped() when the last `lost` was handed over
    Handler handler_;
};

} // namespace livepatchd
