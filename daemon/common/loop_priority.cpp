// SPDX-License-Identifier: GPL-2.0-only
#include "common/loop_priority.hpp"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/journal.hpp"

namespace livepatchd {

namespace {

void warn(const char* what, int error) noexcept
{
    try {
        journal::log(LogLevel::warning, std::string(what) + std::strerror(error));
    } catch (...) {
        // Out of memory for the message: the policy is what the kernel says it is anyway.
    }
}

} // namespace

void LoopPriority::set_wanted(bool on) noexcept
{
    if (!on)
        refused_ = false; // the next transition asks again
    else if (!wanted_)
        cannot_lower_ = false; // and tries to lower it again at its end
    wanted_ = on;
    apply();
}

void LoopPriority::rested() noexcept
{
    tired_ = false;
    apply();
}

void LoopPriority::busy_for(std::uint64_t busy_usec) noexcept
{
    if (busy_usec <= real_time_stretch_usec || tired_)
        return;
    tired_ = true;
    apply();
}

void LoopPriority::apply() noexcept
{
    const bool want = wanted_ && !tired_;
    if (want == realtime_)
        return;
    if (!want) {
        if (cannot_lower_)
            return;
        // Lowering is always allowed. SCHED_RESET_ON_FORK stays (clearing it takes
        // CAP_SYS_NICE, which the unit does not give): for an ordinary thread it only resets a
        // negative nice value in what the loop starts. Refused all the same (an LSM): still
        // real-time, said, and tried again at the next transition's end only.
        const sched_param ordinary{.sched_priority = 0};
        if (::sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &ordinary) == 0) {
            realtime_ = false;
            return;
        }
        cannot_lower_ = true;
        warn("the event loop stays a real-time thread (SCHED_FIFO) until the next transition's "
             "end: returning to SCHED_OTHER failed: ",
             errno);
        return;
    }
    if (refused_)
        return;
    const sched_param fifo{.sched_priority = priority};
    if (::sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &fifo) == 0) {
        realtime_ = true;
        return;
    }
    refused_ = true;
    warn("the event loop runs as an ordinary thread during this transition: threads woken by "
         "the thousands may keep it from a CPU for hundreds of ms (the unit's LimitRTPRIO=2 and "
         "RestrictRealtime=no allow SCHED_FIFO); it was refused: ",
         errno);
}

} // namespace livepatchd
