// SPDX-License-Identifier: GPL-2.0-only
//
// TaskSignaller: the SIGSTOP/SIGCONT rung of the remediation ladder, made safe to crash in.
//
// A process is stopped through a pidfd (pidfd_open, pidfd_send_signal), opened first and then
// checked against the start time the caller saw of the blocked *thread* (a tid names one
// thread; the thread's start time is in /proc/<pid>/task/<tid>/stat, the leader's is another),
// so that a pid reused meanwhile is never signalled.
//
// Before the SIGSTOP the process is recorded durably (StopRecords: one empty file per stopped
// process, <state>/stopped/<pid>.<start time>: no content to damage, nothing to rewrite), and
// the record goes after its SIGCONT. A record that cannot be written means no SIGSTOP; one
// that cannot be removed is kept in memory and removed again later (resume never forgets a
// process whose record is still there). At every start, before anything that can fail,
// recover_stopped() continues every process still recorded that is the same process (same
// start time), whatever state its leader shows (a zombie leader whose threads are stopped, or
// a leader in D whose SIGSTOP is still pending, shows no T); a record goes once its process is
// continued or gone, and stays when that cannot be told. A crash of livepatchd between the two
// signals leaves a process stopped only until the next start (livepatchd.service also runs
// `livepatchd --continue-stopped` after every stop of the service).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

struct StopRecord {
    pid_t pid = 0;
    std::uint64_t start_time = 0; // the process's (leader's) start time, /proc/<pid>/stat
    bool operator==(const StopRecord&) const = default;
};

class StopRecords {
public:
    virtual ~StopRecords() = default;
    // Durable once it returns.
    virtual Result<void> add(const StopRecord& record) = 0;
    virtual Result<void> remove(const StopRecord& record) = 0;
};

// <state>/stopped/<pid>.<start time>.
class DirStopRecords final : public StopRecords {
public:
    static Result<std::unique_ptr<DirStopRecords>> open(const std::filesystem::path& state_directory);
    Result<void> add(const StopRecord& record) override;
    Result<void> remove(const StopRecord& record) override;

    // The records, and the names that are not records (damaged; listed to be removed).
    Result<std::vector<StopRecord>> list(std::vector<std::string>* damaged) const;
    Result<void> remove_name(const std::string& name);

private:
    DirStopRecords(std::filesystem::path directory, UniqueFd fd)
        : directory_(std::move(directory)), fd_(std::move(fd))
    {
    }
    std::filesystem::path directory_;
    UniqueFd fd_;
};

// "<pid>.<start time>", and back (nullopt for any other name).
std::string stop_record_name(const StopRecord& record);
std::optional<StopRecord> parse_stop_record_name(std::string_view name);

struct Recovery {
    std::vector<pid_t> continued;      // processes continued
    std::vector<std::string> warnings; // what could not be done or read, as sentences
};

// Continues the processes an earlier livepatchd left stopped, from <state>/stopped/ and from
// the stopped.json of older versions (read leniently; a damaged one is kept aside as
// stopped.json.corrupt). Never fails as a whole: what it cannot do is a warning.
Recovery recover_stopped(const std::filesystem::path& state_directory,
                         const std::filesystem::path& proc = "/proc");

// What the remediation executor needs of a signaller (fakes in tests).
class Signaller {
public:
    virtual ~Signaller() = default;
    // Records, then stops process pid if its thread tid is still the one that started at
    // thread_start_time. The CLOCK_MONOTONIC time (µs) just before the SIGSTOP was sent: a
    // hold counts from it, not from the return, which the storm of wakeups a SIGSTOP to
    // thousands of threads starts can hold up for hundreds of ms.
    virtual Result<std::uint64_t> stop(pid_t pid, pid_t tid, std::uint64_t thread_start_time) = 0;
    // SIGCONT to a process stop() stopped; forgets it once its record is gone.
    virtual Result<void> resume(pid_t pid) = 0;
    // Removes again the records that could not be removed at resume(); true when none is left.
    virtual bool forget_resumed() = 0;
};

class TaskSignaller final : public Signaller {
public:
    TaskSignaller(std::unique_ptr<StopRecords> records, std::filesystem::path proc = "/proc");

    Result<std::uint64_t> stop(pid_t pid, pid_t tid, std::uint64_t thread_start_time) override;
    Result<void> resume(pid_t pid) override;
    bool forget_resumed() override;

    // The pids stopped and not yet continued.
    std::vector<pid_t> stopped() const;

private:
    Result<std::uint64_t> start_time_of(const std::filesystem::path& stat) const;

    std::unique_ptr<StopRecords> records_;
    std::filesystem::path proc_;
    struct Held {
        StopRecord record;
        UniqueFd pidfd;
    };
    std::map<pid_t, Held> held_;
    std::vector<StopRecord> unforgotten_; // continued, but the record is still on disk
};

} // namespace livepatchd
