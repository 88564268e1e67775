// SPDX-License-Identifier: GPL-2.0-only
//
// PendingTaskLister: PendingTaskTracker's walks, on the event loop, for whoever asks. A walk of
// the kernel's task list at 30,000 pending tasks takes the kernel seconds under emulation; the
// loop that holds the holds' SIGCONT timers, the bus and the watchdog must not stop that long.
// So a walk is read a slice at a time (at most slice_usec per turn of the loop, at the idle
// priority: after the timers and the bus), its listeners are called a turn each, and one walk
// serves every request made before it started. Walks run one at a time (the
// tracker's stack selection belongs to the walk).
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "bpf/pending_task_tracker.hpp"
#include "common/result.hpp"

namespace livepatchd {

class PendingTaskLister {
public:
    using Done = std::function<void(Result<std::vector<TrackedTask>>)>;
    static constexpr std::uint64_t slice_usec = 10'000;

    PendingTaskLister(sd_event* event, const PendingTaskTracker& tracker) noexcept
        : event_(event), tracker_(tracker) {}
    PendingTaskLister(const PendingTaskLister&) = delete;
    PendingTaskLister& operator=(const PendingTaskLister&) = delete;
    ~PendingTaskLister(); // requests not answered yet are dropped, their done never called

    // The tasks (with the stacks asked for) of a walk that starts after this call: done runs
    // later, from the loop, never from inside list(). Without a loop to run on, at once.
    // Stacks of some tids (StackSelection::of) come with those tasks only.
    void list(StackSelection stacks, Done done);
    // Whether a walk runs or waits to.
    bool busy() const { return walk_.has_value() || read_.has_value() || !queued_.empty(); }

private:
    struct Request {
        StackSelection stacks;
        Done done;
    };
    static bool selective(const Request& request);
    static int on_turn(sd_event_source* source, void* userdata) noexcept;
    void turn();
    void start();
    void answer_next();

    sd_event* event_;
    const PendingTaskTracker& tracker_;
    sd_event_source* source_ = nullptr; // the walk's turns, while a walk runs or waits
    std::optional<PendingTaskTracker::Walk> walk_;
    // A walk's tasks (or why there are none), for its listeners, one a turn.
    std::optional<Result<std::vector<TrackedTask>>> read_;
    std::vector<Request> serving_; // what the walk under way answers
    std::vector<Request> queued_;  // what the next walk answers
    std::size_t expected_ = 0;     // room the next walk makes at once: the last walk's count
    bool only_selected_ = false;   // the walk under way keeps the selected tasks only
};

} // namespace livepatchd
