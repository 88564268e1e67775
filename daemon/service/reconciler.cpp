// SPDX-License-Identifier: GPL-2.0-only
#include "service/reconciler.hpp"

#include <algorithm>

#include "kernel/boot_info.hpp"

namespace livepatchd {

namespace {

const KernelPatch* find_kernel_patch(const std::vector<KernelPatch>& patches,
                                     std::string_view name)
{
    const auto it = std::find_if(patches.begin(), patches.end(),
                                 [&](const KernelPatch& p) { return p.name == name; });
    return it == patches.end() ? nullptr : &*it;
}

const InstalledPatch* find_installed(const std::vector<InstalledPatch>& installed,
                                     std::string_view name)
{
    const auto it = std::find_if(installed.begin(), installed.end(),
                                 [&](const InstalledPatch& p) { return p.name == name; });
    return it == installed.end() ? nullptr : &*it;
}

std::string seconds_text(std::chrono::seconds s)
{
    return std::to_string(s.count()) + " s";
}

// Why the crash-loop guard holds for patch, or nullopt when it does not.
std::optional<std::string> crash_guard_reason(const DesiredPatch& patch,
                                              const ReconcileInput& input)
{
    if (input.crash_guard.count() == 0 || patch.applied_boot_id.empty() ||
        patch.applied_boot_id == input.boot_id)
        return std::nullopt;
    const std::string boot = "boot " + patch.applied_boot_id;
    const std::string fix = "; once the cause is known, apply it with 'livepatchctl apply " +
                            patch.name + "' or boot with livepatchd.apply=1 (journalctl -b " +
                            patch.applied_boot_id + " shows that boot)";
    if (patch.oops_after_apply)
        return "crash-loop guard: the kernel oopsed in " + boot + " after the patch was applied" +
               fix;
    if (!patch.survived_guard && patch.applied_boot_id != input.desired.clean_shutdown_boot_id)
        return "crash-loop guard: " + boot + " ended without a clean shutdown within " +
               seconds_text(input.crash_guard) + " of applying the patch" + fix;
    return std::nullopt;
}

std::optional<std::string> boot_gate(const DesiredPatch& patch, const ReconcileInput& input)
{
    // Gates hold back boot apply only: a patch applied in this boot was applied on purpose
    // (and a restarted daemon must not treat it as new).
    if (!patch.applied_boot_id.empty() && patch.applied_boot_id == input.boot_id)
        return std::nullopt;
    const std::optional<bool>& command_line = input.boot_flags.apply;
    if (command_line == false)
        return std::string("livepatchd.apply=0 on the kernel command line: no patch is applied "
                           "at this boot; apply it with 'livepatchctl apply ") +
               patch.name + "'";
    if (!command_line && !input.config_boot_apply)
        return std::string("boot.apply is false in the configuration: no patch is applied at "
                           "boot; apply it with 'livepatchctl apply ") +
               patch.name + "'";
    if (command_line == true)
        return std::nullopt; // the admin's word at the boot prompt overrides the guard
    return crash_guard_reason(patch, input);
}

} // namespace

std::string_view to_string(ActionKind kind)
{
    switch (kind) {
    case ActionKind::apply: return "apply";
    case ActionKind::already_applied: return "already-applied";
    case ActionKind::wait: return "wait";
    case ActionKind::skip: return "skip";
    case ActionKind::unmanaged: return "unmanaged";
    }
    return "skip";
}

Result<std::vector<Action>> reconcile(const ReconcileInput& input)
{
    auto kernel_patches = input.kernel.patches();
    if (!kernel_patches)
        return std::move(kernel_patches).error();
    const std::vector<KernelPatch>& in_kernel = *kernel_patches;
    const std::vector<DesiredPatch>& desired = input.desired.patches;

    std::vector<Action> actions;
    for (std::size_t i = 0; i < desired.size(); ++i) {
        const DesiredPatch& patch = desired[i];
        const std::string& name = patch.name;

        if (const KernelPatch* loaded = find_kernel_patch(in_kernel, name)) {
            if (loaded->applied())
                actions.push_back({ActionKind::already_applied, name, {}, false});
            else if (loaded->enabled)
                actions.push_back({ActionKind::wait, name, "being applied (transition in progress)",
                                   false});
            else
                actions.push_back({ActionKind::wait, name,
                                   "being reverted outside livepatchd (transition in progress)",
                                   false});
            continue;
        }

        const InstalledPatch* installed = find_installed(input.installed, name);
        if (!installed) {
            actions.push_back({ActionKind::skip, name,
                               "not in the patch store any more; install it again, or revert "
                               "it to stop wanting it",
                               false});
            continue;
        }
        if (!installed->problem.empty()) {
            actions.push_back({ActionKind::skip, name,
                               "cannot be applied: " + installed->problem, false});
            continue;
        }
        if (installed->built_for != input.kernel_release) {
            actions.push_back({ActionKind::skip, name,
                               "built for another kernel: " + installed->built_for +
                                   ", this kernel is " + input.kernel_release +
                                   "; install a build of the patch for this kernel",
                               false});
            continue;
        }
        if (auto gate = boot_gate(patch, input)) {
            actions.push_back({ActionKind::skip, name, std::move(*gate), false});
            continue;
        }

        const auto above = std::find_if(desired.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                        desired.end(), [&](const DesiredPatch& later) {
                                            return find_kernel_patch(in_kernel, later.name);
                                        });
        if (above != desired.end()) {
            actions.push_back({ActionKind::skip, name,
                               above->name + ", which comes after it in the desired order, is "
                                             "applied: applying " +
                                   name + " now would stack it above " + above->name +
                                   "; revert " + above->name + " first, then apply both",
                               false});
            continue;
        }

        actions.push_back({ActionKind::apply, name,
                           patch.applied_boot_id == input.boot_id
                               ? "applied earlier in this boot but not in the kernel now"
                               : "boot apply",
                           input.kernel.module_loaded(name)});
    }

    for (const KernelPatch& loaded : in_kernel)
        if (!input.desired.find(loaded.name))
            actions.push_back({ActionKind::unmanaged, loaded.name,
                               "applied outside livepatchd (not in its desired state); left "
                               "alone",
                               false});
    return actions;
}

} // namespace livepatchd
