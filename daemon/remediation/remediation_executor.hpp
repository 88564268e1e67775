// SPDX-License-Identifier: GPL-2.0-only
//
// RemediationExecutor: carries out the stop rung of the ladder. It owns the use of the
// Signaller and the holds: stop_for_a_moment() stops a process and has it continued hold_ms
// after the SIGSTOP was sent. Every held process is continued on every way out: its hold's end,
// a failure to time it (at once), resume_all() (SIGTERM, the loop ending) and the destructor. A
// crash is the one way out it cannot see; recover_stopped() at the next start and
// `livepatchd --continue-stopped` after the service stops cover that.
//
// The signals are sent from a thread of its own (OffLoopQueue), in order, and the hold is timed
// there too: the SIGCONT is a timed work queued behind its SIGSTOP, due hold_ms after it (holds
// of several processes side by side), brought forward by resume_all(). The kernel's work for a
// SIGSTOP or a SIGCONT grows with the process's threads (each is woken), 180 ms for 30,000 under
// emulation, which the event loop would spend serving nothing; and the threads a SIGSTOP wakes
// keep every ordinary thread off the CPU for hundreds of ms more, so that thread runs
// SCHED_FIFO (priority 2, above the loop's 1) when the kernel allows it, and a SIGCONT timed
// by the loop or an ordinary thread would come that much late. The Signaller is used on that
// thread only (on the loop when no thread could be had; the hold is then a timer on the
// loop). After a signal that
// thread waits, up to a hold or 200 ms, until a CPU is free again (or another signal is due),
// and the loop hears of a stop only with its SIGCONT, after that wait: the kernel's storm of
// wakeups would otherwise hold the loop inside that dispatch.
#pragma once

#include <systemd/sd-event.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "common/off_loop_queue.hpp"
#include "common/result.hpp"
#include "remediation/task_signaller.hpp"

namespace livepatchd {

class RemediationExecutor {
public:
    using ReportError = std::function<void(const Error&)>;
    // What came of a SIGSTOP, on the loop once it was sent (or refused), and with a signal
    // thread once its SIGCONT was sent too: an error, or how long the Signaller took (µs).
    using Stopped = std::function<void(const Result<std::uint64_t>&)>;

    RemediationExecutor(sd_event* event, Signaller& signaller, std::chrono::milliseconds hold,
                        ReportError report);
    RemediationExecutor(const RemediationExecutor&) = delete;
    RemediationExecutor& operator=(const RemediationExecutor&) = delete;
    ~RemediationExecutor();

    // SIGSTOP to process pid (if its thread tid is the one that started at thread_start_time),
    // SIGCONT hold later; stopped says how the SIGSTOP went. An error now when pid is held
    // already (stopped is not called then).
    Result<void> stop_for_a_moment(pid_t pid, pid_t tid, std::uint64_t thread_start_time,
                                   Stopped stopped);
    // SIGCONT to every process held now, at once (their holds are cut short).
    void resume_all() noexcept;
    // Records the signaller could not remove at SIGCONT: removed again (each tick).
    void tidy() noexcept;
    // Waits until every signal due has been sent and runs their continuations (tests; the
    // destructor): a hold's SIGCONT not yet due is not waited for (resume_all() makes it due).
    void flush() noexcept;

    // Processes stopped or being stopped, whose SIGCONT is neither asked for early nor known
    // to the loop to have been sent.
    std::size_t holding() const noexcept { return holds_.size(); }

private:
    struct Hold {
        RemediationExecutor* owner = nullptr;
        pid_t pid = 0;
        std::uint64_t id = 0;             // which stop of pid: a late result is not another's
        sd_event_source* timer = nullptr; // without a queue: armed once the SIGSTOP is sent
        // With one: when its SIGCONT's work, queued behind its SIGSTOP's, is due (hold_ms after
        // the SIGSTOP was sent).
        OffLoopQueue::Due due;
    };
    static bool hold_timed_on_loop(const Hold& hold) noexcept { return !hold.due; }
    static int on_timer(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    void on_stopped(pid_t pid, std::uint64_t id, const Result<std::uint64_t>& result,
                    std::uint64_t sent_usec, const Stopped& stopped);
    void resume(pid_t pid) noexcept;
    // The SIGCONT, on the signals' thread (or the loop without one): a failure in error.
    void send_resume(pid_t pid, std::optional<Error>& error);
    // Once: the journal hears that the signal thread lost SCHED_FIFO.
    void said_lost_realtime() noexcept;
    // work on the signal thread, then on the loop (both now, on the loop, without a thread).
    void run(std::function<void()> work, std::function<void()> then);
    // How long the signal's thread may wait for the storm a signal started to pass (µs).
    std::uint64_t storm_wait_usec() const noexcept;

    sd_event* event_;
    Signaller& signaller_;
    std::chrono::milliseconds hold_;
    ReportError report_;
    std::map<pid_t, std::unique_ptr<Hold>> holds_;
    std::uint64_t last_hold_id_ = 0;
    bool closing_ = false; // the destructor runs: continuations report nothing to the owner
    std::unique_ptr<OffLoopQueue> queue_; // none: the signals are sent on the loop
    // queue_, for its works: set before any is posted, and alive while they run (queue_.reset()
    // runs the last ones); null: the signals are sent on the loop, which never waits.
    OffLoopQueue* signal_queue_ = nullptr;
    std::atomic<bool> lost_realtime_ = false; // set on the signals' thread, read on the loop
    bool said_lost_realtime_ = false;
};

} // namespace livepatchd
