// SPDX-License-Identifier: GPL-2.0-only
//
// Service: livepatchd running. It wires the parts together and drives them from one sd-event
// loop; the decisions are the parts' own (PatchOperations, TransitionWatcher, CrashGuard,
// RemediationPolicy, decide_stall), the bus is the adapter's (dbus::Manager).
//
//  start:  (main has already continued what a crashed livepatchd left stopped) configuration
//          -> lpshim.ko loaded -> store, desired state -> objects on the bus -> bus name ->
//          settle what a crash left pending -> the boot apply's plan -> READY=1 -> the loop.
//  loop:   a tick (every 100 ms while a transition runs or the boot apply waits; between
//          transitions only when a BPF event or the crash-loop guard's deadline says so, every
//          second without BPF): the watcher follows the transition the kernel shows, the
//          ladder remediates, a stall is acted on (decide_stall), an unpatched module is
//          removed, the next boot apply patch goes, the crash-loop guard's records are kept.
//  stop:   SIGTERM continues every process a hold keeps stopped, then ends the loop; patches
//          stay as they are (the kernel keeps them). During a system shutdown the boot is
//          recorded as shut down cleanly.
//
// Every duration is on CLOCK_MONOTONIC (the crash-loop guard's on CLOCK_BOOTTIME); the wall
// clock is only shown.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/loop_priority.hpp"
#include "common/off_loop_queue.hpp"
#include "common/off_loop_work.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "config/config.hpp"
#include "dbus/bus_ptr.hpp"
#include "dbus/manager.hpp"
#include "kernel/boot_info.hpp"
#include "kernel/kernel_view.hpp"
#include "kernel/kmod_patch_control.hpp"
#include "metrics/recorder.hpp"
#include "remediation/kick_log.hpp"
#include "remediation/remediation.hpp"
#include "remediation/remediation_executor.hpp"
#include "remediation/task_signaller.hpp"
#include "service/patch_operations.hpp"
#include "service/pending_list_pool.hpp"
#include "service/retired_entries.hpp"
#include "service/transition_watcher.hpp"
#include "store/desired_state.hpp"
#include "store/patch_store.hpp"

#if LIVEPATCHD_HAVE_BPF
#include "bpf/libbpf_messages.hpp"
#include "bpf/pending_task_lister.hpp"
#include "bpf/pending_task_tracker.hpp"
#include "bpf/transition_events.hpp"
#endif

namespace livepatchd {

struct EventUnref {
    void operator()(sd_event* e) const { sd_event_unref(e); }
};
struct EventSourceUnref {
    void operator()(sd_event_source* s) const { sd_event_source_disable_unref(s); }
};
using EventPtr = std::unique_ptr<sd_event, EventUnref>;
using EventSourcePtr = std::unique_ptr<sd_event_source, EventSourceUnref>;

class Service {
public:
    // Everything up to READY=1. Errors name what is missing and how to get it.
    static Result<std::unique_ptr<Service>> start(const Config& config,
                                                  const std::filesystem::path& state_directory);
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;
    ~Service();

    // Runs the loop until SIGTERM or SIGINT; the exit status for main().
    int run();

private:
    Service(const Config& config, std::filesystem::path state_directory, PatchStore store,
            DesiredStateFile desired_file, std::unique_ptr<KmodPatchControl> control,
            std::unique_ptr<StopRecords> records);

    Result<void> connect();
    // What a tick reads of the kernel, on kernel_reader_'s thread: sysfs attributes that take
    // milliseconds, and once 243 ms with 30,000 tasks pending under emulation.
    struct KernelLook {
        Result<std::vector<KernelPatch>> patches = Error{ENOMEM, "out of memory"};
        std::uint64_t read_usec = 0; // CLOCK_MONOTONIC, right after the patches were read
        std::string shim_version;
        std::optional<std::uint64_t> oops_count; // read_oops_count(); nullopt: unreadable
    };
    KernelLook read_kernel() const;
    void tick();
    // The rest of the tick once its look at the kernel is read; started and consumed_usec:
    // when it started and when it had read lpshim's events (events of them).
    void tick_with(const KernelLook& look, std::uint64_t started, std::uint64_t consumed_usec,
                   int events);
    // An operation's blocking work has ended: the transition events and the tick go on.
    void operation_ended();
    void schedule_tick(std::uint64_t delay_usec);
    void schedule_next_tick();
    void watch_transition_events();
    static int on_tick(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    static int on_signal(sd_event_source* source, const signalfd_siginfo* info,
                         void* userdata) noexcept;

    // An action started a transition of patch to target, or (reversal) turned it around.
    void watch(std::string_view patch, std::string_view target, bool reversal = false);
    // What the watcher said, told at once (signals, journal, the desired state), without a
    // read of the kernel's patches of its own (what an atomic replace took the place of is
    // known from its load: PatchOperations::transition_ended). The patches' PropertiesChanged
    // read their statuses off the loop (dbus::Manager::patch_changed, patches_reader_).
    void handle(const std::vector<TransitionChange>& events);
    // read_usec: when in_kernel was read (the starts lpshim made until then are in it).
    void follow_transition(const std::vector<KernelPatch>& in_kernel, std::uint64_t read_usec);
    void report_stall_waiting(const WatchedTransition& watched, std::uint64_t elapsed,
                              const std::string& reason);
    // The tick's pending tasks are listed, for the transition still watched: the ladder and
    // the stall act on them.
    void follow_pending(Result<std::vector<PendingTask>> tasks);
    void act_on_stall(const std::vector<PendingTask>& pending);
    // The pending tasks of the transition under way, to done, from the loop: from a walk
    // read off it (PendingTaskLister), or from lpshim's list (without BPF, or when the BPF map
    // cannot be trusted).
    using PendingDone = std::function<void(Result<std::vector<PendingTask>>)>;
    using Stacks = std::map<std::uint32_t, std::vector<std::string>>;
    void list_pending(PendingDone done);
    // lpshim's debugfs list, read on list_reader_'s thread (on the loop without it), to done.
    void read_lpshim_list(PendingDone done);
    // Kernel stacks of the pending tasks with these tids, to done, from the loop ({} without
    // BPF).
    // walked: the stacks come from a walk, which has an entry for every one of tids still
    // pending.
    void list_stacks(const std::set<std::uint32_t>& tids,
                     std::function<void(Stacks, bool walked)> done);
    void remediate(std::chrono::milliseconds elapsed, const std::vector<PendingTask>& pending);
    // The stops and refusals of a round, once their stacks are read.
    void stop_and_report(std::uint64_t seq, const std::vector<Remedy>& stops,
                         const std::vector<std::pair<TaskFacts, std::string>>& refused,
                         const Stacks& stacks, bool walked);
    void stop_for_a_moment(const TaskFacts& facts, const Stacks& stacks);
    // What ListPendingTasks says of a pending task: its /proc and sd-login facts, how long it
    // has blocked, what the ladder did about it.
    BlockingTask blocking_task(const PendingTask& task, TaskFactsLook& look);
    // transition.json: what a restarted livepatchd needs to go on following the transition
    // under way (when it started), written at its start and reversal, removed at its end.
    void save_transition_record();
    void remove_transition_record();
    void write_transition_record(std::function<void()> write, bool skippable);
    void resume_transition_record(const std::vector<KernelPatch>& in_kernel);
    // sd_notify STATUS=; counted: the pending tasks were counted (not yet at a transition's start).
    void update_status_line(const TransitionStatus& status, bool counted = true);
    TransitionStatus transition_status(std::uint32_t pending) const;
    // Where the service's events go: the metrics recorder in front of the bus, or the bus.
    EventSink& sink();

    Config config_;
    std::filesystem::path state_directory_;
    UniqueFd state_fd_;
    PatchStore store_;
    DesiredStateFile desired_file_;
    SysfsKernelView kernel_;
    std::unique_ptr<KmodPatchControl> control_;
    RemediationPolicy remediation_;
    TaskSignaller signaller_;
    std::string release_;
    std::string boot_id_;
    BootFlags boot_flags_;
    std::unique_ptr<PatchOperations> operations_;
    TransitionWatcher watcher_;
    // Real-time while watcher_ watches a transition, for each busy stretch's first 20 ms (run()).
    LoopPriority loop_priority_;

    EventPtr event_;
    dbus::BusPtr bus_;
    std::unique_ptr<dbus::Manager> manager_;
    std::unique_ptr<metrics::MetricsRecorder> metrics_; // unset: metrics.textfile is ""
    std::unique_ptr<RemediationExecutor> executor_;
    EventSourcePtr timer_;
    EventSourcePtr guard_timer_;
#if LIVEPATCHD_HAVE_BPF
    std::unique_ptr<TransitionEvents> events_;
    std::optional<PendingTaskTracker> tracker_; // set when it follows transitions
    std::unique_ptr<PendingTaskLister> lister_;  // tracker_'s walks, set with it
#endif
    std::unique_ptr<PendingListPool> list_pool_; // the looks' lists' storage, set with event_
    EventSourcePtr events_source_;
    EventSourcePtr sigterm_;
    EventSourcePtr sigint_;
    // Runs an Apply's blocking work; destroyed first (it waits for the work, which uses
    // operations_, control_ and the store).
    std::unique_ptr<OffLoopWork> off_loop_;
    // Reads lpshim's debugfs list; destroyed before control_, which its reads use. Its reads
    // not yet started are skipped once closing_reads_ is set (~Service).
    std::atomic<bool> closing_reads_ = false;
    std::unique_ptr<OffLoopQueue> list_reader_;
    // Turns a walk's records into a look's list (list_pending); its works touch no member.
    std::unique_ptr<OffLoopQueue> list_converter_;
    // Reads the tick's look at the kernel (read_kernel()); destroyed before kernel_.
    std::unique_ptr<OffLoopQueue> kernel_reader_;
    // Reads the patches for the Manager's PatchStateChanged; destroyed before operations_,
    // whose read_patches() its works call.
    std::unique_ptr<OffLoopQueue> patches_reader_;
    // Writes and removes the transition record off the loop (a slow file system must not hold
    // it), in order; a write only if none was asked for after it (record_asked_, the count of
    // those asked for); its works capture what they write. Destroyed before state_fd_ and
    // record_asked_: what is still queued is written first.
    std::atomic<std::uint64_t> record_asked_ = 0;
    std::unique_ptr<OffLoopQueue> record_writer_;
    bool tick_reading_ = false; // a tick waits for its look at the kernel: it goes on from there
    bool stop_signalled_ = false; // SIGTERM or SIGINT ended the loop
    bool tick_held_ = false;    // a tick found an operation's work running: its end ticks
    bool kick_writing_ = false; // the work running is the ladder's kick
    // Counts what the loop did that a look at the kernel read before it would not show: an
    // operation's end, a transition watched, turned back or forced, lpshim's events read. A
    // tick whose look was read across one of them reads again.
    std::uint64_t kernel_acts_ = 0;

    // The tasks of the watched transition that livepatchd acted on, or whose list (lpshim's
    // debugfs one) gives no time since when they block, by tid.
    struct Seen {
        std::uint64_t first_usec = 0; // CLOCK_MONOTONIC, when blocked_since_usec is 0
        std::vector<std::string> actions;
    };
    using SeenMap = std::unordered_map<std::uint32_t, Seen>;
    SeenMap seen_;
    // The last transition's seen_ (tens of thousands of entries after a stall), destroyed a
    // slice per idle turn instead of in the dispatch that starts the next transition.
    std::unique_ptr<RetiredEntries<SeenMap>> retired_seen_;
    KickLog kicks_; // the watched transition's kicks
    // Where the stop rung's next round goes on reading /proc (an index into the pending list):
    // a round reads for at most facts_budget_usec, so thousands of pending tasks are looked at
    // over several rounds instead of stopping the loop for seconds.
    std::size_t facts_cursor_ = 0;
    bool stall_acted_ = false;            // on_stall's action was taken in this transition
    std::string stall_waiting_;           // why it waits instead, as last reported
    std::uint64_t stall_looked_usec_ = 0; // when decide_stall last decided
    std::uint64_t last_tick_usec_ = 0;    // how long the last tick() took, its listing too
    std::uint64_t look_remedy_usec_ = 0;  // the last look's time in remediate()
    std::uint64_t look_stall_usec_ = 0;   // and in act_on_stall()
    std::uint64_t look_shown_usec_ = 0;   // and in showing its count (bus, metrics, status)
    std::uint64_t tick_started_usec_ = 0; // when the tick under way started
    bool tick_listing_ = false;           // a tick waits for its list of pending tasks
    // Counts the watched transition's changes (started, reversed, ended): what was listed or
    // decided for one is not acted on in another.
    std::uint64_t transition_seq_ = 0;
    // The watched transition's status was pushed since it started or turned back (before the
    // next look), with the pending tasks the last look of it counted, if one has.
    bool status_shown_ = false;
    std::optional<std::uint32_t> pending_counted_;
    // The blockers' facts read so far for the stall's next decision, by tid, with when they
    // were read (CLOCK_MONOTONIC): act_on_stall(). unreadable: /proc could not be parsed (the
    // next look leaves it out of its decision, as the look that read it would have, and erases
    // it for a later look to read again).
    struct StallFacts {
        TaskFacts facts;
        std::uint64_t read_usec = 0;
        bool unreadable = false;
    };
    using StallFactsMap = std::unordered_map<std::uint32_t, StallFacts>;
    StallFactsMap stall_facts_;
    // Reads blockers' facts into stall_facts_, a batch at a time, on facts_reader_'s thread
    // (on the loop without it): one /proc read took 60 ms at 30,000 pending tasks under
    // emulation, the process's signal lock taken by the kernel's work on its other threads.
    void read_stall_facts(std::vector<PendingTask> tasks);
    std::unique_ptr<OffLoopQueue> facts_reader_; // set with event_; its works touch no member
    bool stall_reading_ = false; // a batch is being read
    // Bumped when stall_facts_ is retired: a batch read for the facts before is dropped.
    std::uint64_t stall_facts_epoch_ = 0;
    // Where stall_facts_ goes when done with, destroyed a slice per turn; set with event_.
    std::unique_ptr<RetiredEntries<StallFactsMap>> retired_facts_;
    std::uint64_t stall_facts_since_usec_ = 0; // when the first of stall_facts_ was read
    std::string status_line_;
    std::string pending_fallback_; // why pending tasks come from debugfs, as last logged
    std::string shim_version_; // as last announced (ShimVersion)
};

} // namespace livepatchd
