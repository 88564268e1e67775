// SPDX-License-Identifier: GPL-2.0-only
//
// Prints the metrics textfile of a busy host: every family with samples, patches in every
// state, names that need escaping, counters and a histogram that are not zero. The input of
// check-metrics (promtool check metrics).
#include <cstdio>

#include "metrics/render.hpp"

using namespace livepatchd;
using namespace livepatchd::metrics;

int main()
{
    MetricsSnapshot s;
    s.version = "0.1.0";
    s.kernel_release = "6.1.0-57-amd64";
    s.start_time_usec = 1'764'790'000'250'000;
    s.write_failures = 1;
    s.shim_loaded = true;
    s.shim_version = "0.1.0";
    s.state = ServiceState::stalled;
    s.pending_tasks = 2;
    s.patches = {
        {"lp_cmdline", PatchState::applied, false},
        {"lp_forced", PatchState::applied, true},
        {"lp_applying", PatchState::applying, false},
        {"lp_reverting", PatchState::reverting, false},
        {"lp_skipped", PatchState::skipped, false},
        {"lp_installed", PatchState::installed, false},
        // Loaded outside livepatchd under a name no store accepts.
        {"lp_\"odd\"\\name\n\xff", PatchState::applied, false},
    };
    s.transitions[0] = {3, 1, 1};
    s.transitions[1] = {2, 0, 0};
    for (unsigned us : {50'000u, 400'000u, 2'000'000u, 31'000'000u, 90'000'000u})
        s.durations[0].observe(us);
    s.durations[1].observe(120'000);
    s.durations[1].observe(700'000);
    s.stalls = 2;
    s.remediation_actions = {12, 3, 1, 1};
    s.tasks_not_stopped = 1;
    std::fputs(render_textfile(s).c_str(), stdout);
    return 0;
}
