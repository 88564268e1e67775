// SPDX-License-Identifier: GPL-2.0-only
//
// PendingListPool: the storage of the lists of pending tasks that the service's looks use,
// kept from one look to the next. At 30,000 pending tasks a look gets a list every few hundred
// ms; under emulation, making a new one (3.6 MB of fresh pages, faulted in one by one) took the
// look's turn 30-66 ms, and destroying the last one (60,000 strings freed) 24-40 ms more. So a
// list the look is done with is given back: its tasks are destroyed a slice at a time, in turns
// of the loop after its timers and the bus, and its storage (faulted in already) makes the
// next list.
#pragma once

#include <systemd/sd-event.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "kernel/patch_control.hpp"

namespace livepatchd {

class PendingListPool {
public:
    // Tasks destroyed per turn of the loop.
    static constexpr std::size_t slice_tasks = 2048;
    // The turns' priority: before the other idle-priority work (a walk of the task iterator
    // queued back to back would otherwise starve them, and a new list would be made for every
    // look), after the timers and the bus. A list takes about 15 short turns.
    static constexpr std::int64_t priority = SD_EVENT_PRIORITY_IDLE - 1;

    // How the heap is trimmed once no list is kept: malloc_trim(0) gives their memory back to
    // the kernel, 79 ms in the kernel after 30,000 tasks' lists under emulation (s57), so the
    // service has it run on its conversions' thread; none (or if it throws): trim_heap() at once.
    using Trim = std::function<void()>;
    explicit PendingListPool(sd_event* event, Trim trim = nullptr) noexcept
        : event_(event), trim_(std::move(trim))
    {
    }
    PendingListPool(const PendingListPool&) = delete;
    PendingListPool& operator=(const PendingListPool&) = delete;
    ~PendingListPool();

    // An empty list with room for n tasks: the storage of a list given back, if one is free
    // and not more than four times too large (a transition that had 30,000 pending tasks and
    // has 10 left does not hold 30,000 tasks' room for the rest of it).
    std::vector<PendingTask> take(std::size_t n);
    // The list's tasks are destroyed later, a slice per turn (at once without a loop); its
    // storage then serves a take(). Only a look of the transition under way gives back.
    void give_back(std::vector<PendingTask> list) noexcept;
    // No storage is kept from now on (the transition is over): what is kept is freed, and the
    // lists still being emptied are freed once empty, the heap then trimmed. The next
    // give_back() keeps again.
    void release() noexcept;
    // malloc_trim(0), behind a fault point (pending-lists-trim); any thread.
    static void trim_heap() noexcept;

    // For tests: lists still being emptied, and whether storage is kept.
    std::size_t emptying() const { return emptying_.size(); }
    std::size_t kept_capacity() const { return spare_.capacity(); }

private:
    static int on_turn(sd_event_source* source, void* userdata) noexcept;
    void empty_a_slice() noexcept;
    void keep(std::vector<PendingTask> empty) noexcept;
    void trim() noexcept;

    sd_event* event_;
    Trim trim_;
    sd_event_source* source_ = nullptr;            // the turns, while a list is emptied
    std::vector<std::vector<PendingTask>> emptying_; // given back, tasks destroyed from the end
    std::vector<PendingTask> spare_;               // empty, its storage for the next take()
    bool keeping_ = false;                         // give_back() since the last release()
};

} // namespace livepatchd
