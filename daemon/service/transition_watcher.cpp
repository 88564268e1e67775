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

// Where the watched transition ended: the patch is patched if it is still in sysfs and enabled,
// unpatched if it is gone (or disabled), whichever way it was going.
TransitionChange TransitionWatcher::end(std::string state, std::uint64_t now)
{
    const WatchedTransition& w = *watched_;
    const std::string_view outcome = state != w.target ? outcome_reversed
                                     : w.forced        ? outcome_forced
                                                       : outcome_completed;
    TransitionChange ended{TransitionChange::Kind::ended, w.patch, w.target, std::string(outcome),
                           std::move(state), elapsed_usec(now)};
    watched_.reset();
    return ended;
}

std::vector<TransitionChange> TransitionWatcher::reverse(std::string_view patch,
                                                        std::string_view target,
                                                        std::uint64_t now)
{
    if (!watched_ || watched_->patch != patch)
        return watch(patch, target, now);
    known_usec_ = std::max(known_usec_, now);
    std::vector<TransitionChange> events;
    if (watched_->direction() == target)
        return events;
    // lpshim turned it around: the same transition, going back now.
    watched_->heading = target == watched_->target ? "" : std::string(target);
    watched_->reversed_usec = now;
    events.push_back({TransitionChange::Kind::reversed, watched_->patch, watched_->target, {},
                      {}, elapsed_usec(now)});
    return events;
}

std::vector<TransitionChange> TransitionWatcher::watch(std::string_view patch,
                                                      std::string_view target, std::uint64_t now)
{
    std::vector<TransitionChange> events;
    known_usec_ = std::max(known_usec_, now);
    if (watched_ && watched_->patch == patch && watched_->direction() == target)
        return events;
    if (watched_)
        // A new transition starts only once the one before has ended, where it was going.
        events.push_back(end(watched_->direction(), now));
    watched_ = WatchedTransition{std::string(patch), std::string(target), now, false, {}, false, 0, 0};
    events.push_back({TransitionChange::Kind::started, watched_->patch, watched_->target, {}, {},
                      0});
    return events;
}

void TransitionWatcher::expect_kernel_start(std::string_view patch, std::string_view target)
{
    // Bounded: starts lost from a full ring buffer must not keep one expected for ever.
    constexpr std::size_t most = 16;
    if (expected_starts_.size() >= most)
        expected_starts_.erase(expected_starts_.begin());
    expected_starts_.push_back({std::string(patch), std::string(target)});
}

std::vector<TransitionChange> TransitionWatcher::kernel_started(std::string_view patch,
                                                               std::string_view target,
                                                               std::uint64_t at_usec)
{
    const auto expected = std::find_if(expected_starts_.begin(), expected_starts_.end(),
                                       [&](const ExpectedStart& e) {
                                           return e.patch == patch && e.target == target;
                                       });
    if (expected != expected_starts_.end()) {
        // The start of an action's transition, which is watched (or has ended) already.
        // Earlier expected starts were lost.
        expected_starts_.erase(expected_starts_.begin(), expected + 1);
        if (watched_ && watched_->patch == patch && watched_->heading.empty() &&
            watched_->target == target && at_usec < watched_->started_usec)
            watched_->kernel_started_usec = at_usec;
        return {};
    }
    if (at_usec <= known_usec_)
        return {}; // stale: of a transition seen already, or over
    // lpshim reports a reversal as a start the other way (a write to enabled by hand).
    return reverse(patch, target, at_usec);
}

std::vector<TransitionChange> TransitionWatcher::kernel_ended(std::string_view patch,
                                                             std::string_view state,
                                                             std::uint32_t forced_tasks,
                                                             std::uint64_t at_usec,
                                                             std::uint64_t now)
{
    if (!watched_ || watched_->patch != patch)
        return {}; // the look says where it is
    if (state == watched_->direction()) {
        const std::uint64_t began = watched_->kernel_started_usec != 0
                                        ? watched_->kernel_started_usec
                                        : watched_->started_usec;
        if (at_usec < began)
            return {}; // an earlier transition's
        if (forced_tasks > 0)
            watched_->forced = true; // echo 1 > force by hand
        return {end(std::string(state), now)};
    }
    if (state != watched_->target || watched_->heading.empty() ||
        at_usec > watched_->reversed_usec)
        return {};
    // It reached its target before the write taken for its reversal: the write started a
    // new transition, the other way, which lpshim reports as a start of its own (expected).
    std::vector<TransitionChange> events;
    const std::string back = watched_->heading;
    const std::uint64_t since = watched_->reversed_usec;
    watched_->heading.clear();
    watched_->forced = watched_->forced || forced_tasks > 0;
    events.push_back(end(std::string(state), at_usec));
    watched_ = WatchedTransition{std::string(patch), back, since, false, {}, false, 0, 0};
    events.push_back({TransitionChange::Kind::started, watched_->patch, watched_->target, {}, {},
                      0});
    return events;
}

void TransitionWatcher::forced(std::string_view patch)
{
    if (watched_ && watched_->patch == patch)
        watched_->forced = true;
}

std::vector<TransitionChange> TransitionWatcher::update(const std::vector<KernelPatch>& in_kernel,
                                                       std::uint64_t now)
{
    std::vector<TransitionChange> events;
    const TransitionStatus shown = transition_from_kernel(in_kernel);
    if (watched_ && shown.state != ServiceState::idle && shown.patch == watched_->patch &&
        shown.target != watched_->direction())
        // Reversed by someone else than this livepatchd (or before it looked).
        events = reverse(shown.patch, shown.target, now);
    if (watched_ && (shown.state == ServiceState::idle || shown.patch != watched_->patch)) {
        const KernelPatch* patch = find(in_kernel, watched_->patch);
        events.push_back(end(patch && patch->enabled ? "patched" : "unpatched", now));
    }
    if (shown.state == ServiceState::idle)
        return events;
    if (!watched_) {
        known_usec_ = std::max(known_usec_, now);
        watched_ = WatchedTransition{shown.patch, shown.target, now, false, {}, false, 0, 0};
        events.push_back({TransitionChange::Kind::started, shown.patch, shown.target, {}, {}, 0});
    }
    const std::uint64_t elapsed = elapsed_usec(now);
    if (!watched_->stalled && elapsed >= stall_timeout_usec_) {
        watched_->stalled = true;
        events.push_back({TransitionChange::Kind::stalled, watched_->patch, watched_->target, {},
                          {}, elapsed});
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
    status.target = watched_->direction();
    return status;
}

StallStep stall_step(StallAction decided, const WatchedTransition& watched)
{
    switch (decided) {
    case StallAction::wait: return StallStep::wait;
    case StallAction::force: return StallStep::force;
    case StallAction::revert:
        // Turned around already, by a Revert during an apply or an Apply during a revert: that
        // is the operator's, never reversed again.
        if (!watched.heading.empty())
            return StallStep::wait;
        return watched.target == "patched" ? StallStep::reverse_to_unpatched
                                           : StallStep::reverse_to_patched;
    }
    return StallStep::wait;
}

std::string to_transition_record(const WatchedTransition& watched, std::string_view boot_id)
{
    return nlohmann::json{{"boot_id", boot_id},
                          {"patch", watched.patch},
                          {"target", watched.target},
                          {"started_monotonic_usec", watched.started_usec},
                          {"heading", watched.direction()},
                          {"forced", watched.forced}}
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
        // Not in the records of livepatchd before issue 18: not reversed, not forced.
        const std::string heading = record.value("heading", watched.target);
        watched.heading = heading == watched.target ? "" : heading;
        watched.forced = record.value("forced", false);
        if (!is_valid_patch_name(watched.patch) ||
            (watched.target != "patched" && watched.target != "unpatched") ||
            (!watched.heading.empty() && watched.heading != "patched" &&
             watched.heading != "unpatched"))
            return std::nullopt;
        return watched;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

} // namespace livepatchd
