// SPDX-License-Identifier: GPL-2.0-only
//
// The Prometheus textfile (daemon/metrics/): the renderer's exact text, the escaping of label
// values that come from patch names, and the recorder's counting of the service's events and
// its writes (one per change, none without one; what it passes on to the bus sink).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics/recorder.hpp"
#include "metrics/render.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using namespace livepatchd::metrics;
using livepatchd::test::TempDir;

namespace {

// The recorder's two steps (the read off the loop, the states on it) from one function of the
// test's: the read returns the states, handed to the loop's step as they were read.
MetricsSources with_patches(std::function<Result<std::vector<PatchStatus>>()> read,
                            MetricsSources sources)
{
    auto last = std::make_shared<std::vector<PatchStatus>>();
    sources.read_patches = [read = std::move(read), last]() -> Result<PatchReads> {
        auto statuses = read();
        if (!statuses)
            return std::move(statuses).error();
        *last = std::move(*statuses);
        return PatchReads{};
    };
    sources.patch_states = [last](const PatchReads&) { return *last; };
    return sources;
}

// Runs event's loop until done() (true) or 5 s have passed (false).
bool run_until(sd_event* event, const std::function<bool()>& done)
{
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
        if (std::chrono::steady_clock::now() > limit)
            return false;
        if (sd_event_run(event, 50'000) < 0)
            return false;
    }
    return true;
}

} // namespace

namespace {

MetricsSnapshot identity()
{
    MetricsSnapshot s;
    s.version = "0.1.0";
    s.kernel_release = "6.1.0-57-amd64";
    s.start_time_usec = 1'764'790'000'250'000; // 2025-12-03T19:26:40.25Z
    return s;
}

std::string read_file(const std::filesystem::path& path)
{
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Only the lines of one metric family's samples (name followed by '{' or ' ').
std::vector<std::string> samples(const std::string& text, std::string_view name)
{
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        const std::string line = text.substr(at, end - at);
        at = end == std::string::npos ? text.size() : end + 1;
        if (line.starts_with(std::string(name) + "{") || line.starts_with(std::string(name) + " "))
            lines.push_back(line);
    }
    return lines;
}

// Records what reaches the bus sink.
struct RecordingSink final : EventSink {
    std::vector<std::string> calls;
    void transition_started(std::string_view p, std::string_view t) override
    {
        calls.push_back("started " + std::string(p) + " " + std::string(t));
    }
    void transition_finished(std::string_view p, std::string_view t, std::string_view o,
                             std::uint64_t us) override
    {
        calls.push_back("finished " + std::string(p) + " " + std::string(t) + " " +
                        std::string(o) + " " + std::to_string(us));
    }
    void transition_stalled(std::string_view p, std::string_view a, std::uint64_t) override
    {
        calls.push_back("stalled " + std::string(p) + " " + std::string(a));
    }
    void transition_status(const TransitionStatus& s) override
    {
        calls.push_back("status " + std::string(to_string(s.state)));
    }
    void task_blocked(const PendingTask& t, std::string_view, std::string_view) override
    {
        calls.push_back("blocked " + std::to_string(t.tid));
    }
    void task_remediated(const PendingTask& t, std::string_view a) override
    {
        calls.push_back("remediated " + std::to_string(t.tid) + " " + std::string(a));
    }
    void patch_changed(std::string_view n) override { calls.push_back("changed " + std::string(n)); }
    void patch_added(std::string_view n) override { calls.push_back("added " + std::string(n)); }
    void patch_removed(std::string_view n) override { calls.push_back("removed " + std::string(n)); }
};

} // namespace

TEST_CASE("the textfile of a host with one applied patch, word for word")
{
    MetricsSnapshot s = identity();
    s.shim_loaded = true;
    s.shim_version = "0.1.0";
    s.state = ServiceState::transitioning;
    s.pending_tasks = 3;
    s.patches = {{"lp_cmdline", PatchState::applied, false}};
    s.transitions[0][0] = 1; // patched, completed
    s.durations[0].observe(400'000);
    s.stalls = 2;
    s.remediation_actions = {5, 1, 1, 0};
    s.tasks_not_stopped = 4;
    s.write_failures = 1;
    CHECK(render_textfile(s) == R"(# HELP livepatchd_build_info The version of the livepatchd that wrote this file; always 1.
# TYPE livepatchd_build_info gauge
livepatchd_build_info{version="0.1.0"} 1
# HELP livepatchd_kernel_info The release of the running kernel; always 1.
# TYPE livepatchd_kernel_info gauge
livepatchd_kernel_info{release="6.1.0-57-amd64"} 1
# HELP livepatchd_start_time_seconds When livepatchd started, in seconds since the Unix epoch.
# TYPE livepatchd_start_time_seconds gauge
livepatchd_start_time_seconds 1764790000.25
# HELP livepatchd_running 1 while livepatchd runs; 0 once it stopped cleanly (a crash leaves 1).
# TYPE livepatchd_running gauge
livepatchd_running 1
# HELP livepatchd_textfile_write_failures_total Writes of this file that failed since livepatchd started; the file kept its previous content each time.
# TYPE livepatchd_textfile_write_failures_total counter
livepatchd_textfile_write_failures_total 1
# HELP livepatchd_shim_loaded Whether lpshim.ko is loaded.
# TYPE livepatchd_shim_loaded gauge
livepatchd_shim_loaded 1
# HELP livepatchd_shim_info The version of the loaded lpshim.ko; always 1, absent while it is not loaded.
# TYPE livepatchd_shim_info gauge
livepatchd_shim_info{version="0.1.0"} 1
# HELP livepatchd_state livepatchd's state, as the D-Bus property State: 1 for the current one.
# TYPE livepatchd_state gauge
livepatchd_state{state="idle"} 0
livepatchd_state{state="transitioning"} 1
livepatchd_state{state="stalled"} 0
livepatchd_state{state="error"} 0
# HELP livepatchd_transition_pending_tasks Tasks the transition under way waits for; 0 when none runs.
# TYPE livepatchd_transition_pending_tasks gauge
livepatchd_transition_pending_tasks 3
# HELP livepatchd_patches Patches in the store or in the kernel, by state.
# TYPE livepatchd_patches gauge
livepatchd_patches{state="installed"} 0
livepatchd_patches{state="skipped"} 0
livepatchd_patches{state="applying"} 0
livepatchd_patches{state="applied"} 1
livepatchd_patches{state="reverting"} 0
# HELP livepatchd_patch_state Each patch's state, as its D-Bus property State: 1 for the current one.
# TYPE livepatchd_patch_state gauge
livepatchd_patch_state{patch="lp_cmdline",state="installed"} 0
livepatchd_patch_state{patch="lp_cmdline",state="skipped"} 0
livepatchd_patch_state{patch="lp_cmdline",state="applying"} 0
livepatchd_patch_state{patch="lp_cmdline",state="applied"} 1
livepatchd_patch_state{patch="lp_cmdline",state="reverting"} 0
# HELP livepatchd_patch_forced Whether the patch's transition was forced in this boot.
# TYPE livepatchd_patch_forced gauge
livepatchd_patch_forced{patch="lp_cmdline"} 0
# HELP livepatchd_transitions_total Transitions that ended since livepatchd started, by target and outcome.
# TYPE livepatchd_transitions_total counter
livepatchd_transitions_total{target="patched",outcome="completed"} 1
livepatchd_transitions_total{target="patched",outcome="reversed"} 0
livepatchd_transitions_total{target="patched",outcome="forced"} 0
livepatchd_transitions_total{target="unpatched",outcome="completed"} 0
livepatchd_transitions_total{target="unpatched",outcome="reversed"} 0
livepatchd_transitions_total{target="unpatched",outcome="forced"} 0
# HELP livepatchd_transition_duration_seconds How long the transitions that ended took, from start to end, by target.
# TYPE livepatchd_transition_duration_seconds histogram
livepatchd_transition_duration_seconds_bucket{target="patched",le="0.1"} 0
livepatchd_transition_duration_seconds_bucket{target="patched",le="0.25"} 0
livepatchd_transition_duration_seconds_bucket{target="patched",le="0.5"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="1"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="2.5"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="5"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="10"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="30"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="60"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="300"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="900"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="3600"} 1
livepatchd_transition_duration_seconds_bucket{target="patched",le="+Inf"} 1
livepatchd_transition_duration_seconds_sum{target="patched"} 0.4
livepatchd_transition_duration_seconds_count{target="patched"} 1
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="0.1"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="0.25"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="0.5"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="1"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="2.5"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="5"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="10"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="30"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="60"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="300"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="900"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="3600"} 0
livepatchd_transition_duration_seconds_bucket{target="unpatched",le="+Inf"} 0
livepatchd_transition_duration_seconds_sum{target="unpatched"} 0
livepatchd_transition_duration_seconds_count{target="unpatched"} 0
# HELP livepatchd_transition_stalls_total Transitions that ran past transition.stall_timeout_ms since livepatchd started.
# TYPE livepatchd_transition_stalls_total counter
livepatchd_transition_stalls_total 2
# HELP livepatchd_remediation_actions_total Remediation actions since livepatchd started, by rung: kick (the pending tasks kicked once), stop_continue (a process stopped and continued), stall_revert and stall_force (transition.on_stall acting).
# TYPE livepatchd_remediation_actions_total counter
livepatchd_remediation_actions_total{rung="kick"} 5
livepatchd_remediation_actions_total{rung="stop_continue"} 1
livepatchd_remediation_actions_total{rung="stall_revert"} 1
livepatchd_remediation_actions_total{rung="stall_force"} 0
# HELP livepatchd_remediation_tasks_not_stopped_total Tasks blocking a transition that the stop_continue rung would not stop (kernel threads, uninterruptible sleep, excluded), since livepatchd started.
# TYPE livepatchd_remediation_tasks_not_stopped_total counter
livepatchd_remediation_tasks_not_stopped_total 4
)");
}

TEST_CASE("without lpshim.ko there is no shim_info sample, and no patch no patch series")
{
    const std::string text = render_textfile(identity());
    CHECK(samples(text, "livepatchd_shim_loaded") == std::vector<std::string>{"livepatchd_shim_loaded 0"});
    CHECK(samples(text, "livepatchd_shim_info").empty());
    CHECK(text.find("# TYPE livepatchd_shim_info gauge\n") != std::string::npos);
    CHECK(samples(text, "livepatchd_patch_state").empty());
    CHECK(samples(text, "livepatchd_patches")[3] == R"(livepatchd_patches{state="applied"} 0)");
}

TEST_CASE("label values from patch names are escaped: backslash, quote, newline, bytes that are not UTF-8")
{
    CHECK(escape_label_value("lp_fix") == "lp_fix");
    CHECK(escape_label_value(R"(a"b)") == R"(a\"b)");
    // A backslash of the name's own: doubled before printable(), whose \xNN it could pass for.
    CHECK(escape_label_value(R"(a\b)") == R"(a\\\\b)");
    // Not UTF-8, and a control character: printable()'s \xNN, whose backslash is escaped.
    CHECK(escape_label_value("a\xff" "b") == R"(a\\xffb)");
    CHECK(escape_label_value("a\nb") == R"(a\\x0ab)");
    CHECK(escape_label_value("lp_é") == "lp_é");

    MetricsSnapshot s = identity();
    s.patches = {{"lp_\"quoted\"\\\n\xff", PatchState::installed, true}};
    const std::string text = render_textfile(s);
    CHECK(samples(text, "livepatchd_patch_forced") ==
          std::vector<std::string>{R"(livepatchd_patch_forced{patch="lp_\"quoted\"\\\\\\x0a\\xff"} 1)"});
    CHECK(samples(text, "livepatchd_patch_state")[0] ==
          R"(livepatchd_patch_state{patch="lp_\"quoted\"\\\\\\x0a\\xff",state="installed"} 1)");
    // Every line is one sample or comment: the name's newline did not end a line.
    for (const std::string& line : samples(text, "livepatchd_patch_state"))
        CHECK(line.ends_with("} 0") != line.ends_with("} 1"));
}

TEST_CASE("distinct patch names give distinct label values: a backslash is not printable()'s \\xNN")
{
    // Byte 0x01, and a backslash followed by "x01": the same label value would make two
    // patches one series (a duplicate sample, which fails the whole file's scrape).
    const std::string control = "a\x01";
    const std::string backslash = R"(a\x01)";
    CHECK(escape_label_value(control) != escape_label_value(backslash));

    MetricsSnapshot s = identity();
    s.patches = {{control, PatchState::applied, false}, {backslash, PatchState::applied, false}};
    const auto forced = samples(render_textfile(s), "livepatchd_patch_forced");
    REQUIRE(forced.size() == 2);
    CHECK(forced[0] != forced[1]);
}

TEST_CASE("the duration histogram: bucket bounds are inclusive, sums in seconds")
{
    DurationHistogram h;
    h.observe(100'000);   // 0.1 s: in le="0.1"
    h.observe(100'001);   // just above: le="0.25"
    h.observe(7'200'000'000); // two hours: +Inf only
    CHECK(h.buckets[0] == 1);
    CHECK(h.buckets[1] == 1);
    CHECK(h.count == 3);
    MetricsSnapshot s = identity();
    s.durations[1] = h;
    const std::string text = render_textfile(s);
    const auto buckets = samples(text, "livepatchd_transition_duration_seconds_bucket");
    REQUIRE(buckets.size() == 26);
    CHECK(buckets[13] == R"(livepatchd_transition_duration_seconds_bucket{target="unpatched",le="0.1"} 1)");
    CHECK(buckets[14] == R"(livepatchd_transition_duration_seconds_bucket{target="unpatched",le="0.25"} 2)");
    CHECK(buckets[24] == R"(livepatchd_transition_duration_seconds_bucket{target="unpatched",le="3600"} 2)");
    CHECK(buckets[25] == R"(livepatchd_transition_duration_seconds_bucket{target="unpatched",le="+Inf"} 3)");
    CHECK(samples(text, "livepatchd_transition_duration_seconds_sum")[1] ==
          R"(livepatchd_transition_duration_seconds_sum{target="unpatched"} 7200.200001)");
}

TEST_CASE("the recorder counts what the service reports, passes it all on, and writes on change only")
{
    TempDir dir;
    const auto file = dir.path / "livepatchd.prom";
    RecordingSink bus;
    std::vector<PatchStatus> patches;
    std::string shim = "0.1.0";
    bool save_failed = false;
    unsigned reads = 0;
    MetricsRecorder recorder(
        bus,
        with_patches([&]() -> Result<std::vector<PatchStatus>> { ++reads; return patches; },
                     MetricsSources{
                         .shim_version = [&] { return shim; },
                         .save_failed = [&] { return save_failed; },
                     }),
        TextfileWriter(file), identity(), nullptr);

    recorder.write_now();
    std::string text = read_file(file);
    CHECK(samples(text, "livepatchd_shim_info") == std::vector<std::string>{R"(livepatchd_shim_info{version="0.1.0"} 1)"});
    CHECK(samples(text, "livepatchd_patch_state").empty());

    // An apply: started, the patch's change, the transition's status.
    PatchStatus p;
    p.name = "lp_fix";
    p.state = PatchState::applying;
    patches = {p};
    recorder.transition_started("lp_fix", "patched");
    recorder.patch_changed("lp_fix");
    recorder.transition_status({ServiceState::transitioning, "lp_fix", "patched", 1, 2});
    text = read_file(file);
    CHECK(samples(text, "livepatchd_patch_state")[2] == R"(livepatchd_patch_state{patch="lp_fix",state="applying"} 1)");
    CHECK(samples(text, "livepatchd_state")[1] == R"(livepatchd_state{state="transitioning"} 1)");
    CHECK(samples(text, "livepatchd_transition_pending_tasks")[0] == "livepatchd_transition_pending_tasks 2");

    // The ladder: two kicks, a stop, a task it would not stop, then the stall: reported
    // twice while waiting, once more when on_stall reverts; one stall.
    recorder.tasks_kicked();
    recorder.tasks_kicked();
    PendingTask stopped, kthread;
    stopped.tid = 7;
    kthread.tid = 8;
    recorder.task_remediated(stopped, "stop-continue");
    recorder.task_blocked(kthread, "kernel-thread", "not stopped: a kernel thread");
    recorder.transition_status({ServiceState::stalled, "lp_fix", "patched", 1, 1});
    recorder.transition_stalled("lp_fix", "wait", 30'000'000);
    recorder.transition_stalled("lp_fix", "wait", 31'000'000);
    recorder.transition_stalled("lp_fix", "revert", 32'000'000);
    p.state = PatchState::installed;
    patches = {p};
    recorder.transition_finished("lp_fix", "patched", "reversed", 33'000'000);
    recorder.patch_changed("lp_fix");
    recorder.transition_status({});
    text = read_file(file);
    CHECK(samples(text, "livepatchd_remediation_actions_total") ==
          std::vector<std::string>{R"(livepatchd_remediation_actions_total{rung="kick"} 2)",
                                   R"(livepatchd_remediation_actions_total{rung="stop_continue"} 1)",
                                   R"(livepatchd_remediation_actions_total{rung="stall_revert"} 1)",
                                   R"(livepatchd_remediation_actions_total{rung="stall_force"} 0)"});
    CHECK(samples(text, "livepatchd_remediation_tasks_not_stopped_total")[0] ==
          "livepatchd_remediation_tasks_not_stopped_total 1");
    CHECK(samples(text, "livepatchd_transition_stalls_total")[0] == "livepatchd_transition_stalls_total 1");
    CHECK(samples(text, "livepatchd_transitions_total")[1] ==
          R"(livepatchd_transitions_total{target="patched",outcome="reversed"} 1)");
    CHECK(samples(text, "livepatchd_transition_duration_seconds_count")[0] ==
          R"(livepatchd_transition_duration_seconds_count{target="patched"} 1)");
    CHECK(samples(text, "livepatchd_patch_state")[0] == R"(livepatchd_patch_state{patch="lp_fix",state="installed"} 1)");
    CHECK(samples(text, "livepatchd_state")[0] == R"(livepatchd_state{state="idle"} 1)");

    // The bus got every event, in order, unchanged.
    CHECK(bus.calls == std::vector<std::string>{
                           "started lp_fix patched", "changed lp_fix", "status transitioning",
                           "remediated 7 stop-continue", "blocked 8", "status stalled",
                           "stalled lp_fix wait", "stalled lp_fix wait", "stalled lp_fix revert",
                           "finished lp_fix patched reversed 33000000", "changed lp_fix",
                           "status idle"});

    // A new transition counts its own stall; on_stall: force is the force rung.
    recorder.transition_started("lp_fix", "patched");
    recorder.transition_stalled("lp_fix", "force", 30'000'000);
    text = read_file(file);
    CHECK(samples(text, "livepatchd_transition_stalls_total")[0] == "livepatchd_transition_stalls_total 2");
    CHECK(samples(text, "livepatchd_remediation_actions_total")[3] ==
          R"(livepatchd_remediation_actions_total{rung="stall_force"} 1)");

    // Idle after a failed save of the desired state is State "error", as on the bus.
    save_failed = true;
    recorder.transition_status({});
    CHECK(samples(read_file(file), "livepatchd_state")[3] == R"(livepatchd_state{state="error"} 1)");

    // lpshim.ko unloaded.
    shim.clear();
    recorder.shim_version_changed();
    text = read_file(file);
    CHECK(samples(text, "livepatchd_shim_loaded")[0] == "livepatchd_shim_loaded 0");
    CHECK(samples(text, "livepatchd_shim_info").empty());

    // Nothing changed: no write (the file's inode stays).
    struct stat before {};
    REQUIRE(::stat(file.c_str(), &before) == 0);
    recorder.patch_changed("lp_fix");
    recorder.write_now();
    struct stat after {};
    REQUIRE(::stat(file.c_str(), &after) == 0);
    CHECK(before.st_ino == after.st_ino);

    // Stopping: running 0.
    recorder.stopping();
    CHECK(samples(read_file(file), "livepatchd_running")[0] == "livepatchd_running 0");
}

TEST_CASE("the recorder reads the patches again only after an event that may change them")
{
    // At 10,000 pending tasks under emulation a read of the store and of sysfs took the event
    // loop 110 ms after a stop round, which changes no patch's state.
    TempDir dir;
    const auto file = dir.path / "livepatchd.prom";
    RecordingSink bus;
    PatchStatus p;
    p.name = "lp_fix";
    p.state = PatchState::applying;
    unsigned reads = 0;
    MetricsRecorder recorder(
        bus,
        with_patches(
            [&]() -> Result<std::vector<PatchStatus>> {
                ++reads;
                return std::vector<PatchStatus>{p};
            },
            MetricsSources{.shim_version = [] { return std::string("0.1.0"); }}),
        TextfileWriter(file), identity(), nullptr);
    recorder.write_now();
    CHECK(reads == 1);
    recorder.transition_status({ServiceState::transitioning, "lp_fix", "patched", 1, 10'000});
    CHECK(reads == 2);

    // A stall's remediation: written, from the patches as read.
    PendingTask stopped, kthread;
    stopped.tid = 7;
    kthread.tid = 8;
    recorder.transition_status({ServiceState::transitioning, "lp_fix", "patched", 1, 9'999});
    recorder.tasks_kicked();
    recorder.task_remediated(stopped, "stop-continue");
    recorder.task_blocked(kthread, "kernel-thread", "not stopped: a kernel thread");
    CHECK(reads == 2);
    std::string text = read_file(file);
    CHECK(samples(text, "livepatchd_transition_pending_tasks")[0] == "livepatchd_transition_pending_tasks 9999");
    CHECK(samples(text, "livepatchd_remediation_actions_total")[1] ==
          R"(livepatchd_remediation_actions_total{rung="stop_continue"} 1)");
    CHECK(samples(text, "livepatchd_patch_state")[2] == R"(livepatchd_patch_state{patch="lp_fix",state="applying"} 1)");

    // Each event that may change a patch's state reads them again.
    p.state = PatchState::applied;
    recorder.transition_finished("lp_fix", "patched", "completed", 1'000'000);
    CHECK(reads == 3);
    CHECK(samples(read_file(file), "livepatchd_patch_state")[3] == R"(livepatchd_patch_state{patch="lp_fix",state="applied"} 1)");
    recorder.transition_status({});
    CHECK(reads == 4);
    recorder.transition_started("lp_fix", "unpatched");
    recorder.transition_stalled("lp_fix", "wait", 30'000'000);
    recorder.patch_changed("lp_fix");
    recorder.patch_added("lp_other");
    recorder.patch_removed("lp_other");
    recorder.shim_version_changed();
    CHECK(reads == 10);

    // A reversal (0 written to the patch's enabled during its apply): the same state and count
    // of pending tasks, the other direction.
    p.state = PatchState::applying;
    recorder.transition_status({ServiceState::transitioning, "lp_fix", "patched", 1, 500});
    CHECK(reads == 11);
    p.state = PatchState::reverting;
    recorder.transition_status({ServiceState::transitioning, "lp_fix", "unpatched", 1, 500});
    CHECK(reads == 12);
    CHECK(samples(read_file(file), "livepatchd_patch_state")[4] == R"(livepatchd_patch_state{patch="lp_fix",state="reverting"} 1)");
}

TEST_CASE("the recorder's writes of one loop turn are one write, after the turn")
{
    TempDir dir;
    const auto file = dir.path / "livepatchd.prom";
    RecordingSink bus;
    sd_event* event = nullptr;
    REQUIRE(sd_event_new(&event) >= 0);
    std::atomic<unsigned> reads{0}; // counted on the recorder's thread
    {
        MetricsRecorder recorder(
            bus,
            with_patches(
                [&]() -> Result<std::vector<PatchStatus>> { ++reads; return std::vector<PatchStatus>{}; },
                MetricsSources{.shim_version = [] { return std::string("0.1.0"); }}),
            TextfileWriter(file), identity(), event);
        recorder.transition_started("lp_fix", "patched");
        recorder.patch_changed("lp_fix");
        recorder.transition_status({ServiceState::transitioning, "lp_fix", "patched", 1, 2});
        CHECK(!std::filesystem::exists(file));
        CHECK(reads == 0);
        REQUIRE(sd_event_run(event, 0) >= 0);
        // Read and written from the recorder's thread; their ends come back to the loop.
        REQUIRE(run_until(event, [&] { return std::filesystem::exists(file); }));
        CHECK(reads == 1);
        CHECK(samples(read_file(file), "livepatchd_state")[1] == R"(livepatchd_state{state="transitioning"} 1)");
        REQUIRE(sd_event_run(event, 100'000) >= 0); // the write's end: nothing more to do
        CHECK(reads == 1);
    }
    sd_event_unref(event);
}

TEST_CASE("the recorder reads the patches off the loop, and again when they change meanwhile")
{
    // A read of the store and of sysfs took a restarted livepatchd's loop 76 ms (46 ms in the
    // kernel) at 30,000 pending tasks under emulation: the writer's thread reads them. When an
    // event that may change a patch's state came during the read, they are read again.
    TempDir dir;
    const auto file = dir.path / "livepatchd.prom";
    RecordingSink bus;
    sd_event* event = nullptr;
    REQUIRE(sd_event_new(&event) >= 0);
    const auto loop_thread = std::this_thread::get_id();
    std::mutex mutex;
    std::condition_variable cv;
    bool reading = false, go = false;      // under mutex
    std::vector<std::thread::id> readers; // under mutex
    std::atomic<bool> applied{false};
    auto file_says = [&](const char* state) {
        return std::filesystem::exists(file) &&
               read_file(file).find(std::string("livepatchd_patch_state{patch=\"lp_fix\",state=\"") +
                                    state + "\"} 1") != std::string::npos;
    };
    {
        MetricsRecorder recorder(
            bus,
            with_patches(
                [&]() -> Result<std::vector<PatchStatus>> {
                    PatchStatus p;
                    p.name = "lp_fix";
                    p.state = applied ? PatchState::applied : PatchState::applying;
                    std::unique_lock lock(mutex);
                    readers.push_back(std::this_thread::get_id());
                    reading = true;
                    cv.notify_all();
                    // Read on the loop, this would wait for the loop: not for ever.
                    cv.wait_for(lock, std::chrono::seconds(2), [&] { return go; });
                    return std::vector<PatchStatus>{p};
                },
                MetricsSources{.shim_version = [] { return std::string("0.1.0"); }}),
            TextfileWriter(file), identity(), event);
        recorder.write_now();
        {
            std::unique_lock lock(mutex);
            REQUIRE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return reading; }));
        }
        // The loop goes on during the read: the patch's apply ends meanwhile.
        applied = true;
        recorder.patch_changed("lp_fix");
        {
            const std::lock_guard lock(mutex);
            go = true;
            cv.notify_all();
        }
        // The first read is written (or the rest would wait for a quiet moment), then read
        // again: the file ends with the apply's end.
        REQUIRE(run_until(event, [&] { return file_says("applied"); }));
        REQUIRE(sd_event_run(event, 100'000) >= 0);
        CHECK(file_says("applied"));
        const std::lock_guard lock(mutex);
        CHECK(readers.size() == 2);
        for (const auto& reader : readers)
            CHECK(reader != loop_thread);
    }
    sd_event_unref(event);
}

TEST_CASE("a change back during a write is written after it")
{
    // The file says A; a change to B is being written when the source goes back to A: the
    // file must end as A, not stay B until some other change.
    TempDir dir;
    const auto file = dir.path / "livepatchd.prom";
    RecordingSink bus;
    sd_event* event = nullptr;
    REQUIRE(sd_event_new(&event) >= 0);
    std::string version = "1.0.0";
    auto file_says = [&](const std::string& v) {
        return read_file(file).find("livepatchd_shim_info{version=\"" + v + "\"} 1") !=
               std::string::npos;
    };
    {
        MetricsRecorder recorder(
            bus, MetricsSources{.shim_version = [&] { return version; }},
            TextfileWriter(file), identity(), event);
        recorder.write_now();
        REQUIRE(run_until(event, [&] { return std::filesystem::exists(file) && file_says("1.0.0"); }));
        REQUIRE(sd_event_run(event, 100'000) >= 0); // the write's end
        version = "2.0.0";
        recorder.write_now(); // its end comes back to the loop only when the loop runs
        version = "1.0.0";
        recorder.write_now();
        REQUIRE(run_until(event, [&] { return file_says("2.0.0"); }));
        // The write of 2.0.0 has ended; the one after it says 1.0.0 again.
        CHECK(run_until(event, [&] { return file_says("1.0.0"); }));
    }
    sd_event_unref(event);
}

TEST_CASE("the recorder writes the file from a thread of its own, one write at a time")
{
    // A path lookup or a write may wait on the file system: never on the loop, which holds
    // the holds' SIGCONT timers. The writer says a failed write from where it wrote.
    TempDir dir;
    const auto file = dir.path / "missing" / "livepatchd.prom";
    RecordingSink bus;
    sd_event* event = nullptr;
    REQUIRE(sd_event_new(&event) >= 0);
    std::vector<std::thread::id> failed_on;
    std::mutex failed_mutex;
    auto failures = [&] {
        std::lock_guard lock(failed_mutex);
        return failed_on.size();
    };
    {
        MetricsRecorder recorder(
            bus, MetricsSources{.shim_version = [] { return std::string("0.1.0"); }},
            TextfileWriter(file,
                           [&](LogLevel, const std::string&) {
                               std::lock_guard lock(failed_mutex);
                               failed_on.push_back(std::this_thread::get_id());
                           }),
            identity(), event);
        recorder.write_now();
        // A change while the write is under way (its end has not come back to the loop yet):
        // one more write once it has, with the change.
        recorder.transition_status({ServiceState::transitioning, "lp_fix", "patched", 1, 2});
        REQUIRE(run_until(event, [&] { return recorder.snapshot().write_failures == 2; }));
        CHECK(failures() == 1); // said once, until a write works
        {
            std::lock_guard lock(failed_mutex);
            REQUIRE(!failed_on.empty());
            CHECK(failed_on[0] != std::this_thread::get_id());
        }
        // Once the directory is there, the next write puts the file in place.
        std::filesystem::create_directory(file.parent_path());
        recorder.transition_status({ServiceState::transitioning, "lp_fix", "patched", 5, 6});
        REQUIRE(run_until(event, [&] { return std::filesystem::exists(file); }));
        CHECK(samples(read_file(file), "livepatchd_transition_pending_tasks")[0] ==
              "livepatchd_transition_pending_tasks 6");
        // Stopping writes at once, on the caller's thread.
        recorder.stopping();
        CHECK(samples(read_file(file), "livepatchd_running")[0] == "livepatchd_running 0");
    }
    sd_event_unref(event);
}
