// SPDX-License-Identifier: GPL-2.0-only
//
// TaskSignaller: the SIGSTOP/SIGCONT rung of the remediation ladder, made safe to crash in.
//
// A process is stopped through a pidfd (pidfd_open, pidfd_send_signal), opened first and then
// checked against the start time the caller saw, so that a pid reused meanwhile is never
// signalled. Before the SIGSTOP the process is written to <state>/stopped.json (durably), and
// removed after its SIGCONT; at start-up recover() continues every process still listed that
// is the same process (same start time). A crash of livepatchd between the two signals
// therefore never leaves a process stopped for longer than a restart.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <vector>

#include "result.hpp"
#include "unique_fd.hpp"

namespace livepatchd {

class TaskSignaller {
public:
    static Result<TaskSignaller> open(const std::filesystem::path& state_directory,
                                      std::filesystem::path proc = "/proc");

    // SIGCONT to the processes a crashed livepatchd left stopped; empties the list. Returns
    // the pids continued.
    Result<std::vector<pid_t>> recover();

    // Records, then stops the process pid if it is still the one that started at start_time.
    Result<void> stop(pid_t pid, std::uint64_t start_time);
    // SIGCONT to a process stop() stopped; forgets it.
    Result<void> resume(pid_t pid);

    TaskSignaller(TaskSignaller&&) noexcept = default;
    TaskSignaller& operator=(TaskSignaller&&) noexcept = default;

private:
    TaskSignaller(std::filesystem::path directory, UniqueFd directory_fd,
                  std::filesystem::path proc);
    Result<void> save() const;
    Result<std::uint64_t> start_time_of(pid_t pid) const;

    std::filesystem::path directory_;
    UniqueFd directory_fd_;
    std::filesystem::path proc_;
    std::map<pid_t, std::uint64_t> stopped_; // pid -> start time, as in stopped.json
    std::map<pid_t, UniqueFd> pidfds_;
};

} // namespace livepatchd
