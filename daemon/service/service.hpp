// SPDX-License-Identifier: GPL-2.0-only
//
// Service: livepatchd running. It owns the parts (store, desired state, kernel view and
// control, the Manager on the bus) and one sd-event loop that drives them:
//
//  start:  configuration -> lpshim.ko loaded -> state read -> objects on the bus -> bus name
//          -> reconcile (the boot apply's plan) -> READY=1 -> the loop.
//  loop:   the transition watcher ticks (every 100 ms while a transition runs or a boot apply
//          waits, every second otherwise, at once after an action): it follows the transition
//          the kernel shows, reports its start and end (D-Bus signals, journal), marks it
//          stalled past transition.stall_timeout_ms and acts as transition.on_stall says,
//          removes the module of a patch whose unpatch transition ended, applies the next
//          patch of the boot apply, and keeps the crash-loop guard's records.
//  stop:   SIGTERM ends the loop; patches stay as they are (the kernel keeps them). During a
//          system shutdown the boot is recorded as shut down cleanly.
//
// The systemd watchdog is fed by the loop itself (sd_event_set_watchdog).
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "boot_info.hpp"
#include "config.hpp"
#include "dbus/bus_ptr.hpp"
#include "dbus/manager.hpp"
#include "desired_state.hpp"
#include "kernel_view.hpp"
#include "kmod_patch_control.hpp"
#include "patch_store.hpp"
#include "remediation.hpp"
#include "result.hpp"
#include "task_signaller.hpp"

#if LIVEPATCHD_HAVE_BPF
#include "pending_task_tracker.hpp"
#include "transition_events.hpp"
#endif

namespace livepatchd {

struct EventUnref {
    void operator()(sd_event* e) const { sd_event_unref(e); }
};
struct EventSourceUnref {
    void operator()(sd_event_source* s) const { sd_event_source_unref(s); }
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
    // The transition being followed.
    struct Watched {
        std::string patch;
        std::string target; // "patched" or "unpatched"
        std::uint64_t started_usec = 0;
        bool stalled = false;
    };

    Service(const Config& config, PatchStore store, DesiredStateFile desired_file,
            DesiredState desired, std::unique_ptr<KmodPatchControl> control,
            TaskSignaller signaller);

    Result<void> connect();
    void boot_apply();
    void tick();
    void schedule_tick(std::uint64_t delay_usec);
    // After a tick: soon while something moves; between transitions only at the crash-loop
    // guard's next deadline when transition events come from BPF, every second otherwise.
    void schedule_next_tick();
    void watch_transition_events();
    static int on_tick(sd_event_source* source, std::uint64_t usec, void* userdata);
    static int on_signal(sd_event_source* source, const signalfd_siginfo* info, void* userdata);

    // An action started a transition of patch to target: follow it, even if the kernel
    // completed it before the next tick.
    void watch(std::string_view patch, std::string_view target);
    void started_watching(std::string patch, std::string target);
    void follow_transition(const std::vector<KernelPatch>& in_kernel);
    void transition_ended(const Watched& ended, const std::vector<KernelPatch>& in_kernel);
    void on_stall(const Watched& watched);
    // The tasks the transition under way waits for: from the BPF tracker when it follows
    // lpshim's tracepoints, else from lpshim's debugfs list.
    Result<std::vector<PendingTask>> pending_tasks();
    // The remediation ladder, once per tick of a transition under way.
    void remediate(std::chrono::milliseconds elapsed, const std::vector<PendingTask>& pending);
    void stop_for_a_moment(const TaskFacts& facts);
    // ListPendingTasks: lpshim's pending tasks with what /proc and the ladder know of them.
    Result<std::vector<BlockingTask>> blocking_tasks();
    // The symbolised kernel stacks of the pending tasks, by tid (empty without BPF).
    std::map<std::uint32_t, std::vector<std::string>> pending_stacks();
    void unload_unpatched(const std::vector<KernelPatch>& in_kernel);
    void apply_next_queued(const std::vector<KernelPatch>& in_kernel);
    void keep_crash_guard();
    void record_clean_shutdown();
    void save_desired();
    void update_status_line(const TransitionStatus& status);

    Config config_;
    PatchStore store_;
    DesiredStateFile desired_file_;
    DesiredState desired_;
    SysfsKernelView kernel_;
    std::unique_ptr<KmodPatchControl> control_;
    RemediationPolicy remediation_;
    TaskSignaller signaller_;
    std::string release_;
    std::string boot_id_;
    BootFlags boot_flags_;

    EventPtr event_;
    dbus::BusPtr bus_;
    std::unique_ptr<dbus::Manager> manager_;
    EventSourcePtr timer_;
#if LIVEPATCHD_HAVE_BPF
    std::unique_ptr<TransitionEvents> events_;
    std::optional<PendingTaskTracker> tracker_; // set when it follows transitions
#endif
    EventSourcePtr events_source_;
    EventSourcePtr sigterm_;
    EventSourcePtr sigint_;

    std::optional<Watched> watched_;
    // The tasks seen pending in the watched transition, by tid.
    struct Seen {
        std::uint64_t first_usec = 0;
        unsigned kicks = 0;
        std::vector<std::string> actions;
    };
    std::map<std::uint32_t, Seen> seen_;
    std::deque<std::string> boot_queue_; // the boot apply's patches still to apply, in order
    bool oops_seen_ = false;             // TAINT_DIE was set at the last look
    std::set<std::string, std::less<>> cannot_unload_; // modules whose removal failed
    std::string status_line_;
};

} // namespace livepatchd
