// SPDX-License-Identifier: GPL-2.0-only
//
// The tasks a transition waits for, as lpshim lists them in /sys/kernel/debug/lpshim/tasks
// (shim-kmod/transition.c, lpshim_show_pending_tasks()).
#pragma once

#include <optional>
#include <string_view>

#include "kernel/patch_control.hpp"

namespace livepatchd {

// One line of the tasks file: "TID TGID COMM REASON FUNCTION", where COMM (at most 15 bytes)
// may hold spaces and FUNCTION is "0x0" when there is none, "name [module]" for a module's. nullopt for a line that is not one:
// the kernel's words are checked like any other input.
std::optional<PendingTask> parse_pending_task_line(std::string_view line);

} // namespace livepatchd
