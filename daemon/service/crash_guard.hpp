// SPDX-License-Identifier: GPL-2.0-only
//
// CrashGuard: the crash-loop guard's records for the patches applied in this boot
// (DesiredPatch::survived_guard, oops_after_apply), kept on CLOCK_BOOTTIME: a patch has
// survived once crash_guard_seconds of this boot (suspend included) went by after its apply
// with no oops and it still applied, or once the boot shut down cleanly with no oops. The
// wall clock plays no part: an NTP step at boot, just when the boot apply runs, cannot mark a
// patch as having survived. Pure: the service passes the time and the kernel's state.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernel/kernel_view.hpp"
#include "store/desired_state.hpp"

namespace livepatchd {

class CrashGuard {
public:
    CrashGuard(std::chrono::seconds window, std::string boot_id)
        : window_usec_(static_cast<std::uint64_t>(window.count()) * 1'000'000),
          boot_id_(std::move(boot_id))
    {
    }

    // The record of an apply now (before the module loads), with the kernel's oops count
    // now: an oops up to it came before the apply.
    void record_apply(DesiredPatch& patch, std::uint64_t now_realtime, std::uint64_t now_boottime,
                      std::uint64_t oops_count) const;

    // Updates the records of state for this boot: oops_after_apply when the kernel's oops
    // count is past both the oopses already accounted for (oops_seen) and the patch's own
    // count at its apply, survived_guard when the window passed and the patch is applied in
    // the kernel. The names newly marked oopsed go to *oopsed. True if changed.
    bool update(DesiredState& state, const std::vector<KernelPatch>& in_kernel,
                std::uint64_t oops_seen, std::uint64_t oops_count, std::uint64_t now_boottime,
                std::vector<std::string>* oopsed) const;

    // A clean shutdown of this boot (systemd's): the patches applied in it with no oops
    // survived the guard, however soon it came; that is kept with each patch, where a later
    // boot's clean shutdown cannot overwrite it.
    void shut_down_cleanly(DesiredState& state) const;

    // When update() next has something to do (CLOCK_BOOTTIME), after now, or nullopt. A
    // deadline that has passed without the patch applied is no deadline: the patch cannot
    // survive in this boot any more, and a timer armed on it would fire for ever.
    std::optional<std::uint64_t> next_deadline(const DesiredState& state,
                                               std::uint64_t now_boottime) const;

private:
    bool watched(const DesiredPatch& patch) const;

    std::uint64_t window_usec_;
    std::string boot_id_;
};

} // namespace livepatchd
