// SPDX-License-Identifier: GPL-2.0-only
//
// The clocks livepatchd reads, and what each is for:
//  - CLOCK_MONOTONIC: every duration and deadline of the running service (transition
//    elapsed time, stall timeout, remediation rungs, hold timers). Never steps.
//  - CLOCK_BOOTTIME: the crash-loop guard's window, which must also count time suspended and
//    be comparable across restarts of the daemon within one boot.
//  - CLOCK_REALTIME: only for showing people when something happened (InstalledAt,
//    AppliedAt, TransitionStartedUSec). No decision is ever made from it: an NTP step or
//    `date -s` may move it by hours in either direction.
#pragma once

#include <time.h>

#include <cstdint>

namespace livepatchd {

inline std::uint64_t clock_usec(clockid_t clock) noexcept
{
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

inline std::uint64_t realtime_usec() noexcept { return clock_usec(CLOCK_REALTIME); }
inline std::uint64_t monotonic_usec() noexcept { return clock_usec(CLOCK_MONOTONIC); }
inline std::uint64_t boottime_usec() noexcept { return clock_usec(CLOCK_BOOTTIME); }

// A later minus an earlier reading of one clock, 0 when "later" is not later.
inline std::uint64_t usec_since(std::uint64_t earlier, std::uint64_t now) noexcept
{
    return now > earlier ? now - earlier : 0;
}

} // namespace livepatchd
