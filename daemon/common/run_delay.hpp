// SPDX-License-Identifier: GPL-2.0-only
//
// RunDelayClock: how long the calling thread has waited, runnable, for a CPU (the scheduler's
// run_delay: the second field of /proc/thread-self/schedstat, in ns). The event loop reads it
// around each dispatch, so that a dispatch that took long because the loop was preempted (by
// lpshim's transition pass, by the threads a SIGSTOP woke) is told apart from one that worked,
// or waited in a system call, that long.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/unique_fd.hpp"

namespace livepatchd {

// The run delay in a schedstat line ("<on-CPU ns> <run delay ns> <slices>"), in ns.
std::optional<std::uint64_t> run_delay_ns_of(std::string_view schedstat) noexcept;

// What the calling thread has used so far (getrusage(RUSAGE_THREAD)): CPU time in user space
// and in the kernel, page faults (major ones waited for a read: of the binary, a library, swap),
// and sleeps (voluntary context switches: a lock, an I/O). Beside the run delay, it says where
// a slow dispatch's time went. The user/kernel split is the scheduler's, made from tick samples
// (about 4 ms at 250 Hz: approximate for one dispatch); the counts are exact.
struct ThreadUsage {
    std::uint64_t user_usec = 0;
    std::uint64_t system_usec = 0;
    std::uint64_t minor_faults = 0;
    std::uint64_t major_faults = 0;
    std::uint64_t sleeps = 0;

    static std::optional<ThreadUsage> now() noexcept;
    // Each count's growth from before (0 where it did not grow).
    ThreadUsage since(const ThreadUsage& before) const noexcept;
};

class RunDelayClock {
public:
    // Of the calling thread; reads nothing (usec() is empty) where the kernel keeps no
    // schedstat (CONFIG_SCHED_INFO off).
    static RunDelayClock of_this_thread() noexcept;

    // The run delay so far in µs; empty when it cannot be read.
    std::optional<std::uint64_t> usec() const noexcept;

private:
    explicit RunDelayClock(UniqueFd fd) noexcept : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

} // namespace livepatchd
