// SPDX-License-Identifier: GPL-2.0-only
#include "common/loop_priority.hpp"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/journal.hpp"

namespace livepatchd {

namespace {

void warn(const std::string& message) noexcept
{
    try {
        journal::log(LogLevel::warning, message);
    } catch (...) {
        // Out of memory for the message: the policy is what the kernel says it is anyway.
    }
}

} // namespace

void LoopPriority::set_realtime(bool on) noexcept
{
    if (!on) {
        refused_ = false; // the next transition asks again
        if (!realtime_)
            return;
        realtime_ = false;
        // Lowering is always allowed, but clearing SCHED_RESET_ON_FORK takes CAP_SYS_NICE
        // (which the unit does not give): then it stays, and only resets a negative nice
        // value in what the loop starts.
        const sched_param ordinary{.sched_priority = 0};
        if (::sched_setscheduler(0, SCHED_OTHER, &ordinary) != 0 &&
            ::sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &ordinary) != 0) {
            const int error = errno;
            warn(std::string("the event loop stays a real-time thread (SCHED_FIFO) after the "
                             "transition: returning to SCHED_OTHER failed: ") +
                 std::strerror(error));
        }
        return;
    }
    if (realtime_ || refused_)
        return;
    const sched_param fifo{.sched_priority = 1};
    if (::sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &fifo) == 0) {
        realtime_ = true;
        return;
    }
    const int error = errno;
    refused_ = true;
    warn(std::string("the event loop runs as an ordinary thread during this transition "
                     "(SCHED_FIFO refused: ") +
         std::strerror(error) +
         "): threads woken by the thousands may keep it from a CPU for hundreds of ms; the "
         "unit's LimitRTPRIO=1 and RestrictRealtime=no allow it");
}

} // namespace livepatchd
