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
#include <unordered_map>
#include <utility>
#include <vector>

#include "remediation/remediation.hpp"
#include "common/result.hpp"

namespace livepatchd {

struct ProcStat {
    char state = '?';
    unsigned long flags = 0;
    std::uint64_t start_time = 0;
    bool operator==(const ProcStat&) const = default;
};

// /proc/<pid>/stat: the fields after the command (which may hold spaces and parentheses).
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// /proc/<pid>/status: the real and effective uid ("Uid:" line), the tracer ("TracerPid:").
std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_status_uids(std::string_view text);
std::optional<std::uint32_t> parse_tracer_pid(std::string_view text);
// How many pid namespaces its "NSpid:" line lists (1: the namespace of this /proc).
std::optional<unsigned> parse_nspid_depth(std::string_view text);

// The slices a slice is in, outermost first, ending with itself: "user-1000.slice" gives
// "user.slice", "user-1000.slice". Empty for a name that is not a slice's.
std::vector<std::string> slice_chain(std::string_view innermost);

// What /proc (and, for the real /proc, sd-login) says about the task. Units are read only
// under the real /proc: sd_pid_get_*() cannot be pointed at another tree.
Result<TaskFacts> read_task_facts(const PendingTask& task,
                                  const std::filesystem::path& proc = "/proc");

// One look at many pending tasks (a remediation round's, the stall's, a listing's):
// read_task_facts() for each, with the systemd units read once per process. sd-login reads
// /proc/<pid>/cgroup once per unit asked, under the kernel's cgroup_mutex: a look at 10,000
// threads of one process read it 30,000 times. A thread's units are its process's (a service's
// threaded sub-cgroups are still in its unit, and a signal stops the whole process anyway).
// A process's units are reused only for its threads that started before they were read (a
// later one may be of a new process with a reused pid), only when sd-login answered every
// question, and for a second at most (a process may be moved to another unit).
// The facts are fresh enough to choose a task, not to act on: the stop reads its task again.
// It also keeps where its longest read spent its time, for the look's debug line.
class TaskFactsLook {
public:
    enum class Units { read, skip }; // skip: the stall's decision does not use them
    explicit TaskFactsLook(Units units = Units::read, std::filesystem::path proc = "/proc");

    Result<TaskFacts> read(const PendingTask& task);

    std::size_t reads() const { return reads_; }           // tasks read (idle ones are not)
    std::size_t unit_reads() const { return unit_reads_; } // processes read from sd-login
    std::uint64_t longest_read_usec() const { return longest_.total(); }
    // "stat 12 us, status 30 us, units 9 us": the parts of the longest read.
    std::string longest_read_parts() const;

private:
    struct ReadTimes {
        std::uint64_t stat = 0, status = 0, units = 0;
        std::uint64_t total() const { return stat + status + units; }
    };
    struct ProcessUnits {
        std::vector<std::string> units;
        std::uint64_t read_ticks = 0; // boot time when read, in /proc's clock ticks
    };

    bool read_units_;
    std::filesystem::path proc_;
    std::unordered_map<std::uint32_t, ProcessUnits> units_; // by tgid
    std::size_t reads_ = 0;
    std::size_t unit_reads_ = 0;
    ReadTimes longest_;
};

} // namespace livepatchd
