// SPDX-License-Identifier: GPL-2.0-only
#include "metrics/render.hpp"

#include <charconv>
#include <cstdint>

#include "common/text.hpp"

namespace livepatchd::metrics {

namespace {

// The shortest text that reads back as the same double ("0.1", "1", "1764790000.25"), as
// Prometheus' own clients write floats.
std::string number(double value)
{
    char text[64];
    const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
    return ec == std::errc() ? std::string(text, end) : "NaN";
}

std::string seconds(std::uint64_t usec)
{
    return number(static_cast<double>(usec) / 1e6);
}

class Writer {
public:
    void family(std::string_view name, std::string_view type, std::string_view help)
    {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help; // ours: no backslash, no newline
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    // labels: "name", value pairs; the values are escaped here.
    void sample(std::string_view name,
                std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
                std::string_view value)
    {
        out_ += name;
        if (labels.size() > 0) {
            out_ += '{';
            bool first = true;
            for (const auto& [label, label_value] : labels) {
                if (!first)
                    out_ += ',';
                first = false;
                out_ += label;
                out_ += "=\"";
                out_ += escape_label_value(label_value);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }

    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

std::string_view flag(bool value) { return value ? "1" : "0"; }

} // namespace

std::string escape_label_value(std::string_view value)
{
    // printable() first: the format is UTF-8, and a name may hold any bytes (a patch loaded
    // outside livepatchd is named by its sysfs directory). It leaves a backslash as it is, so
    // a name's own backslash is doubled before it: otherwise byte 0x01 and the four characters
    // \x01 would be one label value, two patches one series. Then every backslash gets
    // doubled again, as the format wants.
    std::string backslashes_doubled;
    backslashes_doubled.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            backslashes_doubled += '\\';
        backslashes_doubled += c;
    }
    const std::string text = printable(backslashes_doubled);
    std::string escaped;
    escaped.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '\\': escaped += "\\\\"; break;
        case '"': escaped += "\\\""; break;
        case '\n': escaped += "\\n"; break;
        default: escaped += c;
        }
    }
    return escaped;
}

std::string render_textfile(const MetricsSnapshot& s)
{
    Writer w;

    w.family("livepatchd_build_info", "gauge",
             "The version of the livepatchd that wrote this file; always 1.");
    w.sample("livepatchd_build_info", {{"version", s.version}}, "1");
    w.family("livepatchd_kernel_info", "gauge", "The release of the running kernel; always 1.");
    w.sample("livepatchd_kernel_info", {{"release", s.kernel_release}}, "1");
    w.family("livepatchd_start_time_seconds", "gauge",
             "When livepatchd started, in seconds since the Unix epoch.");
    w.sample("livepatchd_start_time_seconds", {}, seconds(s.start_time_usec));
    w.family("livepatchd_running", "gauge",
             "1 while livepatchd runs; 0 once it stopped cleanly (a crash leaves 1).");
    w.sample("livepatchd_running", {}, flag(s.running));
    w.family("livepatchd_textfile_write_failures_total", "counter",
             "Writes of this file that failed since livepatchd started; the file kept its "
             "previous content each time.");
    w.sample("livepatchd_textfile_write_failures_total", {}, std::to_string(s.write_failures));

    w.family("livepatchd_shim_loaded", "gauge", "Whether lpshim.ko is loaded.");
    w.sample("livepatchd_shim_loaded", {}, flag(s.shim_loaded));
    w.family("livepatchd_shim_info", "gauge",
             "The version of the loaded lpshim.ko; always 1, absent while it is not loaded.");
    if (s.shim_loaded)
        w.sample("livepatchd_shim_info", {{"version", s.shim_version}}, "1");

    w.family("livepatchd_state", "gauge",
             "livepatchd's state, as the D-Bus property State: 1 for the current one.");
    for (ServiceState state : service_states)
        w.sample("livepatchd_state", {{"state", to_string(state)}}, flag(state == s.state));
    w.family("livepatchd_transition_pending_tasks", "gauge",
             "Tasks the transition under way waits for; 0 when none runs.");
    w.sample("livepatchd_transition_pending_tasks", {}, std::to_string(s.pending_tasks));

    w.family("livepatchd_patches", "gauge", "Patches in the store or in the kernel, by state.");
    for (PatchState state : patch_states) {
        std::uint64_t n = 0;
        for (const PatchMetric& p : s.patches)
            n += p.state == state;
        w.sample("livepatchd_patches", {{"state", to_string(state)}}, std::to_string(n));
    }
    w.family("livepatchd_patch_state", "gauge",
             "Each patch's state, as its D-Bus property State: 1 for the current one.");
    for (const PatchMetric& p : s.patches)
        for (PatchState state : patch_states)
            w.sample("livepatchd_patch_state", {{"patch", p.name}, {"state", to_string(state)}},
                     flag(state == p.state));
    w.family("livepatchd_patch_forced", "gauge",
             "Whether the patch's transition was forced in this boot.");
    for (const PatchMetric& p : s.patches)
        w.sample("livepatchd_patch_forced", {{"patch", p.name}}, flag(p.forced));

    w.family("livepatchd_transitions_total", "counter",
             "Transitions that ended since livepatchd started, by target and outcome.");
    for (std::size_t t = 0; t < targets.size(); ++t)
        for (std::size_t o = 0; o < outcomes.size(); ++o)
            w.sample("livepatchd_transitions_total",
                     {{"target", targets[t]}, {"outcome", outcomes[o]}},
                     std::to_string(s.transitions[t][o]));
    w.family("livepatchd_transition_duration_seconds", "histogram",
             "How long the transitions that ended took, from start to end, by target.");
    for (std::size_t t = 0; t < targets.size(); ++t) {
        const DurationHistogram& h = s.durations[t];
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b < duration_buckets_seconds.size(); ++b) {
            cumulative += h.buckets[b];
            w.sample("livepatchd_transition_duration_seconds_bucket",
                     {{"target", targets[t]}, {"le", number(duration_buckets_seconds[b])}},
                     std::to_string(cumulative));
        }
        w.sample("livepatchd_transition_duration_seconds_bucket",
                 {{"target", targets[t]}, {"le", "+Inf"}}, std::to_string(h.count));
        w.sample("livepatchd_transition_duration_seconds_sum", {{"target", targets[t]}},
                 seconds(h.sum_usec));
        w.sample("livepatchd_transition_duration_seconds_count", {{"target", targets[t]}},
                 std::to_string(h.count));
    }
    w.family("livepatchd_transition_stalls_total", "counter",
             "Transitions that ran past transition.stall_timeout_ms since livepatchd started.");
    w.sample("livepatchd_transition_stalls_total", {}, std::to_string(s.stalls));

    w.family("livepatchd_remediation_actions_total", "counter",
             "Remediation actions since livepatchd started, by rung: kick (the pending tasks "
             "kicked once), stop_continue (a process stopped and continued), stall_revert and "
             "stall_force (transition.on_stall acting).");
    for (std::size_t r = 0; r < rungs.size(); ++r)
        w.sample("livepatchd_remediation_actions_total", {{"rung", rungs[r]}},
                 std::to_string(s.remediation_actions[r]));
    w.family("livepatchd_remediation_tasks_not_stopped_total", "counter",
             "Tasks blocking a transition that the stop_continue rung would not stop (kernel "
             "threads, uninterruptible sleep, excluded), since livepatchd started.");
    w.sample("livepatchd_remediation_tasks_not_stopped_total", {},
             std::to_string(s.tasks_not_stopped));
    return w.take();
}

} // namespace livepatchd::metrics
