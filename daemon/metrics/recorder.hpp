// SPDX-License-Identifier: GPL-2.0-only
//
// MetricsRecorder: the service's events, counted into a MetricsSnapshot and written to the
// textfile (TextfileWriter) whenever the snapshot changed: at every state change, never on a
// timer. It sits between the service and the D-Bus adapter as an EventSink that passes every
// event on, so the metrics see exactly what the bus sees; what the bus is not told (a kick of
// the pending tasks, lpshim.ko coming or going) the service tells it directly.
//
// The events of one turn of the event loop make one write (a deferred sd-event source): an
// apply reports its start, the patch's change and the transition's status together. The
// patches and lpshim's version are read at the write, from the same sources as the bus
// (PatchOperations::read_patches() and statuses_from(), KernelView::shim_version()); the
// patches only after an event that may change them (not a count of pending tasks, nor a task's
// remediation). The file is written, and the store and sysfs read for the patches, from a
// thread of its own (OffLoopQueue): a path lookup or a write may wait on the file system for
// as long as it likes (176 ms asleep in one, at 30,000 pending tasks under emulation; a read of
// the patches took a restarted livepatchd's loop 76 ms), and the loop holds the holds' SIGCONT
// timers. When an event that may change the patches came during their read, what was read is
// written (the rest of the snapshot does not wait) and read again. One read or write at a time;
// what changes meanwhile makes one write after it.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/off_loop_queue.hpp"
#include "common/result.hpp"
#include "metrics/snapshot.hpp"
#include "metrics/textfile_writer.hpp"
#include "service/event_sink.hpp"
#include "service/status.hpp"

namespace livepatchd::metrics {

struct MetricsSources {
    // The patches: read from the writer's thread (or the loop, without one), made into states
    // on the loop. Both or neither.
    std::function<Result<PatchReads>()> read_patches = nullptr;
    std::function<std::vector<PatchStatus>(const PatchReads&)> patch_states = nullptr;
    std::function<std::string()> shim_version; // "" while lpshim.ko is not loaded
    // A save of the desired state failed: State "error" while idle, as on the bus.
    std::function<bool()> save_failed = nullptr;
};

class MetricsRecorder final : public EventSink {
public:
    // identity: version, kernel_release and start_time_usec; the rest is counted here.
    // event: the loop whose turns are coalesced into one write; nullptr writes at each event.
    MetricsRecorder(EventSink& inner, MetricsSources sources, TextfileWriter writer,
                    MetricsSnapshot identity, sd_event* event);
    MetricsRecorder(const MetricsRecorder&) = delete;
    MetricsRecorder& operator=(const MetricsRecorder&) = delete;
    ~MetricsRecorder() override;

    // EventSink: passed on to inner, then counted.
    void transition_started(std::string_view patch, std::string_view target) override;
    void transition_finished(std::string_view patch, std::string_view target,
                             std::string_view outcome, std::uint64_t duration_usec) override;
    void transition_stalled(std::string_view patch, std::string_view action,
                            std::uint64_t elapsed_usec) override;
    void transition_status(const TransitionStatus& status) override;
    void task_blocked(const PendingTask& task, std::string_view kind,
                      std::string_view note) override;
    void task_remediated(const PendingTask& task, std::string_view action) override;
    void patch_changed(std::string_view name) override;
    void patch_added(std::string_view name) override;
    void patch_removed(std::string_view name) override;

    // What the bus is not told: the kick rung ran; lpshim.ko was loaded or unloaded.
    void tasks_kicked();
    void shim_version_changed();

    // Reads the sources and writes the file if the snapshot changed (at start, and what a
    // deferred write does): from the writer's thread when there is one (the read or the write
    // has not ended when this returns), at once otherwise.
    void write_now();
    // livepatchd is stopping: running becomes 0, written at once, on the caller's thread, after
    // any write under way.
    void stopping();

    const MetricsSnapshot& snapshot() const { return snapshot_; }

private:
    void changed();
    void patches_may_change(); // an event that may change a patch's state
    void take_patches(const PatchReads& read);
    // The snapshot written, if it changed (write_now() once the patches are read).
    void write_snapshot();
    static int on_deferred(sd_event_source* source, void* userdata) noexcept;
    // The write's result, on the loop (or at once without a writer's thread).
    void written(const MetricsSnapshot& snapshot, bool ok, std::uint64_t failures);

    EventSink& inner_;
    MetricsSources sources_;
    TextfileWriter writer_;
    MetricsSnapshot snapshot_;
    std::optional<MetricsSnapshot> written_;
    bool stall_counted_ = false; // this transition's stall is counted
    // An event that may change a patch's state came since the patches were read (a task's
    // remediation or a count of pending tasks changes none).
    bool patches_stale_ = true;
    std::uint64_t patch_changes_ = 0; // events that may change a patch's state, counted
    std::string status_patch_, status_target_; // the transition last reported
    struct SourceUnref {
        void operator()(sd_event_source* s) const { sd_event_source_disable_unref(s); }
    };
    std::unique_ptr<sd_event_source, SourceUnref> deferred_;
    // Uses writer_ from its thread (and only it, while a write is under way): declared after
    // it, so destroyed first (its destructor waits for the write).
    std::unique_ptr<OffLoopQueue> queue_;
    bool writing_ = false;  // a read or a write is under way on queue_'s thread
    bool rewrite_ = false;  // the snapshot changed meanwhile: write again once it has ended
};

} // namespace livepatchd::metrics
