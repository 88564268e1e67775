// SPDX-License-Identifier: GPL-2.0-only
//
// PendingTaskLister: PendingTaskTracker's walks, for whoever asks on the event loop. A walk of
// the kernel's task list at 30,000 pending tasks takes the kernel seconds under emulation; the
// loop that holds the holds' SIGCONT timers, the bus and the watchdog must not stop that long.
// So a walk is read on a thread of its own, and its listeners are called on the loop, a turn
// each, at the idle priority (after the timers and the bus); one walk serves every request made
// before it started. Walks run one at a time (the tracker's stack selection belongs to the
// walk). Without that thread, the loop reads a slice at a time (slice_usec a turn); a slice
// took up to 141 ms at 10,000 pending tasks under emulation, most of it in the kernel.
#pragma once

#include <systemd/sd-event.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "bpf/pending_task_tracker.hpp"
#include "common/off_loop_queue.hpp"
#include "common/result.hpp"

namespace livepatchd {

class PendingTaskLister {
public:
    using Done = std::function<void(Result<std::vector<TrackedTask>>)>;
    static constexpr std::uint64_t slice_usec = 10'000;

    PendingTaskLister(sd_event* event, const PendingTaskTracker& tracker) noexcept;
    PendingTaskLister(const PendingTaskLister&) = delete;
    PendingTaskLister& operator=(const PendingTaskLister&) = delete;
    // Requests not answered yet are dropped, their done never called; a walk being read stops
    // at its next read (a slice at most).
    ~PendingTaskLister();

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
    void read_off_loop();
    void read(Result<bool> ended); // a read of walk_ returned
    void answer_next();
    void abandon() noexcept; // out of memory: the walk ends, its requests told so

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
    // walk_ is read there, from its start to its end; the loop leaves walk_ alone meanwhile.
    bool reading_ = false;
    std::atomic<bool> closing_{false}; // the destructor runs: the reader stops reading
    // Last, so that it goes (and waits for its thread) before what its work touches.
    std::unique_ptr<OffLoopQueue> reader_;
};

} // namespace livepatchd
