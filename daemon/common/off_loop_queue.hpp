// SPDX-License-Identifier: GPL-2.0-only
//
// OffLoopQueue: runs works on one thread of its own, one after the other in the order they were
// posted, and each one's continuation on the sd-event loop after it. For system calls whose cost
// grows with what they act on, out of the loop's control: a SIGCONT to a process of 30,000
// threads wakes each of them inside kill(), 180 ms under emulation, and the loop would serve
// nothing meanwhile. OffLoopWork runs one work at a time; this one keeps an order (a process's
// SIGCONT never overtakes its SIGSTOP).
//
// A timed work (a Batch's, with a Due) waits in the queue until its Due time, which anyone may
// bring forward (lower(), then wake()): a hold's SIGCONT, timed on this thread so that it is
// sent on time whatever the loop is doing. Among the works that are due, the order is the order posted.
//
// A work must not throw and must touch nothing the loop touches but through what it captured;
// its continuation runs on the loop and sees everything the work wrote. The loop hears of the
// works that have run once no timed work is due (a stream of untimed works does not keep it
// waiting), and never of a work without a continuation (a SIGSTOP's), which is destroyed on
// the queue's thread. flush() waits for every work due and runs their continuations now.
// Destroying the queue runs every work still queued at once, due or not (a SIGCONT must not be
// dropped nor wait), not their continuations.
//
// The loop waits for the queue's lock only in wake(), flush() and when the queue is destroyed:
// a thread preempted while it holds it waits for a CPU as long as a storm of new threads lasts
// (221 ms for one at nice +10 at 30,000 threads under emulation, s56). What the loop cannot
// hand over or take at once (works posted, the continuations) it keeps, in order, and tries
// again 1 ms later (or waits, when that cannot be timed; a queue destroyed first runs what was
// kept). wake() waits, so that it is never left for a retry (a loop that is ending runs none):
// it is the signals' queue's, called when holds end early (a stop of livepatchd: a wait there
// is a wait of the stop; its thread, ordinary while it waits out a SIGCONT's storm, may be
// preempted with the lock held). The thread, for its part, wakes the loop (or a flush()) only
// once it has let go of the lock.
#pragma once

#include <systemd/sd-event.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

class OffLoopQueue {
    // When a timed work is due: CLOCK_MONOTONIC µs.
    using DueTime = std::atomic<std::uint64_t>;
    struct Item {
        std::function<void()> work;
        std::function<void()> then;
        std::shared_ptr<DueTime> due; // none: due at once
    };

public:
    // How its thread competes with the loop's for a CPU. below_loop: nice 10 more than the
    // process (each thread has its own nice value on Linux), for works nobody waits on the
    // instant they end (a walk of 30,000 tasks, a file write): when both are runnable, the
    // loop runs first. realtime: SCHED_FIFO priority 2 (RLIMIT_RTPRIO 2 suffices), for the
    // signals, whose timing is the hold's: such a thread wakes on time while thousands of
    // threads woken by a SIGSTOP wait for a CPU, and before the loop, which runs SCHED_FIFO 1
    // during a transition (LoopPriority); as_loop when the kernel refuses (realtime()).
    enum class Priority { as_loop, below_loop, realtime };
    // When a timed work is due: CLOCK_MONOTONIC µs; never_due until someone lowers it.
    using Due = std::shared_ptr<DueTime>;
    static constexpr std::uint64_t never_due = UINT64_MAX;
    static Due make_due() { return std::make_shared<DueTime>(never_due); }
    // Brings due forward to usec (never back: the earliest asked for wins); then wake() the
    // queue whose work it times.
    static void lower(const Due& due, std::uint64_t usec) noexcept;
    // Its thread, and a source on event for the continuations, which the loop's dispatch
    // lines name `label` (a string literal). An error when either cannot be had: the caller
    // then runs its works on the loop.
    static Result<std::unique_ptr<OffLoopQueue>> create(sd_event* event, const char* label,
                                                        Priority priority = Priority::as_loop);
    OffLoopQueue(const OffLoopQueue&) = delete;
    OffLoopQueue& operator=(const OffLoopQueue&) = delete;
    ~OffLoopQueue();

    // Works to post together, in this order: built (which may throw) before any is queued,
    // then queued at once (which cannot fail), so that none is queued without the others.
    class Batch {
    public:
        // A work run once due has come (none: at once; never_due: once lowered), then `then`
        // on the loop.
        void add(Due due, std::function<void()> work, std::function<void()> then);

    private:
        friend class OffLoopQueue;
        std::list<Item> items_;
    };
    // Queues work for the thread, then on the loop; never blocks on a running work. The loop's
    // thread only (as are wake() and flush()).
    void post(std::function<void()> work, std::function<void()> then);
    void post(Batch&& batch) noexcept;
    // A Due of a work of this queue was lowered: the thread looks again. Waits for the lock.
    void wake();
    // Waits until every work due has run, then runs the continuations of all that have run.
    void flush() noexcept;
    // Whether a work is due behind the running one (for a work that would wait on its own).
    bool has_due();
    // Whether a timed work (a Batch's, with a Due) is due behind the running one.
    bool has_timed_due();
    // Whether any work waits behind the running one, due or not.
    bool has_queued();
    // Whether the loop was woken for continuations it has not run yet, or is to try again to
    // take them or hand works over: it is about to dispatch (for a work that must not start
    // while the loop runs). Not while the loop waits in flush(), which runs them only after the
    // works.
    bool loop_woken();
    // Whether the thread runs SCHED_FIFO (Priority::realtime, and the kernel allowed it).
    bool realtime() const noexcept { return realtime_; }
    // For unit tests: called by every queue's thread while it holds the queue's lock, before
    // it waits for work (as a preemption there would: a test holds it); nullptr to remove.
    static void set_holding_hook(void (*hook)()) noexcept;

private:
    OffLoopQueue() = default;
    void serve();
    // The first work due at now in the order posted (any when closing_), or queued_.end();
    // and the earliest time a timed one is due (never_due: none). mutex_ held.
    std::list<Item>::iterator next_due(std::uint64_t now, std::uint64_t& earliest);
    // On the loop: hands outbox_ over to the thread, and with_continuations takes done_ and
    // runs it, if the lock can be had at once (or waited for); else tries again later.
    void hand_over(bool with_continuations) noexcept;
    // Arms retry_ for 1 ms from now; false if it cannot be. disarm_retry(): nothing is owed.
    bool retry_later() noexcept;
    void disarm_retry() noexcept;
    static void run(std::list<Item>& ready) noexcept;
    static int on_done(sd_event_source* source, int fd, std::uint32_t revents,
                       void* userdata) noexcept;
    static int on_retry(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;

    // protects queued_, done_, busy_, closing_, unheard_ (not the Dues), flushing_'s writes
    std::mutex mutex_;
    std::condition_variable changed_; // a work was queued or has run, or closing_ was set
    // Lists: an item moves from one to the other by splicing its node, which cannot fail, so
    // no continuation is lost (its owner would wait for it for ever).
    std::list<Item> queued_;
    std::list<Item> done_; // the works that have run, for their continuations
    bool busy_ = false;                      // the thread runs a work taken off queued_
    bool closing_ = false;                   // the thread ends once queued_ is empty
    bool unheard_ = false;                   // done_ has works the loop was not woken for
    // The loop waits in flush(), which runs the continuations after the works (read without
    // the lock by loop_woken()).
    std::atomic<bool> flushing_ = false;
    // done_fd_ was written (set before the write) and the loop has not read it since (cleared
    // after the read): for loop_woken(), ordered against loop_busy as a poll of the eventfd
    // alone is not.
    std::atomic<bool> woken_ = false;
    // The loop's own (no lock): what it could not hand over or take at once, for retry_.
    std::list<Item> outbox_;          // posted, in order, before anything posted after them
    bool continuations_owed_ = false; // done_fd_ was read, done_ not taken
    std::atomic<bool> retrying_ = false; // retry_ is armed (read by loop_woken())
    const char* label_ = nullptr;            // what runs the continuations, for dispatch lines
    Priority priority_ = Priority::as_loop;  // set before the thread starts
    bool realtime_ = false;                  // set by create(), before any work is posted
    UniqueFd done_fd_; // an eventfd: the thread writes it when a work has run
    std::unique_ptr<sd_event_source, sd_event_source* (*)(sd_event_source*)> source_{
        nullptr, sd_event_source_disable_unref};
    // A one-shot timer for what the loop could not do at once; none: the loop waits for the lock.
    std::unique_ptr<sd_event_source, sd_event_source* (*)(sd_event_source*)> retry_{
        nullptr, sd_event_source_disable_unref};
    std::thread thread_;
};

} // namespace livepatchd
