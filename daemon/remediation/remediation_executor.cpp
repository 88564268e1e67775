// SPDX-License-Identifier: GPL-2.0-only
#include "remediation/remediation_executor.hpp"

#include "common/clock.hpp"
#include "common/dispatch_label.hpp"
#include "common/journal.hpp"
#include "common/loop_activity.hpp"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace livepatchd {

namespace {

// A SIGSTOP or SIGCONT to a process of thousands of threads starts a storm in the kernel: each
// thread is woken under the process's siglock, interrupts off, and each then takes that lock to
// stop, or to go back to sleep. For a while no CPU runs anything else (160 ms for 30,000
// threads under emulation), and the loop, woken now for the signal's continuation, would spend
// that while inside its dispatch, waiting for a CPU. The signal's thread waits it out instead:
// until a 1 ms sleep of its own ends on time (a CPU is free again), another signal is due
// (whose kill() would wait for a CPU as long), or `until`. A SCHED_FIFO thread's sleep ends
// late only while interrupts are off on every CPU (the first part of a SIGSTOP's storm, when
// the process's first receiver wakes all its threads): to see the rest, see OrdinaryPolicy.
void wait_for_a_free_cpu(std::uint64_t until, OffLoopQueue& queue)
{
    for (std::uint64_t before = monotonic_usec(); before < until && !queue.has_due();
         before = monotonic_usec()) {
        const timespec one_ms{0, 1'000'000};
        ::nanosleep(&one_ms, nullptr);
        if (monotonic_usec() - before < 3'000)
            return;
    }
}

// A SIGSTOP to thousands of threads keeps every CPU busy with interrupts off for a while (the
// process's first receiver wakes all its threads under its signal lock; the woken spin on it):
// a loop inside a dispatch then stays there as long (190 ms for 30,000 threads under
// emulation). So the SIGSTOP waits, in 1 ms sleeps, until the loop waits in its poll with
// nothing to do (the dispatch that asked for it over, what was ready since, and the ends of the
// signals before it, for which this queue woke it), for at most
// 500 ms, until a hold's SIGCONT is due (which then waits for this SIGSTOP's kill()), or until
// its own hold was ended (resume_all(): then it is not sent). The loop may still wake between
// the look and the storm: a smaller window than any dispatch.
void wait_for_the_loop_to_wait(OffLoopQueue& queue, const OffLoopQueue::Due& own)
{
    const std::uint64_t until = monotonic_usec() + 500'000;
    // loop_woken() first: the loop sets loop_busy before it dispatches (and reads the queue's
    // eventfd in that dispatch), so a wake-up seen read means loop_busy is seen set, or
    // cleared again by the end of that dispatch.
    // And not while another queue has the loop try its lock again: the loop waits in its
    // poll, but for a timer due within 1 ms.
    while ((queue.loop_woken() || loop_busy.load(std::memory_order_acquire) ||
            loop_retrying.load() > 0) &&
           monotonic_usec() < until &&
           own->load() != 0 && !queue.has_timed_due()) {
        const timespec one_ms{0, 1'000'000};
        ::nanosleep(&one_ms, nullptr);
    }
}

// The calling thread as an ordinary one (SCHED_OTHER) while it lives, if it was real-time: for
// the wait after a SIGCONT, whose storm is of ordinary threads woken at once, which a real-time
// thread's sleep does not wait behind. Restoring SCHED_FIFO takes RLIMIT_RTPRIO (the unit's
// LimitRTPRIO=2); refused, the thread stays ordinary, its holds timed as an ordinary thread's,
// and the loop says so.
class OrdinaryPolicy {
public:
    OrdinaryPolicy() noexcept
    {
        if (::pthread_getschedparam(::pthread_self(), &policy_, &param_) != 0 ||
            policy_ == SCHED_OTHER)
            return;
        const sched_param ordinary{.sched_priority = 0};
        lowered_ = ::pthread_setschedparam(::pthread_self(), SCHED_OTHER, &ordinary) == 0;
    }
    OrdinaryPolicy(const OrdinaryPolicy&) = delete;
    OrdinaryPolicy& operator=(const OrdinaryPolicy&) = delete;
    ~OrdinaryPolicy() { (void)restore(); }
    // The policy it had again; false when the kernel refused.
    bool restore() noexcept
    {
        if (!lowered_)
            return true;
        lowered_ = false;
        return ::pthread_setschedparam(::pthread_self(), policy_, &param_) == 0;
    }

private:
    int policy_ = SCHED_OTHER;
    sched_param param_{};
    bool lowered_ = false;
};

// At most this long, or a hold if shorter: a busy machine's late sleeps look like a storm, and
// the wait delays the signals queued behind (an ordinary thread's, after a SIGCONT, notices
// one due late) and what the loop hears of them.
constexpr std::uint64_t storm_wait_max_usec = 200'000;

} // namespace

RemediationExecutor::RemediationExecutor(sd_event* event, Signaller& signaller,
                                         std::chrono::milliseconds hold, ReportError report)
    : event_(sd_event_ref(event)), signaller_(signaller), hold_(hold), report_(std::move(report))
{
    if (auto queue = OffLoopQueue::create(event, "a stop or continue signal's end",
                                          OffLoopQueue::Priority::realtime);
        queue) {
        queue_ = std::move(*queue);
        signal_queue_ = queue_.get();
        if (!queue_->realtime())
            journal::log(LogLevel::warning,
                         "the stop rung's holds are timed by an ordinary thread (SCHED_FIFO "
                         "refused): a process of thousands of threads may be held hundreds of "
                         "ms past hold_ms; the unit's LimitRTPRIO=2 and RestrictRealtime=no "
                         "allow it");
    } else {
        journal::log(LogLevel::warning, "the stop rung's signals are sent from the event loop: " +
                                            queue.error().message);
    }
}

RemediationExecutor::~RemediationExecutor()
{
    closing_ = true;
    resume_all();
    tidy();
    flush();
    queue_.reset();
    sd_event_unref(event_);
}

void RemediationExecutor::run(std::function<void()> work, std::function<void()> then)
{
    if (queue_) {
        queue_->post(std::move(work), std::move(then));
        return;
    }
    // As on the queue's thread and loop: neither throws out (the work catches its own).
    work();
    try {
        if (then)
            then();
    } catch (...) {
    }
}

std::uint64_t RemediationExecutor::storm_wait_usec() const noexcept
{
    return std::min(static_cast<std::uint64_t>(hold_.count()) * 1000, storm_wait_max_usec);
}

void RemediationExecutor::flush() noexcept
{
    if (queue_)
        queue_->flush();
}

Result<void> RemediationExecutor::stop_for_a_moment(pid_t pid, pid_t tid,
                                                    std::uint64_t thread_start_time,
                                                    Stopped stopped)
{
    if (holds_.contains(pid))
        return Error{EALREADY, "process " + std::to_string(pid) + " is held already"};
    struct Outcome {
        std::optional<Result<std::uint64_t>> result;
        std::uint64_t sent_usec = 0;
    };
    const std::uint64_t id = ++last_hold_id_;
    try {
        auto outcome = std::make_shared<Outcome>();
        // With a queue, the SIGCONT waits on it for its Due, which the SIGSTOP sets.
        OffLoopQueue::Due due = queue_ ? OffLoopQueue::make_due() : nullptr;
        const std::uint64_t hold_usec = static_cast<std::uint64_t>(hold_.count()) * 1000;
        auto work = [this, outcome, due, hold_usec, pid, tid, thread_start_time] {
            try {
                if (signal_queue_ && due) {
                    wait_for_the_loop_to_wait(*signal_queue_, due);
                    // Its hold ended before it began (resume_all(), SIGTERM): not stopped.
                    if (due->load() == 0) {
                        outcome->result.emplace(
                            Error{ECANCELED, "process " + std::to_string(pid) +
                                                 " was not stopped: its hold was ended first"});
                        return;
                    }
                }
                const std::uint64_t start = monotonic_usec();
                auto done = signaller_.stop(pid, tid, thread_start_time);
                if (done) {
                    outcome->sent_usec = *done;
                    outcome->result.emplace(monotonic_usec() - start);
                } else {
                    outcome->result.emplace(std::move(done).error());
                }
                // From the SIGSTOP's sending, not from now: kill() may return long after it.
                // Not stopped: its SIGCONT's work runs at once, and finds nothing to continue.
                if (due)
                    OffLoopQueue::lower(due, done ? *done + hold_usec : 0);
#ifdef LIVEPATCHD_FAULT_INJECTION
                // tests/vm: a crash between SIGSTOP and SIGCONT, which the unit's ExecStopPost
                // or the next start must repair. Here, not on the loop: the loop hears of the
                // stop after the SIGCONT.
                if (done && std::getenv("LIVEPATCHD_FAULT_KILL_AFTER_STOP"))
                    ::raise(SIGKILL);
#endif
                if (done && signal_queue_)
                    wait_for_a_free_cpu(outcome->sent_usec + storm_wait_usec(), *signal_queue_);
            } catch (...) {
                // Out of memory, maybe after the SIGSTOP: its record is on disk, and the
                // SIGCONT's work (or else the next start) continues the process.
                if (due)
                    OffLoopQueue::lower(due, 0);
                outcome->result.emplace(Error{ENOMEM, "stopping process " + std::to_string(pid) +
                                                          " failed: out of memory"});
            }
        };
        auto then = [this, outcome, pid, id, stopped = std::move(stopped)] {
            on_stopped(pid, id, *outcome->result, outcome->sent_usec, stopped);
        };
        auto hold = std::make_unique<Hold>(Hold{this, pid, id, nullptr, due});
        if (!due) {
            holds_.emplace(pid, std::move(hold));
            try {
                run(std::move(work), std::move(then));
            } catch (...) {
                holds_.erase(pid);
                throw;
            }
            return {};
        }
        // The SIGSTOP, its SIGCONT behind it: queued together or not at all. The loop hears
        // of both once the SIGCONT went out and its storm passed (or storm_wait_usec() did):
        // woken as soon as the SIGSTOP is sent, it would dispatch inside the storm of wakeups
        // the SIGSTOP sets off, and stay there as long (387 ms at 30,000 threads, emulated).
        auto error = std::make_shared<std::optional<Error>>();
        OffLoopQueue::Batch batch;
        batch.add(nullptr, std::move(work), nullptr);
        batch.add(
            due, [this, error, pid] { send_resume(pid, *error); },
            [this, error, pid, id, outcome, then = std::move(then)] {
                // Empty only if the SIGSTOP's work failed even to say so (no memory for its
                // error): nothing to report then.
                if (outcome->result)
                    then();
                if (const auto it = holds_.find(pid); it != holds_.end() && it->second->id == id)
                    holds_.erase(it);
                if (*error && report_)
                    report_(**error);
                said_lost_realtime();
            });
        holds_.emplace(pid, std::move(hold));
        queue_->post(std::move(batch));
    } catch (...) {
        return Error{ENOMEM, "cannot ask for the SIGSTOP of process " + std::to_string(pid) +
                                 ": out of memory"};
    }
    return {};
}

void RemediationExecutor::on_stopped(pid_t pid, std::uint64_t id,
                                     const Result<std::uint64_t>& result, std::uint64_t sent_usec,
                                     const Stopped& stopped)
{
    if (closing_)
        return; // resume_all() asked for its SIGCONT, if it was stopped
    // Not found, or another stop's: resume_all() ran meanwhile and asked for this one's SIGCONT
    // after its SIGSTOP.
    const auto it = holds_.find(pid);
    if (it != holds_.end() && it->second->id == id) {
        if (!result) {
            holds_.erase(it);
        } else if (!hold_timed_on_loop(*it->second)) {
            // Its SIGCONT is timed on the signals' thread.
        } else {
            // From the SIGSTOP, not from now: the continuation may run long after it.
            // Accuracy 1 µs: 0 would mean sd-event's default of 250 ms, five times a 50 ms hold.
            Hold* hold = it->second.get();
            const int r = sd_event_add_time(
                event_, &hold->timer, CLOCK_MONOTONIC,
                sent_usec + static_cast<std::uint64_t>(hold_.count()) * 1000, 1, on_timer, hold);
            if (r < 0) {
                // No timer, no hold: continue it at once.
                hold->timer = nullptr;
                resume(pid);
                if (report_)
                    report_(Error{-r, std::string("cannot arm the SIGCONT timer: ") +
                                          std::strerror(-r) + "; process " + std::to_string(pid) +
                                          " is continued at once"});
            }
        }
    }
    if (stopped)
        stopped(result);
}

int RemediationExecutor::on_timer(sd_event_source*, std::uint64_t, void* userdata) noexcept
{
    label_dispatch("a hold's SIGCONT");
    auto* hold = static_cast<Hold*>(userdata);
    hold->owner->resume(hold->pid); // frees hold
    return 0;
}

void RemediationExecutor::send_resume(pid_t pid, std::optional<Error>& error)
{
    // ENOENT: its SIGSTOP, queued before, failed (and was reported): not stopped.
    auto resumed = signaller_.resume(pid);
    if (!resumed && resumed.error().errnum != ENOENT)
        error = resumed.error();
    if (resumed && signal_queue_) {
        // As an ordinary thread only when no other signal waits: the next may be due during
        // the wait, and an ordinary thread would send it when the storm is over.
        std::optional<OrdinaryPolicy> ordinary;
        if (!signal_queue_->has_queued())
            ordinary.emplace();
        wait_for_a_free_cpu(monotonic_usec() + storm_wait_usec(), *signal_queue_);
        if (ordinary && !ordinary->restore())
            lost_realtime_ = true;
    }
}

void RemediationExecutor::said_lost_realtime() noexcept
{
    if (!lost_realtime_ || said_lost_realtime_ || closing_)
        return;
    said_lost_realtime_ = true;
    journal::log(LogLevel::warning,
                 "the stop rung's signal thread could not return to SCHED_FIFO: its holds are "
                 "timed by an ordinary thread from now on (is LimitRTPRIO=2 still set?)");
}

void RemediationExecutor::resume(pid_t pid) noexcept
{
    const auto it = holds_.find(pid);
    if (it == holds_.end())
        return;
    if (!hold_timed_on_loop(*it->second)) {
        // Its SIGCONT's work, queued behind its SIGSTOP's, is due now.
        OffLoopQueue::lower(it->second->due, 0);
        holds_.erase(it);
        try {
            queue_->wake();
        } catch (...) {
            // std::mutex::lock failing: the thread looks again after its next work.
        }
        return;
    }
    sd_event_source_disable_unref(it->second->timer);
    holds_.erase(it);
    try {
        auto error = std::make_shared<std::optional<Error>>();
        run([this, error, pid] { send_resume(pid, *error); },
            [this, error] {
                if (*error && report_)
                    report_(**error);
            });
    } catch (...) {
        // Out of memory for the closures: the record stays, and the next start continues it.
    }
}

void RemediationExecutor::resume_all() noexcept
{
    while (!holds_.empty())
        resume(holds_.begin()->first);
}

void RemediationExecutor::tidy() noexcept
{
    try {
        run([this] { (void)signaller_.forget_resumed(); }, nullptr);
    } catch (...) {
    }
}

} // namespace livepatchd
