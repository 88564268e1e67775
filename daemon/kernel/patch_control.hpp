// SPDX-License-Identifier: GPL-2.0-only
//
// PatchControl: the kernel-side actions behind the Manager's mutating methods and the boot
// apply, as one narrow interface: the D-Bus layer decides whether an action may happen
// (validation, polkit), this does it. KmodPatchControl is the real one (libkmod and lpshim's
// sysfs); tests give a fake.
//
// Errors carry the kernel's errno as it came (finit_module, a sysfs write), with a message
// that says where the kernel logs why. The same errno means different things there (EBUSY: a
// transition under way, or a function another ftrace user redirects, or ftrace off; ENODEV:
// lpshim gone, or a pre_patch callback's own -ENODEV): PatchOperations names them from the
// kernel's state (docs/dbus-api.md, Errors).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/patch_store.hpp"
#include "common/result.hpp"

namespace livepatchd {

// One line of /sys/kernel/debug/lpshim/tasks: a task not yet at the transition's target.
struct PendingTask {
    std::uint32_t tid = 0;
    std::uint32_t tgid = 0;
    // The task's command name as printable text (common/text.hpp: printable()): the task's
    // owner chooses the bytes, and they go on the bus, into the journal and onto terminals.
    std::string comm;
    std::string reason;   // why it cannot switch yet, in lpshim's words
    std::string function; // the patched function found on its stack, or ""
    // CLOCK_MONOTONIC when lpshim first found it blocked in this transition; 0: not known
    // (lpshim's debugfs list does not say).
    std::uint64_t blocked_since_usec = 0;
    std::uint32_t attempts = 0; // times lpshim found it blocked in this transition; 0: not known

    bool operator==(const PendingTask&) const = default;
};

class PatchControl {
public:
    virtual ~PatchControl() = default;

    // Loads the patch's module from module_fd (finit_module: the fd the store checked, never a
    // path opened again); returns once its transition has started.
    virtual Result<void> apply(std::string_view name, int module_fd) = 0;
    // Removes a patch's module that is loaded but no longer a patch (its unpatch transition
    // completed, or it was replaced).
    virtual Result<void> unload(std::string_view name) = 0;
    // Writes 0 to <patch>/enabled: starts the unpatch transition, or reverses the patch's own
    // transition to patched.
    virtual Result<void> revert(std::string_view name) = 0;
    // Writes 1 to <patch>/enabled during the patch's unpatch transition: reverses it, back to
    // patched (transition.on_stall: revert of a stalled revert).
    virtual Result<void> enable(std::string_view name) = 0;
    // Kicks the tasks still pending in the current transition.
    virtual Result<void> kick() = 0;
    // Writes 1 to <patch>/force.
    virtual Result<void> force(std::string_view name) = 0;
    // The tasks still pending in the current transition; empty when there is none.
    virtual Result<std::vector<PendingTask>> pending_tasks() const = 0;
};

} // namespace livepatchd
