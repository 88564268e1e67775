// SPDX-License-Identifier: GPL-2.0-only
#include "service/transition_report.hpp"

namespace livepatchd {

void report_transition_change(const TransitionChange& change, EventSink& sink,
                              PatchOperations& operations)
{
    switch (change.kind) {
    case TransitionChange::Kind::started:
        sink.transition_started(change.patch, change.target);
        break;
    case TransitionChange::Kind::ended:
        sink.transition_finished(change.patch, change.target, change.outcome, change.usec);
        operations.transition_ended(change.patch, change.state);
        sink.patch_changed(change.patch);
        break;
    case TransitionChange::Kind::reversed:
    case TransitionChange::Kind::stalled:
        // Not signals of their own: a reversal shows in TransitionTarget and the outcome, a
        // stall in State and TransitionStalled (sent where on_stall is acted on).
        break;
    }
}

std::vector<TransitionChange> follow_kernel_event(const KernelTransitionEvent& event,
                                                  std::uint64_t now, TransitionWatcher& watcher,
                                                  PatchOperations& operations)
{
    if (event.start)
        return watcher.kernel_started(event.patch, event.target, event.usec);
    if (event.forced_tasks > 0)
        operations.record_forced(event.patch); // by hand too: echo 1 > force
    return watcher.kernel_ended(event.patch, event.target, event.forced_tasks, event.usec,
                                now);
}

} // namespace livepatchd
