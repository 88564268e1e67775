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
                              PatchOperations& operations,
                              const std::vector<KernelPatch>& in_kernel);

} // namespace livepatchd
