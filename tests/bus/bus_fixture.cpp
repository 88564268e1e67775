// SPDX-License-Identifier: GPL-2.0-only
//
// The service's bus side over a fake kernel, for the bus tests: the real Manager, PatchStore
// and DesiredStateFile on a scratch state directory, with FakeKernelView and a PatchControl
// that moves patches through transitions in that fake kernel. It connects to the system bus
// named by DBUS_SYSTEM_BUS_ADDRESS (the test's private dbus-daemon), takes the bus name, and
// runs until SIGTERM.
//
// The transition signals come as in the service: a TransitionWatcher follows the fake kernel
// every 20 ms, and lpshim's transition events (the BPF records, with their time) reach it late,
// after the action that caused them, and are read before each look (follow_kernel_event).
//
// A test-only object, /org/livepatchd/Test (org.livepatchd.Test), lets the tests end the
// fake kernel's transition, as the kernel would on its own (or make every transition end at
// once: SetInstant), let lp_held's slow module load finish (ReleaseLoad), force it by hand (ForceByHand), make the races of the review of issue 18
// happen (RevertByHandSeenLate, SetCompleteBeforeRevert), unload lpshim (SetShimLoaded), and
// start a fake polkit on the
// bus (a second connection owning org.freedesktop.PolicyKit1) whose answers depend on the
// action: kick and revert allowed, install allowed only interactively (a "challenge"
// otherwise), everything else denied. It records the last question it was asked.
//
// With METRICS_TEXTFILE, the events also go through the MetricsRecorder that writes it, as in
// the service (the transition's State and PendingTasks come from the service's tick, which
// this fixture does not run: the unit test test_metrics covers those).
//
// Usage: bus_fixture STATE_DIRECTORY KERNEL_RELEASE [METRICS_TEXTFILE]
#include <signal.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "common/off_loop_queue.hpp"
#include "common/off_loop_work.hpp"
#include "dbus/bus_ptr.hpp"
#include "dbus/manager.hpp"
#include "dbus/system_bus.hpp"
#include "fake_kernel_view.hpp"
#include "metrics/recorder.hpp"
#include "service/transition_report.hpp"
#include "service/transition_watcher.hpp"

using namespace livepatchd;
using namespace livepatchd::test;

namespace {

constexpr std::string_view boot_id = "0123456789abcdef0123456789abcdef";

std::uint64_t monotonic_now()
{
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}


// An Apply's blocking work (FakePatchControl::apply) runs on a thread of its own while the loop
// reads the fake kernel (the properties, ListPendingTasks), and the metrics writer's thread reads
// it while the loop changes it (the test hooks): each holds kernel_mutex. The timer's look waits
// while the work runs (PatchOperations::busy()), as the service's tick does.
std::mutex kernel_mutex;

class LockedKernelView final : public KernelView {
public:
    explicit LockedKernelView(const FakeKernelView& kernel) : kernel_(kernel) {}
    bool shim_loaded() const override
    {
        std::lock_guard lock(kernel_mutex);
        return kernel_.shim_loaded();
    }
    std::string shim_version() const override
    {
        std::lock_guard lock(kernel_mutex);
        return kernel_.shim_version();
    }
    Result<std::vector<KernelPatch>> patches() const override
    {
        std::lock_guard lock(kernel_mutex);
        return kernel_.patches();
    }
    bool module_loaded(std::string_view name) const override
    {
        std::lock_guard lock(kernel_mutex);
        return kernel_.module_loaded(name);
    }

private:
    const FakeKernelView& kernel_;
};

// lp_held's module loads until ReleaseLoad (at most 30 s), as a finit_module() that takes long;
// so does the next operation's blocking work after HoldWork.
bool hold_next_work = false; // the loop's
// The next read of the patches for PatchStateChanged waits for ReleaseLoad on its thread too
// (HoldPatchesRead), as a slow sysfs read would.
bool hold_next_patches_read = false; // the loop's
std::mutex load_mutex;
std::condition_variable load_released_cv;
bool load_released = false; // under load_mutex

void wait_for_release()
{
    std::unique_lock lock(load_mutex);
    (void)load_released_cv.wait_for(lock, std::chrono::seconds(30), [] { return load_released; });
    load_released = false;
}

class FakePatchControl final : public PatchControl {
public:
    explicit FakePatchControl(FakeKernelView& kernel) : kernel_(kernel) {}

    Result<void> apply(std::string_view name, int fd) override
    {
        if (fd < 0)
            return Error{EBADF, "no fd"};
        if (name == "lp_held")
            wait_for_release();
        std::lock_guard lock(kernel_mutex);
        if (!kernel_.loaded)
            return Error{ENODEV, "lpshim.ko is not loaded"};
        // The kernel's refusals, as finit_module() reports them (docs/kernel-messages.md).
        if (name == "lp_fail_load")
            return Error{EINVAL, "finit_module(lp_fail_load): Invalid argument"};
        if (name == "lp_ftrace_busy") // a function another ftrace user redirects
            return Error{EBUSY, "loading the module of lp_ftrace_busy failed: Device or "
                                "resource busy; the kernel log says why: journalctl -k -g "
                                "lpshim"};
        if (name == "lp_pre_patch_enodev") // its pre_patch callback returned -ENODEV
            return Error{ENODEV, "loading the module of lp_pre_patch_enodev failed: No such "
                                 "device; the kernel log says why: journalctl -k -g lpshim"};
        // lpshim's EAGAIN: another patch is in transition (started outside livepatchd since
        // the service looked), whether it still is when the service looks again or not.
        if (name == "lp_raced") {
            kernel_.add("lp_outside", true, true);
            return Error{EAGAIN, "loading the module of lp_raced failed: Resource temporarily "
                                 "unavailable; the kernel log says why: journalctl -k -g lpshim"};
        }
        if (name == "lp_raced_ended")
            return Error{EAGAIN, "loading the module of lp_raced_ended failed: Resource "
                                 "temporarily unavailable; the kernel log says why: journalctl "
                                 "-k -g lpshim"};
        // An ftrace conflict while a transition was started outside livepatchd meanwhile.
        if (name == "lp_ftrace_busy_raced") {
            kernel_.add("lp_outside", true, true);
            return Error{EBUSY, "loading the module of lp_ftrace_busy_raced failed: Device or "
                                "resource busy; the kernel log says why: journalctl -k -g "
                                "lpshim"};
        }
        kernel_.add(std::string(name), true, true);
        started(name, "patched");
        if (instant)
            complete(name);
        return {};
    }
    Result<void> unload(std::string_view) override { return {}; }
    Result<void> revert(std::string_view name) override
    {
        std::lock_guard lock(kernel_mutex); // off the loop, as an Apply's load
        // SetCompleteBeforeRevert: the kernel completes the transition to patched between the
        // service's look and its write, which then starts a new transition to unpatched.
        if (complete_before_revert)
            complete(name);
        for (KernelPatch& p : kernel_.kernel_patches)
            if (p.name == name) {
                // Writing 0 to enabled: the unpatch transition, or the reversal of the
                // transition to patched; lpshim reports either as a transition start.
                p.enabled = false;
                p.transition = true;
                started(name, "unpatched");
            }
        if (instant)
            complete(name);
        return {};
    }
    Result<void> enable(std::string_view name) override
    {
        for (KernelPatch& p : kernel_.kernel_patches)
            if (p.name == name && p.transition && !p.enabled) {
                p.enabled = true;
                started(name, "patched");
            }
        return {};
    }
    Result<void> kick() override
    {
        std::lock_guard lock(kernel_mutex);
        ++kicks;
        return {};
    }
    Result<void> force(std::string_view name) override
    {
        std::lock_guard lock(kernel_mutex);
        complete(name);
        return {};
    }
    Result<std::vector<PendingTask>> pending_tasks() const override
    {
        std::lock_guard lock(kernel_mutex);
        ++list_reads;
        std::vector<PendingTask> tasks;
        for (const KernelPatch& p : kernel_.kernel_patches)
            if (p.transition) {
                tasks.push_back({4242, 4240, comm, "blocked in a patched function",
                                 "cmdline_proc_show"});
                for (std::uint32_t i = 0; i < more_pending; i++)
                    tasks.push_back({100000 + i, 100000, "fake_sleeper", "sleeping-in-function",
                                     "cmdline_proc_show"});
            }
        return tasks;
    }

    // What the kernel does when the last task has switched (or when `forced` tasks were
    // forced to switch: echo 1 > force).
    void complete(std::string_view only = {}, std::uint32_t forced = 0)
    {
        auto& patches = kernel_.kernel_patches;
        for (auto it = patches.begin(); it != patches.end();) {
            if (it->transition && (only.empty() || it->name == only)) {
                it->transition = false;
                kernel_events.push_back({false, it->name, it->enabled ? "patched" : "unpatched",
                                         forced, monotonic_now()});
                if (!it->enabled) {
                    it = patches.erase(it); // gone from sysfs; the module stays loaded
                    continue;
                }
            }
            ++it;
        }
        unsigned order = 0;
        for (KernelPatch& p : patches)
            p.stack_order = ++order;
    }

    // lpshim's transition tracepoints (the daemon's BPF events), in the kernel's order. The
    // fixture hands them over late, after its next look at the kernel, as a busy event loop
    // may (Follow below).
    using KernelEvent = KernelTransitionEvent; // with its time, as the BPF record's time_ns
    std::deque<KernelEvent> kernel_events;
    // SetInstant: transitions complete within apply() and revert(), as one that no task
    // blocks does in lpshim (the /proc/cmdline example).
    bool instant = false;
    bool complete_before_revert = false;

    unsigned kicks = 0;
    // Reads of lpshim's whole debugfs list (PendingTaskListReads): at 30,000 tasks, a second each.
    mutable std::uint64_t list_reads = 0;
    // What the fake task is called: any bytes, as prctl(PR_SET_NAME) allows (SetTaskName).
    std::string comm = "fake_worker";
    std::uint32_t more_pending = 0; // fake_sleeper tasks pending besides 4242 (SetMorePending)

private:
    void started(std::string_view name, const char* target)
    {
        kernel_events.push_back({true, std::string(name), target, 0, monotonic_now()});
    }

    FakeKernelView& kernel_;
};

FakePatchControl* the_control = nullptr;
sd_event* the_event = nullptr;
dbus::BusPtr polkit_bus;
dbus::SlotPtr polkit_slot;
std::string last_polkit_question = "none";
std::uint32_t polkit_questions = 0; // every CheckAuthorization the fake polkit got
// HoldPolkit: the fake polkit answers only when ReleasePolkit is called.
bool polkit_holding = false;
std::vector<dbus::MessagePtr> held_questions;
dbus::Manager* the_manager = nullptr;
// Where the service's events go: the manager, or the metrics recorder in front of it.
EventSink* the_sink = nullptr;
metrics::MetricsRecorder* the_metrics = nullptr;
PatchOperations* the_operations = nullptr;
FakeKernelView* the_kernel = nullptr;
TransitionWatcher the_watcher(std::chrono::hours(1));

// PatchStateChanged's reads of the patches (as the service's patches_reader_).
OffLoopQueue* the_patches_reader = nullptr;

// What a hook changed is announced before its reply: the patches' reads its signals wait for
// end, and those signals go out (a later test's match never sees them).
void announce_now()
{
    if (the_patches_reader)
        the_patches_reader->flush();
}

// What the service does with the watcher's events (Service::handle).
void report(const std::vector<TransitionChange>& changes)
{
    for (const TransitionChange& e : changes)
        report_transition_change(e, *the_sink, *the_operations);
}

// The transition events waiting in the ring buffer (Service::watch_transition_events).
void take_kernel_events()
{
    while (!the_control->kernel_events.empty()) {
        const FakePatchControl::KernelEvent e = the_control->kernel_events.front();
        the_control->kernel_events.pop_front();
        report(follow_kernel_event(e, monotonic_now(), the_watcher,
                                   *the_operations));
    }
}

// The service's tick: the events that were waiting, then a look at the kernel (Service::tick).
void follow()
{
    // As Service::tick: lpshim.ko's version, announced when it changes.
    static std::string shim_version = the_kernel->shim_version();
    if (the_kernel->shim_version() != shim_version) {
        shim_version = the_kernel->shim_version();
        the_manager->shim_version_changed();
        if (the_metrics)
            the_metrics->shim_version_changed();
    }
    take_kernel_events();
    report(the_watcher.update(the_kernel->kernel_patches, monotonic_now()));
    the_operations->forget_replaced(the_kernel->kernel_patches);
}

int on_follow_timer(sd_event_source* source, std::uint64_t usec, void*) noexcept
{
    try {
        if (!the_operations->busy()) // as Service::tick
            follow();
    } catch (...) {
    }
    (void)sd_event_source_set_time(source, usec + 20'000);
    (void)sd_event_source_set_enabled(source, SD_EVENT_ON);
    return 0;
}

// CheckAuthorization((sa{sv}) subject, s action, a{ss} details, u flags, s cancellation_id)
//   -> (bba{ss}): is_authorized, is_challenge, details
int check_authorization(sd_bus_message* call, void* /*userdata*/, sd_bus_error* /*error*/) noexcept
{
    try {
        const char* kind = nullptr;
        int r = sd_bus_message_enter_container(call, 'r', "sa{sv}");
        if (r >= 0)
            r = sd_bus_message_read(call, "s", &kind);
        if (r >= 0)
            r = sd_bus_message_skip(call, "a{sv}");
        if (r >= 0)
            r = sd_bus_message_exit_container(call);
        const char* action = nullptr;
        if (r >= 0)
            r = sd_bus_message_read(call, "s", &action);
        if (r < 0)
            return r;
        std::string question = std::string(action) + " subject=" + kind;
        r = sd_bus_message_enter_container(call, 'a', "{ss}");
        if (r < 0)
            return r;
        const char* key = nullptr;
        const char* value = nullptr;
        while ((r = sd_bus_message_read(call, "{ss}", &key, &value)) > 0)
            question += std::string(" ") + key + "=" + value;
        if (r < 0 || (r = sd_bus_message_exit_container(call)) < 0)
            return r;
        std::uint32_t flags = 0;
        const char* cancellation = nullptr;
        if ((r = sd_bus_message_read(call, "us", &flags, &cancellation)) < 0)
            return r;
        question += " flags=" + std::to_string(flags);
        last_polkit_question = question;
        ++polkit_questions;

        if (polkit_holding) {
            held_questions.push_back(dbus::ref_message(call));
            return 1;
        }
        const std::string_view verb = std::string_view(action).substr(std::string_view(action).rfind('.') + 1);
        const bool interactive = flags & 1;
        int authorized = verb == "kick" || verb == "revert" || (verb == "install" && interactive);
        int challenge = verb == "install" && !interactive;
        return sd_bus_reply_method_return(call, "(bba{ss})", authorized, challenge, 0);
    } catch (...) {
        return -ENOMEM;
    }
}

const sd_bus_vtable polkit_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", check_authorization,
                  SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

int start_polkit(sd_bus_message* call, void* /*userdata*/, sd_bus_error* /*error*/) noexcept
{
    sd_bus* bus = nullptr;
    int r = sd_bus_open_system(&bus);
    if (r < 0)
        return r;
    polkit_bus.reset(bus);
    if ((r = sd_bus_attach_event(bus, the_event, SD_EVENT_PRIORITY_NORMAL)) < 0)
        return r;
    sd_bus_slot* slot = nullptr;
    if ((r = sd_bus_add_object_vtable(bus, &slot, "/org/freedesktop/PolicyKit1/Authority",
                                      "org.freedesktop.PolicyKit1.Authority", polkit_vtable,
                                      nullptr)) < 0)
        return r;
    polkit_slot.reset(slot);
    if ((r = sd_bus_request_name(bus, "org.freedesktop.PolicyKit1", 0)) < 0)
        return r;
    return sd_bus_reply_method_return(call, "");
}

int last_question(sd_bus_message* call, void* /*userdata*/, sd_bus_error* /*error*/) noexcept
{
    return sd_bus_reply_method_return(call, "s", last_polkit_question.c_str());
}

int complete_transition(sd_bus_message* call, void* /*userdata*/, sd_bus_error* /*error*/) noexcept
{
    {
        std::lock_guard lock(kernel_mutex);
        the_control->complete();
    }
    // The service's look at the kernel, before the reply: the signals of this end go out
    // before the caller goes on (and cannot reach a later test's match).
    try {
        follow();
    } catch (...) {
    }
    announce_now();
    return sd_bus_reply_method_return(call, "");
}

int release_load(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    {
        std::lock_guard lock(load_mutex);
        load_released = true;
    }
    load_released_cv.notify_one();
    return sd_bus_reply_method_return(call, "");
}

int hold_work(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    hold_next_work = true;
    return sd_bus_reply_method_return(call, "");
}

int hold_patches_read(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    hold_next_patches_read = true;
    return sd_bus_reply_method_return(call, "");
}

int hold_polkit(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    polkit_holding = true;
    return sd_bus_reply_method_return(call, "");
}

// Answers every held question: allowed.
int release_polkit(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    polkit_holding = false;
    for (auto& question : held_questions)
        (void)sd_bus_reply_method_return(question.get(), "(bba{ss})", 1, 0, 0);
    const auto n = static_cast<std::uint32_t>(held_questions.size());
    held_questions.clear();
    return sd_bus_reply_method_return(call, "u", n);
}

int polkit_queries(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    return sd_bus_reply_method_return(call, "u",
                                      static_cast<std::uint32_t>(the_manager->authorizer().kept()));
}

int polkit_question_count(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    return sd_bus_reply_method_return(call, "u", polkit_questions);
}

int waiting_calls(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    return sd_bus_reply_method_return(call, "u",
                                      static_cast<std::uint32_t>(the_manager->waiting_calls()));
}

int status_reads(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    return sd_bus_reply_method_return(call, "t", the_manager->status_reads());
}

int pending_task_list_reads(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    return sd_bus_reply_method_return(call, "t", the_control->list_reads);
}

int set_task_name(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    // Hex: the bytes need not be UTF-8, which a D-Bus string must be.
    const char* hex = nullptr;
    int r = sd_bus_message_read(call, "s", &hex);
    if (r < 0)
        return r;
    std::string bytes;
    for (std::size_t i = 0; hex[i] && hex[i + 1]; i += 2)
        bytes += static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16));
    the_control->comm = bytes;
    return sd_bus_reply_method_return(call, "");
}

int set_more_pending(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    std::uint32_t n = 0;
    int r = sd_bus_message_read(call, "u", &n);
    if (r < 0)
        return r;
    the_control->more_pending = n;
    return sd_bus_reply_method_return(call, "");
}

int set_instant(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    int instant = 0;
    int r = sd_bus_message_read(call, "b", &instant);
    if (r < 0)
        return r;
    the_control->instant = instant;
    return sd_bus_reply_method_return(call, "");
}

int set_shim_loaded(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    int loaded = 0;
    int r = sd_bus_message_read(call, "b", &loaded);
    if (r < 0)
        return r;
    std::lock_guard lock(kernel_mutex);
    the_kernel->loaded = loaded;
    return sd_bus_reply_method_return(call, "");
}

int drop_outside_patch(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    {
        std::lock_guard lock(kernel_mutex);
        std::erase_if(the_kernel->kernel_patches,
                      [](const KernelPatch& p) { return p.name == "lp_outside"; });
    }
    return sd_bus_reply_method_return(call, "");
}

int set_complete_before_revert(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    int on = 0;
    int r = sd_bus_message_read(call, "b", &on);
    if (r < 0)
        return r;
    the_control->complete_before_revert = on;
    return sd_bus_reply_method_return(call, "");
}

// echo 0 > enabled by hand on an applied patch, seen by the service's look before lpshim's
// start event reaches it, and that event delivered only after the transition has ended.
int revert_by_hand_seen_late(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    const char* name = nullptr;
    int r = sd_bus_message_read(call, "s", &name);
    if (r < 0)
        return r;
    try {
        FakePatchControl::KernelEvent start{true, name, "unpatched", 0, monotonic_now()};
        {
            std::lock_guard lock(kernel_mutex);
            for (KernelPatch& p : the_kernel->kernel_patches)
                if (p.name == name) {
                    p.enabled = false;
                    p.transition = true;
                }
        }
        follow(); // the look sees it
        {
            std::lock_guard lock(kernel_mutex);
            the_control->complete(name);
        }
        follow(); // and its end
        the_control->kernel_events.push_back(start);
        follow(); // then the start event comes
    } catch (...) {
        return -ENOMEM;
    }
    announce_now();
    return sd_bus_reply_method_return(call, "");
}

// echo 1 > force by hand: the transition completes, lpshim's end event says how many tasks it
// forced; the service sees it through that event only.
int force_by_hand(sd_bus_message* call, void*, sd_bus_error*) noexcept
{
    const char* name = nullptr;
    int r = sd_bus_message_read(call, "s", &name);
    if (r < 0)
        return r;
    try {
        std::lock_guard lock(kernel_mutex);
        the_control->complete(name, 1);
    } catch (...) {
        return -ENOMEM;
    }
    return sd_bus_reply_method_return(call, "");
}

int kick_count(sd_bus_message* call, void* /*userdata*/, sd_bus_error* /*error*/) noexcept
{
    unsigned kicks = 0;
    {
        std::lock_guard lock(kernel_mutex);
        kicks = the_control->kicks;
    }
    return sd_bus_reply_method_return(call, "u", kicks);
}

const sd_bus_vtable test_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("CompleteTransition", "", "", complete_transition, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("KickCount", "", "u", kick_count, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("ReleaseLoad", "", "", release_load, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("HoldWork", "", "", hold_work, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("HoldPatchesRead", "", "", hold_patches_read, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("StartPolkit", "", "", start_polkit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("LastPolkitQuestion", "", "s", last_question, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("HoldPolkit", "", "", hold_polkit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("ReleasePolkit", "", "u", release_polkit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("PolkitQueries", "", "u", polkit_queries, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("PolkitQuestions", "", "u", polkit_question_count, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("WaitingCalls", "", "u", waiting_calls, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("StatusReads", "", "t", status_reads, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("PendingTaskListReads", "", "t", pending_task_list_reads,
                  SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("SetTaskName", "s", "", set_task_name, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("SetInstant", "b", "", set_instant, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("SetMorePending", "u", "", set_more_pending, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("SetShimLoaded", "b", "", set_shim_loaded, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("DropOutsidePatch", "", "", drop_outside_patch, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("SetCompleteBeforeRevert", "b", "", set_complete_before_revert,
                  SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("RevertByHandSeenLate", "s", "", revert_by_hand_seen_late,
                  SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("ForceByHand", "s", "", force_by_hand, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

int fail(const char* what, int r)
{
    std::fprintf(stderr, "bus_fixture: %s: %s\n", what, std::strerror(-r));
    return 1;
}

int run(const char* state_directory, const char* kernel_release, const char* metrics_textfile)
{
    sd_event* event_raw = nullptr;
    int r = sd_event_default(&event_raw);
    if (r < 0)
        return fail("sd_event_default", r);
    std::unique_ptr<sd_event, decltype(&sd_event_unref)> event(event_raw, sd_event_unref);
    the_event = event_raw;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    // No handler: sd-event then exits the loop on the signal.
    (void)sd_event_add_signal(event.get(), nullptr, SIGTERM, nullptr, nullptr);
    (void)sd_event_add_signal(event.get(), nullptr, SIGINT, nullptr, nullptr);

    // As livepatchd connects.
    auto opened = dbus::open_system_bus();
    if (!opened)
        return fail("connect to the bus", -opened.error().errnum);
    dbus::BusPtr bus = std::move(*opened);
    r = sd_bus_attach_event(bus.get(), event.get(), SD_EVENT_PRIORITY_NORMAL);
    if (r < 0)
        return fail("attach the bus", r);

    auto store = PatchStore::open(state_directory);
    if (!store) {
        std::fprintf(stderr, "bus_fixture: %s\n", store.error().message.c_str());
        return 1;
    }
    auto desired_file = DesiredStateFile::open(state_directory);
    if (!desired_file) {
        std::fprintf(stderr, "bus_fixture: %s\n", desired_file.error().message.c_str());
        return 1;
    }
    FakeKernelView kernel;
    const LockedKernelView locked_kernel(kernel);
    FakePatchControl control(kernel);
    the_control = &control;
    PatchOperations operations(OperationsContext{
        .store = *store,
        .storage = *desired_file,
        .kernel = locked_kernel,
        .control = control,
        .kernel_release = kernel_release,
        .boot_id = std::string(boot_id),
    });
    if (auto problem = operations.load()) {
        std::fprintf(stderr, "bus_fixture: %s\n", problem->message.c_str());
        return 1;
    }
    // As the service: PatchStateChanged's read of the patches on a thread of its own.
    auto patches_reader = OffLoopQueue::create(event.get(), "the patches' read");
    if (!patches_reader) {
        std::fprintf(stderr, "bus_fixture: %s\n", patches_reader.error().message.c_str());
        return 1;
    }
    the_patches_reader = patches_reader->get();
    dbus::Manager manager(
        bus.get(),
        dbus::ManagerContext{
            .operations = operations,
            .kernel = locked_kernel,
            .control = control,
            .kernel_release = kernel_release,
            .read_patches =
                [&patches_reader](std::function<void()> work, std::function<void()> then) {
                    const bool held = std::exchange(hold_next_patches_read, false);
                    (*patches_reader)
                        ->post(
                            [held, work = std::move(work)] {
                                if (held)
                                    wait_for_release();
                                work();
                            },
                            std::move(then));
                },
        });
    std::optional<metrics::MetricsRecorder> recorder;
    the_sink = &manager;
    if (metrics_textfile) {
        metrics::MetricsSnapshot identity;
        identity.version = "0.1.0";
        identity.kernel_release = kernel_release;
        recorder.emplace(manager,
                         metrics::MetricsSources{
                             .read_patches = [&operations] { return operations.read_patches(); },
                             .patch_states =
                                 [&operations](const PatchReads& read) {
                                     return operations.statuses_from(read);
                                 },
                             .shim_version = [&kernel] { return kernel.shim_version(); },
                             .save_failed = [&operations] { return operations.save_failed(); },
                         },
                         metrics::TextfileWriter(metrics_textfile), std::move(identity),
                         event.get());
        recorder->write_now();
        the_sink = &*recorder;
        the_metrics = &*recorder;
    }
    operations.set_sink(the_sink);
    // As the service: an Apply's blocking work on a thread of its own.
    auto off_loop = OffLoopWork::create(event.get());
    if (!off_loop) {
        std::fprintf(stderr, "bus_fixture: %s\n", off_loop.error().message.c_str());
        return 1;
    }
    operations.set_work_runner(
        [&off_loop](std::function<void()> work, std::function<void()> then) {
            // HoldWork: this work waits for ReleaseLoad on its thread, as a slow disk would.
            const bool held = std::exchange(hold_next_work, false);
            (*off_loop)->run(
                [held, work = std::move(work)] {
                    if (held)
                        wait_for_release();
                    work();
                },
                std::move(then));
        });
    the_manager = &manager;
    the_operations = &operations;
    the_kernel = &kernel;
    // As Service::watch with BPF events.
    operations.set_transition_started([](std::string_view patch, std::string_view target) {
        the_watcher.expect_kernel_start(patch, target);
        report(the_watcher.watch(patch, target, monotonic_now()));
    });
    operations.set_transition_reversed([](std::string_view patch, std::string_view target) {
        the_watcher.expect_kernel_start(patch, target);
        report(the_watcher.reverse(patch, target, monotonic_now()));
    });
    operations.set_transition_forced([](std::string_view patch) { the_watcher.forced(patch); });
    if (auto attached = manager.attach(); !attached) {
        std::fprintf(stderr, "bus_fixture: %s\n", attached.error().message.c_str());
        return 1;
    }
    sd_bus_slot* slot = nullptr;
    r = sd_bus_add_object_vtable(bus.get(), &slot, "/org/livepatchd/Test", "org.livepatchd.Test",
                                 test_vtable, nullptr);
    if (r < 0)
        return fail("register the test object", r);
    dbus::SlotPtr test_slot(slot);
    sd_event_source* follow_timer = nullptr;
    r = sd_event_add_time_relative(event.get(), &follow_timer, CLOCK_MONOTONIC, 20'000, 0,
                                   on_follow_timer, nullptr);
    if (r < 0)
        return fail("start the transition watcher's timer", r);
    std::unique_ptr<sd_event_source, decltype(&sd_event_source_disable_unref)> follow_source(
        follow_timer, sd_event_source_disable_unref);

    r = sd_bus_request_name(bus.get(), dbus::bus_name, 0);
    if (r < 0)
        return fail("take the bus name", r);
    r = sd_event_loop(event.get());
    the_patches_reader = nullptr;
    operations.set_sink(nullptr);
    the_sink = nullptr;
    the_metrics = nullptr;
    recorder.reset();
    polkit_slot.reset();
    polkit_bus.reset();
    if (r < 0)
        return fail("run the event loop", r);
    return 0;
}

} // namespace

int main(int argc, char* argv[])
{
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: bus_fixture STATE_DIRECTORY KERNEL_RELEASE [METRICS_TEXTFILE]\n");
        return 2;
    }
    try {
        return run(argv[1], argv[2], argc == 4 ? argv[3] : nullptr);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bus_fixture: %s\n", e.what());
        return 1;
    }
}
