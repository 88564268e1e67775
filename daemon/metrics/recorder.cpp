// SPDX-License-Identifier: GPL-2.0-only
#include "metrics/recorder.hpp"

#include "common/dispatch_label.hpp"
#include "common/journal.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "config/config.hpp"
#include "metrics/render.hpp"

namespace livepatchd::metrics {

MetricsRecorder::MetricsRecorder(EventSink& inner, MetricsSources sources, TextfileWriter writer,
                                 MetricsSnapshot identity, sd_event* event)
    : inner_(inner), sources_(std::move(sources)), writer_(std::move(writer)),
      snapshot_(std::move(identity))
{
    if (!event)
        return;
    sd_event_source* source = nullptr;
    if (sd_event_add_defer(event, &source, on_deferred, this) >= 0) {
        deferred_.reset(source);
        (void)sd_event_source_set_enabled(source, SD_EVENT_OFF);
    }
    // Without a thread, the file is written on the loop, as before there was one.
    if (auto queue = OffLoopQueue::create(event, "the metrics textfile's write",
                                              OffLoopQueue::Priority::below_loop); queue)
        queue_ = std::move(*queue);
    else
        journal::log(LogLevel::warning, "the metrics textfile is written from the event loop: " +
                                            queue.error().message);
}

MetricsRecorder::~MetricsRecorder() = default;

int MetricsRecorder::on_deferred(sd_event_source*, void* userdata) noexcept
{
    label_dispatch("the metrics textfile");
    try {
        static_cast<MetricsRecorder*>(userdata)->write_now();
    } catch (...) {
    }
    return 0;
}

void MetricsRecorder::changed()
{
    if (deferred_)
        (void)sd_event_source_set_enabled(deferred_.get(), SD_EVENT_ONESHOT);
    else
        write_now();
}

void MetricsRecorder::write_now()
{
    // During a read or a write, its end reads the sources and compares with what it wrote
    // (which this snapshot may have changed back from): reading them now would be read again.
    if (writing_) {
        rewrite_ = true;
        return;
    }
    // Read again only after an event that may change them: at 10,000 pending tasks under
    // emulation a read of the store and of sysfs took the loop 110 ms after a stop round,
    // which changes none of them. A failed read (sysfs, the store) keeps the patches as last
    // known: the bus reports that error to its callers; the file stays what it was.
    if (!sources_.read_patches || !sources_.patch_states || !patches_stale_) {
        write_snapshot();
        return;
    }
    if (!queue_) {
        if (auto read = sources_.read_patches())
            take_patches(*read);
        write_snapshot();
        return;
    }
    auto read = std::make_shared<Result<PatchReads>>(PatchReads{});
    writing_ = true;
    try {
        queue_->post([this, read] { *read = sources_.read_patches(); },
                     [this, read, changes = patch_changes_] {
                         writing_ = false;
                         if (*read)
                             take_patches(**read);
                         // What came during the read is in this snapshot, but for an event
                         // that may change the patches: what was read may be older than its
                         // change (an apply's end, after the read of sysfs). Written all the
                         // same (the rest must not wait for a quiet moment), read again after.
                         rewrite_ = changes != patch_changes_;
                         if (rewrite_)
                             patches_stale_ = true;
                         write_snapshot();
                         if (!writing_ && std::exchange(rewrite_, false))
                             write_now(); // nothing new to write: read again now
                     });
    } catch (...) {
        writing_ = false; // not queued: the next change writes
        throw;
    }
}

void MetricsRecorder::patches_may_change()
{
    patches_stale_ = true;
    ++patch_changes_;
}

void MetricsRecorder::take_patches(const PatchReads& read)
{
    std::vector<PatchMetric> patches;
    const std::vector<PatchStatus> statuses = sources_.patch_states(read);
    patches.reserve(statuses.size());
    for (const PatchStatus& status : statuses)
        patches.push_back({status.name, status.state, status.forced});
    std::sort(patches.begin(), patches.end(),
              [](const PatchMetric& a, const PatchMetric& b) { return a.name < b.name; });
    snapshot_.patches = std::move(patches);
    patches_stale_ = false;
}

void MetricsRecorder::write_snapshot()
{
    if (sources_.shim_version) {
        snapshot_.shim_version = sources_.shim_version();
        snapshot_.shim_loaded = !snapshot_.shim_version.empty();
    }
    if (written_ && *written_ == snapshot_)
        return;
    std::string text = render_textfile(snapshot_);
    if (!queue_) {
        const bool ok = static_cast<bool>(writer_.write(text));
        written(snapshot_, ok, writer_.failures());
        return;
    }
    struct Outcome {
        bool ok = false;
        std::uint64_t failures = 0;
    };
    auto outcome = std::make_shared<Outcome>();
    writing_ = true;
    try {
        queue_->post(
            [this, outcome, text = std::move(text)] {
                outcome->ok = static_cast<bool>(writer_.write(text));
                outcome->failures = writer_.failures();
            },
            [this, outcome, snapshot = snapshot_] {
                writing_ = false;
                written(snapshot, outcome->ok, outcome->failures);
                if (std::exchange(rewrite_, false))
                    write_now();
            });
    } catch (...) {
        writing_ = false; // not queued: the next change writes
        throw;
    }
}

void MetricsRecorder::written(const MetricsSnapshot& snapshot, bool ok, std::uint64_t failures)
{
    if (ok)
        written_ = snapshot;
    // The failures counted include this write's only from the next one on.
    snapshot_.write_failures = failures;
}

void MetricsRecorder::stopping()
{
    snapshot_.running = false;
    // The write under way ends first (its continuation may start the next one), then this one
    // is made here: the loop is ending, nothing would run its continuation.
    // Four at most: the read or the write under way, the write after a read, and the read and
    // the write a change during them starts.
    for (int i = 0; i < 4 && queue_ && writing_; i++)
        queue_->flush();
    queue_.reset();
    write_now();
}

void MetricsRecorder::transition_started(std::string_view patch, std::string_view target)
{
    patches_may_change();
    inner_.transition_started(patch, target);
    stall_counted_ = false;
    changed();
}

void MetricsRecorder::transition_finished(std::string_view patch, std::string_view target,
                                          std::string_view outcome, std::uint64_t duration_usec)
{
    inner_.transition_finished(patch, target, outcome, duration_usec);
    patches_may_change();
    const std::size_t t = index_of(targets, target);
    const std::size_t o = index_of(outcomes, outcome);
    if (t < targets.size() && o < outcomes.size()) {
        ++snapshot_.transitions[t][o];
        snapshot_.durations[t].observe(duration_usec);
    }
    changed();
}

void MetricsRecorder::transition_stalled(std::string_view patch, std::string_view action,
                                         std::uint64_t elapsed_usec)
{
    inner_.transition_stalled(patch, action, elapsed_usec);
    patches_may_change();
    // Said once when on_stall acts, or each time the reason to wait instead changes: one
    // stall per transition.
    if (!stall_counted_) {
        stall_counted_ = true;
        ++snapshot_.stalls;
    }
    if (action == to_string(StallAction::revert))
        ++snapshot_.remediation_actions[index_of(rungs, "stall_revert")];
    else if (action == to_string(StallAction::force))
        ++snapshot_.remediation_actions[index_of(rungs, "stall_force")];
    changed();
}

void MetricsRecorder::transition_status(const TransitionStatus& status)
{
    inner_.transition_status(status);
    ServiceState state = status.state;
    if (state == ServiceState::idle && sources_.save_failed && sources_.save_failed())
        state = ServiceState::error;
    // A transition turned back (0 written to its patch's enabled) keeps the state.
    const bool turned = status.patch != status_patch_ || status.target != status_target_;
    if (state == snapshot_.state && status.pending_tasks == snapshot_.pending_tasks && !turned)
        return;
    // (A count of pending tasks changes no patch's state.)
    if (state != snapshot_.state || turned)
        patches_may_change();
    status_patch_ = status.patch;
    status_target_ = status.target;
    snapshot_.state = state;
    snapshot_.pending_tasks = status.pending_tasks;
    changed();
}

void MetricsRecorder::task_blocked(const PendingTask& task, std::string_view kind,
                                   std::string_view note)
{
    inner_.task_blocked(task, kind, note);
    ++snapshot_.tasks_not_stopped;
    changed();
}

void MetricsRecorder::task_remediated(const PendingTask& task, std::string_view action)
{
    inner_.task_remediated(task, action);
    if (action == "stop-continue")
        ++snapshot_.remediation_actions[index_of(rungs, "stop_continue")];
    changed();
}

void MetricsRecorder::patch_changed(std::string_view name)
{
    patches_may_change();
    inner_.patch_changed(name);
    changed();
}

void MetricsRecorder::patch_added(std::string_view name)
{
    patches_may_change();
    inner_.patch_added(name);
    changed();
}

void MetricsRecorder::patch_removed(std::string_view name)
{
    patches_may_change();
    inner_.patch_removed(name);
    changed();
}

void MetricsRecorder::tasks_kicked()
{
    ++snapshot_.remediation_actions[index_of(rungs, "kick")];
    changed();
}

void MetricsRecorder::shim_version_changed()
{
    patches_may_change();
    changed();
}

} // namespace livepatchd::metrics
