// SPDX-License-Identifier: GPL-2.0-only
//
// OffLoopQueue: runs works on one thread of its own, one after the other in the order they were
// posted, and each one's continuation on the sd-event loop after it. For system calls whose cost
// grows with what they act on, out of the loop's control: a SIGCONT to a process of 30,000
// threads wakes each of them inside kill(), 180 ms under emulation, and the loop would serve
// nothing meanwhile. OffLoopWork runs one work at a time; this one keeps an order (a process's
// SIGCONT never overtakes its SIGSTOP).
//
// A work must not throw and must touch nothing the loop touches but through what it captured;
// its continuation runs on the loop and sees everything the work wrote. flush() waits for every
// work posted and runs their continuations now. Destroying the queue runs the works still
// queued (a SIGCONT must not be dropped), not their continuations.
#pragma once

#include <systemd/sd-event.h>

#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

class OffLoopQueue {
public:
    // How its thread competes with the loop's for a CPU. below_loop: nice 10 more than the
    // process (each thread has its own nice value on Linux), for works nobody waits on the
    // instant they end (a walk of 30,000 tasks, a file write): when both are runnable, the
    // loop runs first. as_loop for the signals, whose timing is the hold's.
    enum class Priority { as_loop, below_loop };
    // Its thread, and a source on event for the continuations, which the loop's dispatch
    // lines name `label` (a string literal). An error when either cannot be had: the caller
    // then runs its works on the loop.
    static Result<std::unique_ptr<OffLoopQueue>> create(sd_event* event, const char* label,
                                                        Priority priority = Priority::as_loop);
    OffLoopQueue(const OffLoopQueue&) = delete;
    OffLoopQueue& operator=(const OffLoopQueue&) = delete;
    ~OffLoopQueue();

    // Queues work for the thread, then on the loop; never blocks on a running work.
    void post(std::function<void()> work, std::function<void()> then);
    // Waits until every work posted so far has run, then runs their continuations, in order.
    void flush() noexcept;
    // Whether works wait behind the running one (for a work that would wait on its own).
    bool has_queued();

private:
    struct Item {
        std::function<void()> work;
        std::function<void()> then;
    };
    OffLoopQueue() = default;
    void serve();
    void run_continuations() noexcept;
    static int on_done(sd_event_source* source, int fd, std::uint32_t revents,
                       void* userdata) noexcept;

    std::mutex mutex_; // protects queued_, done_, busy_, closing_
    std::condition_variable changed_; // a work was queued or has run, or closing_ was set
    // Lists: an item moves from one to the other by splicing its node, which cannot fail, so
    // no continuation is lost (its owner would wait for it for ever).
    std::list<Item> queued_;
    std::list<Item> done_; // the works that have run, for their continuations
    bool busy_ = false;                      // the thread runs a work taken off queued_
    bool closing_ = false;                   // the thread ends once queued_ is empty
    const char* label_ = nullptr;            // what runs the continuations, for dispatch lines
    Priority priority_ = Priority::as_loop;  // set before the thread starts
    UniqueFd done_fd_; // an eventfd: the thread writes it when a work has run
    std::unique_ptr<sd_event_source, sd_event_source* (*)(sd_event_source*)> source_{
        nullptr, sd_event_source_disable_unref};
    std::thread thread_;
};

} // namespace livepatchd
