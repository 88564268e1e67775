// SPDX-License-Identifier: GPL-2.0-only
//
// RemediationExecutor: carries out the stop rung of the ladder. It owns the Signaller and the
// hold timers (sd-event, CLOCK_MONOTONIC): stop_for_a_moment() stops a process and arms its
// SIGCONT hold_ms later. Every held process is continued on every way out: its timer, a
// failure to arm the timer (at once), resume_all() (SIGTERM, the loop ending) and the
// destructor. A crash is the one way out it cannot see; recover_stopped() at the next start
// and `livepatchd --continue-stopped` after the service stops cover that.
#pragma once

#include <systemd/sd-event.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "common/result.hpp"
#include "remediation/task_signaller.hpp"

namespace livepatchd {

class RemediationExecutor {
public:
    using ReportError = std::function<void(const Error&)>;

    RemediationExecutor(sd_event* event, Signaller& signaller, std::chrono::milliseconds hold,
                        ReportError report);
    RemediationExecutor(const RemediationExecutor&) = delete;
    RemediationExecutor& operator=(const RemediationExecutor&) = delete;
    ~RemediationExecutor();

    // SIGSTOP to process pid now (if its thread tid is the one that started at
    // thread_start_time), SIGCONT hold later.
    Result<void> stop_for_a_moment(pid_t pid, pid_t tid, std::uint64_t thread_start_time);
    // SIGCONT to every process held now; their timers are cancelled.
    void resume_all() noexcept;
    // Records the signaller could not remove at SIGCONT: removed again (each tick).
    void tidy() noexcept;

    std::size_t holding() const noexcept { return holds_.size(); }

private:
    struct Hold {
        RemediationExecutor* owner = nullptr;
        pid_t pid = 0;
        sd_event_source* timer = nullptr;
    };
    static int on_timer(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    void resume(pid_t pid) noexcept;

    sd_event* event_;
    Signaller& signaller_;
    std::chrono::milliseconds hold_;
    ReportError report_;
    std::map<pid_t, std::unique_ptr<Hold>> holds_;
};

} // namespace livepatchd
