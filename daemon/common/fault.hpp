// SPDX-License-Identifier: GPL-2.0-only
//
// Crash points for tests: the places where a crash of livepatchd must leave nothing
// half-done (between saving the desired state and loading a module, ...) call
// fault_point("name") (between SIGSTOP and SIGCONT, on the signals' thread, test builds obey
// LIVEPATCHD_FAULT_KILL_AFTER_STOP instead). Unit tests set a hook (which throws, so that the
// test can then start a new instance on the same state); test builds (-Dtests=true) also obey
// LIVEPATCHD_FAULT_CRASH_AT=name in the environment by killing themselves with SIGKILL there,
// and LIVEPATCHD_FAULT_DELAY_AT=name:ms[,name:ms...] by sleeping that long there (at most
// 10 s: a slow read of the kernel, for tests/vm). Release builds ignore both.
#pragma once

#include <functional>
#include <string_view>

namespace livepatchd {

void fault_point(std::string_view name);

// For unit tests: called at every fault point; nullptr to remove.
void set_fault_hook(std::function<void(std::string_view)> hook);

} // namespace livepatchd
