// SPDX-License-Identifier: GPL-2.0-only
//
// The tasks a transition waits for, as lpshim lists them in /sys/kernel/debug/lpshim/tasks
// (shim-kmod/transition.c, lpshim_show_pending_tasks()).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "common/result.hpp"

#include "kernel/patch_control.hpp"

namespace livepatchd {

// One line of the tasks file: "TID TGID COMM REASON FUNCTION", where COMM (at most 15 bytes,
// control bytes escaped by lpshim) may hold spaces, REASON is one lpshim knows, and FUNCTION
// is "0x0" when there is none, "name [module]" for a module's. nullopt for a line that is not
// one: the kernel's words are checked like any other input.
std::optional<PendingTask> parse_pending_task_line(std::string_view line);

// The whole file. One malformed line refuses the list (EBADMSG): a task that made its own line
// unreadable (a newline in its name, from an lpshim that did not escape it) must not drop out
// of the list, and a forged line must not add a task; a caller without the list acts on
// nothing (it neither reverts nor signals).
Result<std::vector<PendingTask>> parse_pending_tasks(std::string_view text);

} // namespace livepatchd
