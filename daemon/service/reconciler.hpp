// SPDX-License-Identifier: GPL-2.0-only
//
// Reconciler: what to do about each desired patch, given the store, the kernel and the boot.
// Pure: it reads its inputs and returns a plan; applying the plan (loading modules, watching
// transitions, saving the desired state) is the caller's. Run at every start of the daemon,
// so the same rules cover the first start of a boot and a restart after a daemon crash.
//
// The rules, in the order they are checked for each desired patch:
//  1. in the kernel, enabled, no transition           -> already_applied
//  2. in the kernel, in a transition (either way)     -> wait
//  3. not in the store, or unreadable there           -> skip
//  4. built for another kernel release                -> skip
//  5. not applied in this boot yet (boot apply), and
//     a. livepatchd.apply=0 on the kernel command line -> skip
//     b. boot.apply false in the configuration (and no livepatchd.apply=1) -> skip
//     c. the crash-loop guard holds (below; livepatchd.apply=1 overrides) -> skip
//  6. a patch after it in the desired order is in the kernel: applying it now would stack it
//     above that one                                   -> skip
//  7. otherwise                                        -> apply (after unloading a stale
//     module left by an earlier unpatch, if any)
// A skipped patch does not hold back the patches after it: after a kernel upgrade the old
// kernel's patches are skipped while the new kernel's apply.
// Patches in the kernel that are not desired are reported as unmanaged and left alone.
//
// The crash-loop guard, for a patch last applied in an earlier boot B (crash_guard_seconds
// > 0): it holds if the kernel oopsed in B after the apply, or if B neither ran
// crash_guard_seconds past the apply nor shut down cleanly (survived_guard, set by either;
// clean_shutdown_boot_id == B also counts: the files of an older livepatchd have only that).
// It keeps holding at later boots, until the patch is applied again explicitly (Apply resets
// the record).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/boot_info.hpp"
#include "store/desired_state.hpp"
#include "kernel/kernel_view.hpp"
#include "store/patch_store.hpp"

namespace livepatchd {

enum class ActionKind {
    apply,           // load it (the caller applies one patch at a time, in this order)
    already_applied, // nothing to do
    wait,            // a transition of it is in progress; decide again when it ends
    skip,            // not applied now; reason says why and what would change that
    unmanaged,       // in the kernel but not desired: applied outside livepatchd, left alone
};

std::string_view to_string(ActionKind kind);

struct Action {
    ActionKind kind;
    std::string patch;
    std::string reason; // a sentence for the journal and for people; empty for already_applied
    // apply only: the patch's module is still loaded from an earlier unpatch and must be
    // removed before it can be loaded again.
    bool unload_first = false;

    bool operator==(const Action&) const = default;
};

struct ReconcileInput {
    const DesiredState& desired;
    const std::vector<InstalledPatch>& installed;
    const KernelView& kernel;
    std::string kernel_release; // uname -r
    std::string boot_id;        // this boot's
    bool config_boot_apply = true;       // boot.apply
    std::chrono::seconds crash_guard{300}; // boot.crash_guard_seconds; 0: off
    BootFlags boot_flags;                // from /proc/cmdline
};

// One action per desired patch in the desired order, then one per unmanaged kernel patch in
// stack order. An error only when the kernel view cannot be read.
Result<std::vector<Action>> reconcile(const ReconcileInput& input);

} // namespace livepatchd
