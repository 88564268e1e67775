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
#include "config/config.hpp"
#include "kernel/kernel_view.hpp"
#include "service/status.hpp"

namespace livepatchd {

struct WatchedTransition {
    std::string patch;
    std::string target; // "patched" or "unpatched": where it was started to go
    std::uint64_t started_usec = 0; // CLOCK_MONOTONIC
    bool stalled = false;
    // Where it goes now: the target, or the other way once reversed (a Revert during an
    // apply, on_stall: revert). Empty: the target.
    std::string heading;
    bool forced = false; // Force, or on_stall: force, during it
    // When it was last turned around (CLOCK_MONOTONIC, taken after the write that did it); 0:
    // never. Not kept across a restart.
    std::uint64_t reversed_usec = 0;
    // When lpshim started it, by its start event (matched off as the action's); 0: not seen.
    // A transition with nothing to wait for ends inside the action's write, before
    // started_usec. Not kept across a restart.
    std::uint64_t kernel_started_usec = 0;
    bool operator==(const WatchedTransition&) const = default;
    const std::string& direction() const { return heading.empty() ? target : heading; }
};

// The outcomes of a transition, the `outcome` of TransitionFinished (docs/dbus-api.md).
inline constexpr std::string_view outcome_completed = "completed"; // every task switched
inline constexpr std::string_view outcome_reversed = "reversed";   // it went back
inline constexpr std::string_view outcome_forced = "forced";       // reached its target, forced

struct TransitionChange {
    // started and ended come in pairs, one of each per transition, with the same patch and
    // target; reversed and stalled may come between them.
    enum class Kind { started, ended, stalled, reversed };
    Kind kind = Kind::started;
    std::string patch;
    std::string target;        // where the transition was started to go
    std::string outcome;       // ended: completed, reversed or forced
    std::string state;         // ended: where the patch is now, "patched" or "unpatched"
    std::uint64_t usec = 0;    // ended, reversed: its duration; stalled: the time elapsed
    bool operator==(const TransitionChange&) const = default;
};

class TransitionWatcher {
public:
    explicit TransitionWatcher(std::chrono::milliseconds stall_timeout)
        : stall_timeout_usec_(static_cast<std::uint64_t>(stall_timeout.count()) * 1000)
    {
    }

    // An action (Apply, Revert of an applied patch, the boot apply) started a new transition
    // of patch to target at now: follow it, even if the kernel completed it before the next
    // update. A transition watched until now has ended where it was going (lpshim runs one at
    // a time, and starts none while one runs).
    std::vector<TransitionChange> watch(std::string_view patch, std::string_view target,
                                       std::uint64_t now);
    // An action (Revert during an apply, on_stall: revert) turned the transition of patch
    // around, towards target. A reversal is no new transition: the watched one is reported
    // reversed, and ends where the kernel leaves it. Not watching that patch's transition,
    // it is followed from now as one to target.
    std::vector<TransitionChange> reverse(std::string_view patch, std::string_view target,
                                         std::uint64_t now);

    // lpshim's tracepoints (BPF) report each start after the action that caused it, possibly
    // after the next update has seen that transition end. With them, say which starts to
    // expect (expect_kernel_start, at each action that starts or reverses one), and hand
    // every start over (kernel_started, with at_usec the time lpshim started it): an expected
    // one is only matched off, in order; one from no later than the last start or reversal
    // this watcher learned of otherwise (an action, a look) is stale: lpshim runs one
    // transition at a time, so it is of that transition or of one before it, already over,
    // and starting it again would end the watched one early and signal it twice. Any other is
    // a transition started outside livepatchd, and watched.
    void expect_kernel_start(std::string_view patch, std::string_view target);
    std::vector<TransitionChange> kernel_started(std::string_view patch, std::string_view target,
                                                std::uint64_t at_usec);
    // lpshim's end of a transition of patch (its tracepoint, through BPF), the patch now in
    // `state` at at_usec (CLOCK_MONOTONIC; now: when the loop got to it), forced_tasks of its
    // tasks switched by force. Ignored unless it is the watched one's. Where the watched one
    // was going now, after it was seen starting, it ends it there (forced when tasks were: a
    // Force by hand), so that an end followed at once by another start (START(A), END(A),
    // START(B), read in one go) is that transition's end, not a reversal and not lost. One
    // that ended where it was first going before the write taken for its reversal did not go
    // back: that write started a new transition the other way (a Revert that raced the
    // apply's completion), which is watched from then. (An end elsewhere is an earlier
    // transition's, or one whose reversal's start the ring buffer lost, which its reader
    // resyncs from sysfs.)
    std::vector<TransitionChange> kernel_ended(std::string_view patch, std::string_view state,
                                              std::uint32_t forced_tasks, std::uint64_t at_usec,
                                              std::uint64_t now);

    // Force (or on_stall: force) was written for patch: if it is the one watched, it ends
    // "forced" unless it ends reversed.
    void forced(std::string_view patch);

    // A transition an earlier instance started in this boot: watched from its start time.
    void resume(WatchedTransition watched) { watched_ = std::move(watched); }

    // What the kernel shows now.
    std::vector<TransitionChange> update(const std::vector<KernelPatch>& in_kernel,
                                        std::uint64_t now);

    const std::optional<WatchedTransition>& watched() const { return watched_; }
    std::uint64_t elapsed_usec(std::uint64_t now) const;
    // State, patch and target of the watched transition, the target being where it goes now
    // (started_usec and pending_tasks are the caller's to fill).
    TransitionStatus status() const;

private:
    TransitionChange end(std::string state, std::uint64_t now);

    std::uint64_t stall_timeout_usec_;
    std::optional<WatchedTransition> watched_;
    // The last start or reversal learned of by an action or a look (CLOCK_MONOTONIC): the
    // kernel's starts up to then are known.
    std::uint64_t known_usec_ = 0;
    struct ExpectedStart {
        std::string patch;
        std::string target;
    };
    std::vector<ExpectedStart> expected_starts_; // oldest first
};

// What transition.on_stall's decision (decide_stall) does to the watched transition: revert
// reverses it whichever way it goes (a stalled apply goes back to unpatched, a stalled revert
// back to patched: the patch stays), force forces it, wait does nothing.
enum class StallStep { wait, reverse_to_unpatched, reverse_to_patched, force };
StallStep stall_step(StallAction decided, const WatchedTransition& watched);

// The record of the transition being watched, kept in <state>/transition.json so that a
// restarted livepatchd resumes its start time: JSON, and back. A record of another boot is
// no record (the monotonic clock restarts at every boot).
std::string to_transition_record(const WatchedTransition& watched, std::string_view boot_id);
std::optional<WatchedTransition> parse_transition_record(std::string_view text,
                                                         std::string_view boot_id);

} // namespace livepatchd
