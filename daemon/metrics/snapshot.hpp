// SPDX-License-Identifier: GPL-2.0-only
//
// MetricsSnapshot: everything livepatchd exports to Prometheus, as plain data: what
// render_textfile() turns into node_exporter's textfile format (docs/metrics.md), and what
// MetricsRecorder keeps up to date from the service's events. No clock, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "service/status.hpp"

namespace livepatchd::metrics {

// The label values of the fixed sets, in the order they are written.
inline constexpr std::array<std::string_view, 2> targets{"patched", "unpatched"};
// TransitionFinished's outcomes (transition_watcher.hpp).
inline constexpr std::array<std::string_view, 3> outcomes{"completed", "reversed", "forced"};
inline constexpr std::array<PatchState, 5> patch_states{
    PatchState::installed, PatchState::skipped, PatchState::applying, PatchState::applied,
    PatchState::reverting};
inline constexpr std::array<ServiceState, 4> service_states{
    ServiceState::idle, ServiceState::transitioning, ServiceState::stalled, ServiceState::error};
// The remediation rungs that act (docs/remediation.md): a kick of every pending task, one
// process stopped and continued, and on_stall's revert or force.
inline constexpr std::array<std::string_view, 4> rungs{"kick", "stop_continue", "stall_revert",
                                                       "stall_force"};
// Upper bounds of the transition duration histogram, in seconds: most transitions end within
// a second, the stall timeout is 30 s by default and at most an hour.
inline constexpr std::array<double, 12> duration_buckets_seconds{
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};

struct DurationHistogram {
    std::array<std::uint64_t, duration_buckets_seconds.size()> buckets{}; // not cumulative
    std::uint64_t count = 0;     // the +Inf bucket
    std::uint64_t sum_usec = 0;

    void observe(std::uint64_t usec);
    bool operator==(const DurationHistogram&) const = default;
};

struct PatchMetric {
    std::string name; // as the store or the kernel names it: any bytes
    PatchState state = PatchState::installed;
    bool forced = false;
    bool operator==(const PatchMetric&) const = default;
};

struct MetricsSnapshot {
    // livepatchd itself
    std::string version;
    std::string kernel_release;
    std::uint64_t start_time_usec = 0; // CLOCK_REALTIME, shown only
    bool running = true;
    std::uint64_t write_failures = 0;
    // lpshim.ko
    bool shim_loaded = false;
    std::string shim_version; // "" when not loaded
    // the service and its transition
    ServiceState state = ServiceState::idle;
    std::uint32_t pending_tasks = 0;
    // every patch in the store or the kernel, by name
    std::vector<PatchMetric> patches;
    // counters since livepatchd started, indexed like targets, outcomes, rungs
    std::array<std::array<std::uint64_t, outcomes.size()>, targets.size()> transitions{};
    std::array<DurationHistogram, targets.size()> durations{};
    std::uint64_t stalls = 0;
    std::array<std::uint64_t, rungs.size()> remediation_actions{};
    std::uint64_t tasks_not_stopped = 0;

    bool operator==(const MetricsSnapshot&) const = default;
};

// The index of value in one of the fixed sets above; size() when it is not one of them.
template <std::size_t N>
std::size_t index_of(const std::array<std::string_view, N>& set, std::string_view value)
{
    for (std::size_t i = 0; i < N; ++i)
        if (set[i] == value)
            return i;
    return N;
}

} // namespace livepatchd::metrics
