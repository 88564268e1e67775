// SPDX-License-Identifier: GPL-2.0-only
//
// TransitionWatcher: follows the transition the kernel shows, from snapshots of lpshim's sysfs
// (KernelView::patches()) and the time on CLOCK_MONOTONIC, and says what happened: a
// transition started, ended (and where), or ran past the stall timeout. Pure: no clock of its
// own, no I/O; the service feeds it and acts on its events.
//
// The wall clock plays no part: a step of the real-time clock changes no decision. A
// transition that a restarted livepatchd finds under way resumes its start time from the
// record the earlier instance kept (TransitionRecord, same boot), so that a crash-looping
// daemon still reaches the stall timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "kernel/kernel_view.hpp"
#include "service/status.hpp"

namespace livepatchd {

struct WatchedTransition {
    std::string patch;
    std::string target; // "patched" or "unpatched"
    std::uint64_t started_usec = 0; // CLOCK_MONOTONIC
    bool stalled = false;
    bool operator==(const WatchedTransition&) const = default;
};

struct TransitionChange {
    enum class Kind { started, ended, stalled, reversed };
    Kind kind = Kind::started;
    std::string patch;
    std::string target;
    std::string outcome;       // ended: "patched" or "unpatched"
    std::uint64_t usec = 0;    // ended, reversed: its duration; stalled: the time elapsed
    bool operator==(const TransitionChange&) const = default;
};

class TransitionWatcher {
public:
    explicit TransitionWatcher(std::chrono::milliseconds stall_timeout)
        : stall_timeout_usec_(static_cast<std::uint64_t>(stall_timeout.count()) * 1000)
    {
    }

    // An action (Apply, Revert, the boot apply) or a BPF event started a transition of patch
    // to target at now: follow it, even if the kernel completed it before the next update. A
    // different transition watched until now is reported as reversed.
    std::vector<TransitionChange> watch(std::string_view patch, std::string_view target,
                                       std::uint64_t now);

    // A transition an earlier instance started in this boot: watched from its start time.
    void resume(WatchedTransition watched) { watched_ = std::move(watched); }

    // What the kernel shows now.
    std::vector<TransitionChange> update(const std::vector<KernelPatch>& in_kernel,
                                        std::uint64_t now);

    const std::optional<WatchedTransition>& watched() const { return watched_; }
    std::uint64_t elapsed_usec(std::uint64_t now) const;
    // State, patch and target of the watched transition (started_usec and pending_tasks are
    // the caller's to fill).
    TransitionStatus status() const;

private:
    std::uint64_t stall_timeout_usec_;
    std::optional<WatchedTransition> watched_;
};

// The record of the transition being watched, kept in <state>/transition.json so that a
// restarted livepatchd resumes its start time: JSON, and back. A record of another boot is
// no record (the monotonic clock restarts at every boot).
std::string to_transition_record(const WatchedTransition& watched, std::string_view boot_id);
std::optional<WatchedTransition> parse_transition_record(std::string_view text,
                                                         std::string_view boot_id);

} // namespace livepatchd
