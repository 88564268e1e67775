// SPDX-License-Identifier: GPL-2.0-only
//
// What /proc says about a pending task, for the remediation ladder and for people: whether it
// is a kernel thread, its state, whether it is traced, when it started (a pid can be reused),
// and the systemd units its cgroup lies in. Everything read is checked; a task that has gone
// is an error (ESRCH), not a guess.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "remediation.hpp"
#include "result.hpp"

namespace livepatchd {

struct ProcStat {
    char state = '?';
    unsigned long flags = 0;
    std::uint64_t start_time = 0;
    bool operator==(const ProcStat&) const = default;
};

// /proc/<pid>/stat: the fields after the command (which may hold spaces and parentheses).
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// /proc/<pid>/cgroup (the unified hierarchy's "0::/path" line): the systemd units along the
// path, outermost first ("system.slice", "foo.service").
std::vector<std::string> parse_cgroup_units(std::string_view text);

Result<TaskFacts> read_task_facts(const PendingTask& task,
                                  const std::filesystem::path& proc = "/proc");

} // namespace livepatchd
