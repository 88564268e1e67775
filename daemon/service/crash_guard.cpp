// SPDX-License-Identifier: GPL-2.0-only
#include "service/crash_guard.hpp"

#include <algorithm>

namespace livepatchd {

void CrashGuard::record_apply(DesiredPatch& patch, std::uint64_t now_realtime,
                              std::uint64_t now_boottime, std::uint64_t oops_count) const
{
    patch.applied_at_usec = now_realtime; // for people (AppliedAt) only
    patch.applied_boot_id = boot_id_;
    patch.applied_boottime_usec = now_boottime;
    patch.applied_oops_count = oops_count;
    patch.survived_guard = false;
    patch.oops_after_apply = false;
}

namespace {
// a + b, or UINT64_MAX: a damaged record must not wrap around into "already survived".
std::uint64_t plus(std::uint64_t a, std::uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
} // namespace

bool CrashGuard::watched(const DesiredPatch& patch) const
{
    return patch.applied_boot_id == boot_id_ && patch.applied_at_usec != 0 &&
           patch.pending == PendingAction::none;
}

void CrashGuard::shut_down_cleanly(DesiredState& state) const
{
    for (DesiredPatch& p : state.patches)
        if (watched(p) && !p.oops_after_apply)
            p.survived_guard = true;
}

bool CrashGuard::update(DesiredState& state, const std::vector<KernelPatch>& in_kernel,
                        std::uint64_t oops_seen, std::uint64_t oops_count,
                        std::uint64_t now_boottime, std::vector<std::string>* oopsed) const
{
    bool changed = false;
    for (DesiredPatch& p : state.patches) {
        if (!watched(p))
            continue;
        if (p.applied_boottime_usec == 0) {
            // Written by a livepatchd that kept no boot time: the window starts now.
            p.applied_boottime_usec = now_boottime;
            changed = true;
        }
        // Both bounds count: the guard's own, which a failed save of its marks keeps back
        // (an apply after that oops must not take it), and the patch's, which a file of an
        // older livepatchd lacks (0).
        if (oops_count > std::max(oops_seen, p.applied_oops_count) && !p.oops_after_apply) {
            p.oops_after_apply = true;
            changed = true;
            if (oopsed)
                oopsed->push_back(p.name);
        }
        const bool applied = std::any_of(in_kernel.begin(), in_kernel.end(),
                                         [&](const KernelPatch& k) {
                                             return k.name == p.name && k.applied();
                                         });
        if (!p.survived_guard && !p.oops_after_apply && window_usec_ > 0 && applied &&
            now_boottime >= plus(p.applied_boottime_usec, window_usec_)) {
            p.survived_guard = true;
            changed = true;
        }
    }
    return changed;
}

std::optional<std::uint64_t> CrashGuard::next_deadline(const DesiredState& state,
                                                       std::uint64_t now_boottime) const
{
    if (window_usec_ == 0)
        return std::nullopt;
    std::optional<std::uint64_t> next;
    for (const DesiredPatch& p : state.patches) {
        const std::uint64_t deadline = plus(p.applied_boottime_usec, window_usec_);
        if (watched(p) && !p.survived_guard && !p.oops_after_apply && deadline > now_boottime)
            next = std::min(next.value_or(UINT64_MAX), deadline);
    }
    return next;
}

} // namespace livepatchd
