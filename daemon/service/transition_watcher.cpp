// SPDX-License-Identifier: GPL-2.0-only
#include "service/transition_watcher.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "kernel/boot_info.hpp"
#include "store/patch_file.hpp"

namespace livepatchd {

namespace {

const KernelPatch* find(const std::vector<KernelPatch>& in_kernel, std::string_view name)
{
    const auto it = std::find_if(in_kernel.begin(), in_kernel.end(),
                                 [&](const KernelPatch& p) { return p.name == name; });
    return it == in_kernel.end() ? nullptr : &*it;
}

} // namespace

std::vector<TransitionChange> TransitionWatcher::watch(std::string_view patch,
                                                      std::string_view target, std::uint64_t now)
{
    std::vector<TransitionChange> events;
    if (watched_ && watched_->patch == patch && watched_->target == target)
        return events;
    if (watched_)
        // Reversed: the kernel now takes it back the other way, which is watched from now.
        events.push_back({TransitionChange::Kind::reversed, watched_->patch, watched_->target, {},
                          elapsed_usec(now)});
    watched_ = WatchedTransition{std::string(patch), std::string(target), now, false};
    events.push_back({TransitionChange::Kind::started, watched_->patch, watched_->target, {}, 0});
    return events;
}

std::vector<TransitionChange> TransitionWatcher::update(const std::vector<KernelPatch>& in_kernel,
                                                       std::uint64_t now)
{
    std::vector<TransitionChange> events;
    const TransitionStatus shown = transition_from_kernel(in_kernel);
    if (watched_ && (shown.state == ServiceState::idle || shown.patch != watched_->patch ||
                     shown.target != watched_->target)) {
        // Where it ended: a patch still in sysfs and enabled is patched; a patch gone from
        // sysfs (or disabled) is unpatched, whichever way it was going.
        const KernelPatch* patch = find(in_kernel, watched_->patch);
        events.push_back({TransitionChange::Kind::ended, watched_->patch, watched_->target,
                          patch && patch->enabled ? "patched" : "unpatched", elapsed_usec(now)});
        watched_.reset();
    }
    if (shown.state == ServiceState::idle)
        return events;
    if (!watched_) {
        watched_ = WatchedTransition{shown.patch, shown.target, now, false};
        events.push_back({TransitionChange::Kind::started, shown.patch, shown.target, {}, 0});
    }
    const std::uint64_t elapsed = elapsed_usec(now);
    if (!watched_->stalled && elapsed >= stall_timeout_usec_) {
        watched_->stalled = true;
        events.push_back({TransitionChange::Kind::stalled, watched_->patch, watched_->target, {},
                          elapsed});
    }
    return events;
}

std::uint64_t TransitionWatcher::elapsed_usec(std::uint64_t now) const
{
    return watched_ ? usec_since(watched_->started_usec, now) : 0;
}

TransitionStatus TransitionWatcher::status() const
{
    TransitionStatus status;
    if (!watched_)
        return status;
    status.state = watched_->stalled ? ServiceState::stalled : ServiceState::transitioning;
    status.patch = watched_->patch;
    status.target = watched_->target;
    return status;
}

std::string to_transition_record(const WatchedTransition& watched, std::string_view boot_id)
{
    return nlohmann::json{{"boot_id", boot_id},
                          {"patch", watched.patch},
                          {"target", watched.target},
                          {"started_monotonic_usec", watched.started_usec}}
               .dump() +
           "\n";
}

std::optional<WatchedTransition> parse_transition_record(std::string_view text,
                                                         std::string_view boot_id)
{
    try {
        const nlohmann::json record = nlohmann::json::parse(text);
        WatchedTransition watched;
        if (record.at("boot_id").get<std::string>() != boot_id)
            return std::nullopt;
        watched.patch = record.at("patch").get<std::string>();
        watched.target = record.at("target").get<std::string>();
        watched.started_usec = record.at("started_monotonic_usec").get<std::uint64_t>();
        if (!is_valid_patch_name(watched.patch) ||
            (watched.target != "patched" && watched.target != "unpatched"))
            return std::nullopt;
        return watched;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

} // namespace livepatchd
