// SPDX-License-Identifier: GPL-2.0-only
#include "service/status.hpp"

#include <algorithm>

namespace livepatchd {

std::string_view to_string(PatchState state)
{
    switch (state) {
    case PatchState::installed: return "installed";
    case PatchState::skipped: return "skipped";
    case PatchState::applying: return "applying";
    case PatchState::applied: return "applied";
    case PatchState::reverting: return "reverting";
    }
    return "installed";
}

std::string_view to_string(ServiceState state)
{
    switch (state) {
    case ServiceState::idle: return "idle";
    case ServiceState::transitioning: return "transitioning";
    case ServiceState::stalled: return "stalled";
    case ServiceState::error: return "error";
    }
    return "error";
}

std::vector<PatchStatus> collect_patch_status(
    const std::vector<InstalledPatch>& installed, const DesiredState& desired,
    const std::vector<KernelPatch>& in_kernel,
    const std::map<std::string, std::string, std::less<>>& skip_reasons,
    const std::set<std::string, std::less<>>& forced)
{
    std::map<std::string, PatchStatus, std::less<>> by_name;
    for (const InstalledPatch& patch : installed) {
        PatchStatus& status = by_name[patch.name];
        status.name = patch.name;
        status.installed_at_usec = patch.installed_at_usec;
        status.built_for = patch.built_for;
        status.sha256 = patch.sha256;
        status.livepatch_objects = patch.livepatch_objects;
        if (const DesiredPatch* wanted = desired.find(patch.name)) {
            status.state = PatchState::skipped;
            status.applied_at_usec = wanted->applied_at_usec;
            const auto reason = skip_reasons.find(patch.name);
            status.skip_reason = reason != skip_reasons.end()
                                     ? reason->second
                                     : "wanted, but not applied yet";
        }
    }
    for (const KernelPatch& patch : in_kernel) {
        PatchStatus& status = by_name[patch.name];
        status.name = patch.name;
        status.state = !patch.enabled      ? PatchState::reverting
                       : patch.transition ? PatchState::applying
                                          : PatchState::applied;
        status.skip_reason.clear();
        status.enabled = patch.enabled;
        status.transition = patch.transition;
        status.replace = patch.replace;
        status.stack_order = patch.stack_order;
        for (const KernelObject& object : patch.objects)
            for (const KernelFunction& function : object.functions)
                status.functions.push_back({object.name, function.name,
                                            static_cast<std::uint32_t>(function.sympos)});
        if (const DesiredPatch* wanted = desired.find(patch.name))
            status.applied_at_usec = wanted->applied_at_usec;
    }
    std::vector<PatchStatus> statuses;
    statuses.reserve(by_name.size());
    for (auto& [name, status] : by_name) {
        status.forced = forced.find(name) != forced.end();
        statuses.push_back(std::move(status));
    }
    return statuses;
}

TransitionStatus transition_from_kernel(const std::vector<KernelPatch>& in_kernel)
{
    const auto moving = std::find_if(in_kernel.begin(), in_kernel.end(),
                                     [](const KernelPatch& p) { return p.transition; });
    if (moving == in_kernel.end())
        return {};
    TransitionStatus status;
    status.state = ServiceState::transitioning;
    status.patch = moving->name;
    status.target = moving->enabled ? "patched" : "unpatched";
    return status;
}

} // namespace livepatchd
