// SPDX-License-Identifier: GPL-2.0-only
//
// What a change of the watched transition (TransitionWatcher) means outside the service, in one
// place for the service and the bus tests' fixture: TransitionStarted, TransitionFinished (one
// per started transition, with its outcome) and the patch's PropertiesChanged on the bus, and
// the desired state's update when a transition ends (PatchOperations::transition_ended).
#pragma once

#include <vector>

#include "kernel/kernel_view.hpp"
#include "service/event_sink.hpp"
#include "service/patch_operations.hpp"
#include "service/transition_watcher.hpp"

namespace livepatchd {

void report_transition_change(const TransitionChange& change, EventSink& sink,
                              PatchOperations& operations);

// One of lpshim's transition events (its tracepoints, read through BPF: bpf/transition_events.h).
struct KernelTransitionEvent {
    bool start = true;
    std::string patch;
    std::string target;              // start: where it goes; end: where it ended
    std::uint32_t forced_tasks = 0;  // end: tasks switched by force
    std::uint64_t usec = 0;          // CLOCK_MONOTONIC, when lpshim sent it (time_ns)
};

// What one means, for the service and the bus tests' fixture alike: a start goes to the
// watcher (which drops stale ones); an end to the watcher too (its outcome, a Revert that
// raced the completion), and an end with forced tasks makes the patch Forced, however the
// force was written. now: CLOCK_MONOTONIC when the loop got to it. The caller handles the
// changes returned (and reads events before each look at sysfs, so that an end is known before
// the look that sees the patch there).
std::vector<TransitionChange> follow_kernel_event(const KernelTransitionEvent& event,
                                                  std::uint64_t now, TransitionWatcher& watcher,
                                                  PatchOperations& operations);

} // namespace livepatchd
