// SPDX-License-Identifier: GPL-2.0-only
//
// What the service reports about patches and the current transition: one view built from the
// store, the desired state and the kernel, so that ListPatches, the Patch objects' properties
// and (later) livepatchctl --json all say the same thing. The words are the D-Bus API's
// (docs/dbus-api.md).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "store/desired_state.hpp"
#include "kernel/kernel_view.hpp"
#include "store/patch_store.hpp"

namespace livepatchd {

enum class PatchState {
    installed, // in the store, not wanted
    skipped,   // wanted, not applied: the boot apply held it back (skip_reason says why)
    applying,  // in a transition to patched
    applied,   // patched, transition complete
    reverting, // in a transition to unpatched
};

std::string_view to_string(PatchState state);

struct PatchFunction {
    std::string object;   // "vmlinux" or a module
    std::string function;
    std::uint32_t sympos = 1;
    bool operator==(const PatchFunction&) const = default;
};

struct PatchStatus {
    std::string name;
    PatchState state = PatchState::installed;
    std::string skip_reason; // skipped only
    bool enabled = false;    // the kernel's view; false when not loaded
    bool transition = false;
    bool replace = false;
    std::uint32_t stack_order = 0; // 0 when not loaded
    std::vector<PatchFunction> functions; // known while loaded
    std::uint64_t installed_at_usec = 0;  // 0: not in the store (applied outside livepatchd)
    std::uint64_t applied_at_usec = 0;    // 0: not applied by livepatchd
    bool forced = false;
    std::string built_for;
    std::string sha256;
    // From the store: the objects whose non-exported symbols the patch references.
    std::vector<LivepatchObject> livepatch_objects;

    bool operator==(const PatchStatus&) const = default;
};

// What the patches' states are made of outside livepatchd's memory: the store's records and
// sysfs. Either may keep its reader waiting: read off the loop, made into states on it (with the
// desired state, which only the loop changes).
struct PatchReads {
    std::vector<InstalledPatch> installed;
    std::vector<KernelPatch> in_kernel;
};

// Every patch in the store or in the kernel, by name. skip_reasons: from the last
// reconciliation, by patch; forced: the patches whose transition was forced in this boot.
std::vector<PatchStatus> collect_patch_status(
    const std::vector<InstalledPatch>& installed, const DesiredState& desired,
    const std::vector<KernelPatch>& in_kernel,
    const std::map<std::string, std::string, std::less<>>& skip_reasons,
    const std::set<std::string, std::less<>>& forced);

enum class ServiceState {
    idle,          // no transition
    transitioning, // a transition is under way
    stalled,       // a transition has run past transition.stall_timeout_ms
    error,         // the last action failed in a way that needs the admin (see the journal)
};

std::string_view to_string(ServiceState state);

struct TransitionStatus {
    ServiceState state = ServiceState::idle;
    std::string patch;             // "" when idle
    std::string target;            // "patched", "unpatched", or "" when idle
    std::uint64_t started_usec = 0; // CLOCK_REALTIME; 0 when unknown or idle
    std::uint32_t pending_tasks = 0;

    bool operator==(const TransitionStatus&) const = default;
};

// The transition the kernel shows (a patch with transition=1), as far as sysfs tells: the
// start time and task count come from the transition watcher, not from here.
TransitionStatus transition_from_kernel(const std::vector<KernelPatch>& in_kernel);

} // namespace livepatchd
