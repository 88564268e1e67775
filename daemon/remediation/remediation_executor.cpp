// SPDX-License-Identifier: GPL-2.0-only
#include "remediation/remediation_executor.hpp"

#include "common/clock.hpp"
#include "common/dispatch_label.hpp"

#include <time.h>

#include <cerrno>
#include <cstring>

namespace livepatchd {

RemediationExecutor::RemediationExecutor(sd_event* event, Signaller& signaller,
                                         std::chrono::milliseconds hold, ReportError report)
    : event_(sd_event_ref(event)), signaller_(signaller), hold_(hold), report_(std::move(report))
{
}

RemediationExecutor::~RemediationExecutor()
{
    resume_all();
    tidy();
    sd_event_unref(event_);
}

Result<void> RemediationExecutor::stop_for_a_moment(pid_t pid, pid_t tid,
                                                    std::uint64_t thread_start_time)
{
    if (holds_.contains(pid))
        return Error{EALREADY, "process " + std::to_string(pid) + " is held already"};
    if (auto stopped = signaller_.stop(pid, tid, thread_start_time); !stopped)
        return stopped;
    auto hold = std::make_unique<Hold>(Hold{this, pid, nullptr});
    // From the SIGSTOP, not from the loop's wake-up (sd_event_now), which may be long before it
    // when the dispatch that stops did much first: the hold would be cut short.
    const std::uint64_t now = monotonic_usec();
    // Accuracy 1 µs: 0 would mean sd-event's default of 250 ms, five times a 50 ms hold.
    int r = sd_event_add_time(event_, &hold->timer, CLOCK_MONOTONIC,
                              now + static_cast<std::uint64_t>(hold_.count()) * 1000, 1, on_timer,
                              hold.get());
    if (r < 0) {
        // No timer, no hold: continue it at once.
        if (auto resumed = signaller_.resume(pid); !resumed && report_)
            report_(resumed.error());
        return Error{-r, std::string("cannot arm the SIGCONT timer: ") + std::strerror(-r) +
                             "; process " + std::to_string(pid) + " was continued at once"};
    }
    holds_.emplace(pid, std::move(hold));
    return {};
}

int RemediationExecutor::on_timer(sd_event_source*, std::uint64_t, void* userdata) noexcept
{
    label_dispatch("a hold's SIGCONT");
    auto* hold = static_cast<Hold*>(userdata);
    hold->owner->resume(hold->pid); // frees hold
    return 0;
}

void RemediationExecutor::resume(pid_t pid) noexcept
{
    const auto it = holds_.find(pid);
    if (it == holds_.end())
        return;
    sd_event_source_disable_unref(it->second->timer);
    holds_.erase(it);
    try {
        if (auto resumed = signaller_.resume(pid); !resumed && report_)
            report_(resumed.error());
    } catch (...) {
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
        (void)signaller_.forget_resumed();
    } catch (...) {
    }
}

} // namespace livepatchd
