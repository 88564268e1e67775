// SPDX-License-Identifier: GPL-2.0-only
#include "service.hpp"

#include <malloc.h>
#include <signal.h>
#include <sys/epoll.h>
#include <systemd/sd-daemon.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "journal.hpp"
#include "reconciler.hpp"
#include "status.hpp"
#include "task_facts.hpp"

namespace livepatchd {

namespace {

constexpr std::uint64_t usec_per_msec = 1000;
constexpr std::uint64_t busy_tick_usec = 100 * usec_per_msec;
constexpr std::uint64_t idle_tick_usec = 1000 * usec_per_msec;
constexpr unsigned long taint_die = 1UL << 7; // TAINT_DIE: the kernel oopsed

using journal::Field;

bool kernel_oopsed()
{
    std::ifstream in("/proc/sys/kernel/tainted");
    unsigned long mask = 0;
    return (in >> mask) && (mask & taint_die);
}

// The clock of bpf_ktime_get_ns(), which PendingTask::blocked_since_usec is on.
std::uint64_t monotonic_usec()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000 +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

// A STACK= journal field: one frame per line, innermost first.
std::string stack_text(const std::map<std::uint32_t, std::vector<std::string>>& stacks,
                       std::uint32_t tid)
{
    std::string text;
    if (const auto it = stacks.find(tid); it != stacks.end())
        for (const std::string& frame : it->second)
            text += (text.empty() ? "" : "\n") + frame;
    return text;
}

std::string seconds_text(std::uint64_t usec)
{
    char text[32];
    std::snprintf(text, sizeof(text), "%.1f s", static_cast<double>(usec) / 1e6);
    return text;
}

const KernelPatch* find_patch(const std::vector<KernelPatch>& in_kernel, std::string_view name)
{
    for (const KernelPatch& p : in_kernel)
        if (p.name == name)
            return &p;
    return nullptr;
}

// Whether systemd is shutting the system down (SystemState "stopping").
bool system_stopping(sd_bus* bus)
{
    char* state = nullptr;
    const int r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1",
                                             "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", "SystemState",
                                             nullptr, &state);
    const bool stopping = r >= 0 && std::string_view(state) == "stopping";
    std::free(state);
    return stopping;
}

} // namespace

Result<std::unique_ptr<Service>> Service::start(const Config& config,
                                                const std::filesystem::path& state_directory)
{
    journal::set_level(config.log.level);

    auto control = KmodPatchControl::create();
    if (!control)
        return std::move(control).error();
    if (auto loaded = (*control)->load_shim(); !loaded)
        return loaded.error();

    auto store = PatchStore::open(state_directory);
    if (!store)
        return std::move(store).error();
    auto desired_file = DesiredStateFile::open(state_directory);
    if (!desired_file)
        return std::move(desired_file).error();
    DesiredState desired;
    if (auto loaded = desired_file->load())
        desired = std::move(*loaded);
    else
        // The damaged file is kept aside (desired.json.corrupt); start from nothing wanted
        // rather than not at all, and say so loudly.
        journal::log(LogLevel::err, loaded.error().message + "; starting with no patch wanted",
                     {{"MESSAGE_ID", std::string(journal::message_id::action_failed)}});

    // Processes a crashed livepatchd left stopped are continued before anything else.
    auto signaller = TaskSignaller::open(state_directory);
    if (!signaller)
        return std::move(signaller).error();
    auto continued = signaller->recover();
    if (!continued)
        return std::move(continued).error();
    for (pid_t pid : *continued)
        journal::log(LogLevel::warning,
                     "continued process " + std::to_string(pid) +
                         ", which an earlier livepatchd stopped and did not continue",
                     {{"TID", std::to_string(pid)}});

    std::unique_ptr<Service> service(new Service(config, std::move(*store),
                                                 std::move(*desired_file), std::move(desired),
                                                 std::move(*control), std::move(*signaller)));
    if (auto connected = service->connect(); !connected)
        return connected.error();
    service->boot_apply();
    return service;
}

Service::Service(const Config& config, PatchStore store, DesiredStateFile desired_file,
                 DesiredState desired, std::unique_ptr<KmodPatchControl> control,
                 TaskSignaller signaller)
    : config_(config), store_(std::move(store)), desired_file_(std::move(desired_file)),
      desired_(std::move(desired)), control_(std::move(control)),
      remediation_(config.remediation, getpid()), signaller_(std::move(signaller)),
      release_(running_kernel_release())
{
    if (auto id = read_boot_id())
        boot_id_ = *id;
    if (auto cmdline = read_kernel_command_line())
        boot_flags_ = parse_kernel_command_line(*cmdline);
    for (const std::string& warning : boot_flags_.warnings)
        journal::log(LogLevel::warning, warning);
    oops_seen_ = kernel_oopsed();
}

Service::~Service()
{
    manager_.reset(); // its slots before the bus
}

Result<void> Service::connect()
{
    sd_event* event = nullptr;
    int r = sd_event_default(&event);
    if (r < 0)
        return Error{-r, "cannot create the event loop: " + std::string(std::strerror(-r))};
    event_.reset(event);

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, nullptr);
    sd_event_source* source = nullptr;
    if ((r = sd_event_add_signal(event, &source, SIGTERM, on_signal, this)) < 0)
        return Error{-r, "cannot watch SIGTERM: " + std::string(std::strerror(-r))};
    sigterm_.reset(source);
    if ((r = sd_event_add_signal(event, &source, SIGINT, on_signal, this)) < 0)
        return Error{-r, "cannot watch SIGINT: " + std::string(std::strerror(-r))};
    sigint_.reset(source);
    // WATCHDOG=1 from the loop itself, at half of WatchdogSec=: a stuck loop gets restarted.
    (void)sd_event_set_watchdog(event, 1);

    sd_bus* bus = nullptr;
    if ((r = sd_bus_open_system(&bus)) < 0)
        return Error{-r, "cannot connect to the system bus: " + std::string(std::strerror(-r))};
    bus_.reset(bus);

    manager_ = std::make_unique<dbus::Manager>(
        bus, dbus::ManagerContext{
                 .store = store_,
                 .desired_file = desired_file_,
                 .desired = desired_,
                 .kernel = kernel_,
                 .control = *control_,
                 .kernel_release = release_,
                 .boot_id = boot_id_,
                 .transition_started = [this](std::string_view patch,
                                              std::string_view target) {
                     watch(patch, target);
                 },
                 .blocking_tasks = [this] { return blocking_tasks(); },
             });
    if (auto attached = manager_->attach(); !attached)
        return attached.error();
    if ((r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL)) < 0)
        return Error{-r, "cannot attach the bus to the loop: " + std::string(std::strerror(-r))};
    if ((r = sd_bus_request_name(bus, dbus::bus_name, 0)) < 0)
        return Error{-r, std::string("cannot own the bus name ") + dbus::bus_name + ": " +
                             std::strerror(-r) +
                             " (is another livepatchd running? The D-Bus policy lets only "
                             "root own it)"};
    watch_transition_events();
    schedule_tick(0);
    return {};
}

// Transition starts and ends from lpshim's tracepoints (BPF): the watcher wakes when something
// happens instead of looking every second. Without them (no BPF), it looks every second.
void Service::watch_transition_events()
{
#if LIVEPATCHD_HAVE_BPF
    auto events = TransitionEvents::open([this](const TransitionEvent& e) {
        const std::string target = e.to_patched ? "patched" : "unpatched";
        if (e.type == TransitionEvent::Type::start)
            watch(e.patch, target);
        else
            schedule_tick(0);
    });
    if (!events) {
        journal::log(LogLevel::warning, events.error().message +
                                            "; following transitions by reading sysfs every "
                                            "second instead");
        return;
    }
    sd_event_source* source = nullptr;
    const int r = sd_event_add_io(
        event_.get(), &source, (*events)->fd(), EPOLLIN,
        [](sd_event_source*, int, std::uint32_t, void* userdata) -> int {
            auto* self = static_cast<Service*>(userdata);
            if (auto consumed = self->events_->consume(); !consumed)
                journal::log(LogLevel::warning, consumed.error().message);
            return 0;
        },
        this);
    if (r < 0) {
        journal::log(LogLevel::warning, std::string("cannot watch the transition events: ") +
                                            std::strerror(-r));
        return;
    }
    events_ = std::move(*events);
    events_source_.reset(source);
    auto tracker = PendingTaskTracker::open();
    Result<void> following = tracker ? tracker->follow_transitions() : Result<void>(tracker.error());
    if (following)
        tracker_ = std::move(*tracker);
    else
        journal::log(LogLevel::warning, following.error().message +
                                            "; pending tasks from lpshim's debugfs list, "
                                            "without stacks");
    // Loading the programs parsed the kernel's BTF (/sys/kernel/btf/vmlinux, ~9 MB of heap
    // here) and freed it; give those pages back now, or a later allocation above them keeps the
    // whole heap resident for the life of the daemon.
    malloc_trim(0);
#endif
}

Result<std::vector<PendingTask>> Service::pending_tasks()
{
#if LIVEPATCHD_HAVE_BPF
    if (tracker_) {
        // lpshim checks every task at the transition's first attempt, so each one that blocks
        // is in the map from then on; a child forked since appears at the next attempt.
        auto tracked = tracker_->list(false);
        if (!tracked)
            return tracked.error();
        std::vector<PendingTask> tasks;
        tasks.reserve(tracked->size());
        for (TrackedTask& t : *tracked)
            tasks.push_back(PendingTask{.tid = static_cast<std::uint32_t>(t.tid),
                                        .tgid = static_cast<std::uint32_t>(t.tgid),
                                        .comm = std::move(t.comm),
                                        .reason = std::move(t.reason),
                                        .function = std::move(t.function),
                                        .blocked_since_usec = t.first_seen_ns / 1000,
                                        .attempts = t.attempts});
        return tasks;
    }
#endif
    return control_->pending_tasks();
}

std::map<std::uint32_t, std::vector<std::string>> Service::pending_stacks()
{
    std::map<std::uint32_t, std::vector<std::string>> stacks;
#if LIVEPATCHD_HAVE_BPF
    if (!tracker_)
        return stacks;
    auto tracked = tracker_->list(true);
    if (!tracked) {
        journal::log(LogLevel::warning, tracked.error().message);
        return stacks;
    }
    for (TrackedTask& t : *tracked) {
        std::vector<std::string>& frames = stacks[static_cast<std::uint32_t>(t.tid)];
        frames = std::move(t.frames);
        if (frames.empty() && t.stack_errnum != 0)
            frames.push_back("(no stack: " + std::generic_category().message(t.stack_errnum) + ")");
    }
#endif
    return stacks;
}

// The boot apply: what reconcile() decides, logged; the patches to apply queue up and go one
// at a time, each after the previous transition ends.
void Service::boot_apply()
{
    auto installed = store_.list();
    if (!installed) {
        journal::log(LogLevel::err, installed.error().message);
        return;
    }
    auto plan = reconcile({
        .desired = desired_,
        .installed = *installed,
        .kernel = kernel_,
        .kernel_release = release_,
        .boot_id = boot_id_,
        .config_boot_apply = config_.boot.apply,
        .crash_guard = config_.boot.crash_guard_seconds,
        .boot_flags = boot_flags_,
    });
    if (!plan) {
        journal::log(LogLevel::err, "cannot read the kernel's patches: " + plan.error().message);
        return;
    }
    std::map<std::string, std::string, std::less<>> skipped;
    for (const Action& action : *plan) {
        const std::string kind(to_string(action.kind));
        switch (action.kind) {
        case ActionKind::apply:
            if (action.unload_first)
                if (auto gone = control_->unload(action.patch); !gone)
                    journal::log(LogLevel::warning, gone.error().message,
                                 {{"PATCH", action.patch}});
            boot_queue_.push_back(action.patch);
            break;
        case ActionKind::skip:
            skipped[action.patch] = action.reason;
            journal::log(LogLevel::warning, action.patch + " is not applied: " + action.reason,
                         {{"PATCH", action.patch},
                          {"MESSAGE_ID", std::string(journal::message_id::boot_apply)},
                          {"ACTION", kind}});
            break;
        case ActionKind::already_applied:
        case ActionKind::wait:
        case ActionKind::unmanaged:
            journal::log(LogLevel::info,
                         action.patch + ": " + (action.reason.empty() ? kind : action.reason),
                         {{"PATCH", action.patch},
                          {"MESSAGE_ID", std::string(journal::message_id::boot_apply)},
                          {"ACTION", kind}});
            break;
        }
    }
    manager_->set_skip_reasons(std::move(skipped));
}

int Service::run()
{
    sd_notify(0, "READY=1\nSTATUS=Started");
    journal::log(LogLevel::info, "livepatchd " PROJECT_VERSION " started on " + release_,
                 {{"KERNEL_RELEASE", release_}});
    const int r = sd_event_loop(event_.get());
    sd_notify(0, "STOPPING=1");
    if (r < 0) {
        journal::log(LogLevel::err, std::string("the event loop failed: ") + std::strerror(-r));
        return 1;
    }
    return 0;
}

int Service::on_signal(sd_event_source*, const signalfd_siginfo*, void* userdata)
{
    auto* self = static_cast<Service*>(userdata);
    self->record_clean_shutdown();
    journal::log(LogLevel::info, "stopping; the kernel keeps every patch as it is");
    return sd_event_exit(self->event_.get(), 0);
}

void Service::schedule_tick(std::uint64_t delay_usec)
{
    std::uint64_t now = 0;
    sd_event_now(event_.get(), CLOCK_MONOTONIC, &now);
    if (timer_) {
        (void)sd_event_source_set_time(timer_.get(), now + delay_usec);
        (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_ONESHOT);
        return;
    }
    sd_event_source* source = nullptr;
    if (sd_event_add_time(event_.get(), &source, CLOCK_MONOTONIC, now + delay_usec, 0, on_tick,
                          this) >= 0)
        timer_.reset(source);
}

int Service::on_tick(sd_event_source*, std::uint64_t, void* userdata)
{
    static_cast<Service*>(userdata)->tick();
    return 0;
}

void Service::tick()
{
    auto in_kernel = kernel_.patches();
    if (!in_kernel) {
        journal::log(LogLevel::err, "cannot read the kernel's patches: " +
                                        in_kernel.error().message);
        schedule_tick(idle_tick_usec);
        return;
    }
    follow_transition(*in_kernel);
    if (!watched_) {
        unload_unpatched(*in_kernel);
        apply_next_queued(*in_kernel);
    }
    keep_crash_guard();
    schedule_next_tick();
}

void Service::schedule_next_tick()
{
    if (watched_ || !boot_queue_.empty()) {
        schedule_tick(busy_tick_usec);
        return;
    }
    if (!events_source_) {
        schedule_tick(idle_tick_usec);
        return;
    }
    // The next deadline of the crash-loop guard, if a patch of this boot still has one.
    const auto window = static_cast<std::uint64_t>(config_.boot.crash_guard_seconds.count()) *
                        1000000;
    std::optional<std::uint64_t> next;
    for (const DesiredPatch& p : desired_.patches)
        if (window > 0 && p.applied_boot_id == boot_id_ && p.applied_at_usec != 0 &&
            !p.survived_guard && !p.oops_after_apply)
            next = std::min(next.value_or(UINT64_MAX), p.applied_at_usec + window);
    if (!next) {
        if (timer_)
            (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
        return;
    }
    const std::uint64_t now = realtime_usec();
    schedule_tick(*next > now ? *next - now : 0);
}

void Service::watch(std::string_view patch, std::string_view target)
{
    if (watched_ && watched_->patch == patch && watched_->target == target)
        return;
    // A reversal of the watched transition: that one ended where it came from.
    if (watched_) {
        journal::log(LogLevel::info, watched_->patch + ": transition to " + watched_->target +
                                         " reversed", {{"PATCH", watched_->patch}});
        watched_.reset();
    }
    started_watching(std::string(patch), std::string(target));
    schedule_tick(0);
}

void Service::started_watching(std::string patch, std::string target)
{
    watched_ = Watched{std::move(patch), std::move(target), realtime_usec(), false};
    remediation_.reset();
    seen_.clear();
    manager_->emit_transition_started(watched_->patch, watched_->target);
    journal::log(LogLevel::info, watched_->patch + ": transition to " + watched_->target +
                                     " started",
                 {{"PATCH", watched_->patch},
                  {"TRANSITION", watched_->target},
                  {"MESSAGE_ID", std::string(journal::message_id::transition_started)}});
}

void Service::follow_transition(const std::vector<KernelPatch>& in_kernel)
{
    TransitionStatus now = transition_from_kernel(in_kernel);
    if (watched_ && (now.state == ServiceState::idle || now.patch != watched_->patch ||
                     now.target != watched_->target)) {
        const Watched ended = *watched_;
        watched_.reset();
        transition_ended(ended, in_kernel);
    }
    if (now.state == ServiceState::idle) {
        manager_->set_transition(now);
        update_status_line(now);
        return;
    }
    if (!watched_)
        started_watching(now.patch, now.target);
    now.started_usec = watched_->started_usec;
    const std::uint64_t elapsed = realtime_usec() - watched_->started_usec;
    if (auto tasks = pending_tasks()) {
        now.pending_tasks = static_cast<std::uint32_t>(tasks->size());
        remediate(std::chrono::milliseconds(elapsed / usec_per_msec), *tasks);
    }
    const auto limit = static_cast<std::uint64_t>(config_.transition.stall_timeout_ms.count()) *
                       usec_per_msec;
    if (elapsed >= limit) {
        now.state = ServiceState::stalled;
        if (!watched_->stalled) {
            watched_->stalled = true;
            on_stall(*watched_);
        }
    }
    manager_->set_transition(now);
    update_status_line(now);
}

void Service::transition_ended(const Watched& ended, const std::vector<KernelPatch>& in_kernel)
{
    const KernelPatch* patch = find_patch(in_kernel, ended.patch);
    // Where it ended: a patch still in sysfs and enabled is patched; a patch gone from sysfs
    // (or disabled) is unpatched, whichever way it was going.
    const std::string outcome = patch && patch->enabled ? "patched" : "unpatched";
    const std::uint64_t duration = realtime_usec() - ended.started_usec;
    manager_->emit_transition_finished(ended.patch, ended.target, outcome, duration);
    manager_->emit_patch_changed(ended.patch);
    const bool as_asked = outcome == ended.target;
    journal::log(as_asked ? LogLevel::info : LogLevel::warning,
                 ended.patch + ": transition to " + ended.target + " ended " + outcome +
                     " after " + seconds_text(duration) +
                     (as_asked ? "" : " (it was reversed)"),
                 {{"PATCH", ended.patch},
                  {"TRANSITION", ended.target},
                  {"OUTCOME", outcome},
                  {"DURATION_USEC", std::to_string(duration)},
                  {"MESSAGE_ID", std::string(journal::message_id::transition_finished)}});
    // A patch that ended unpatched is no longer wanted (a reversed apply, a revert); nor are
    // the patches an atomic replace took the place of.
    bool changed = outcome == "unpatched" && desired_.erase(ended.patch);
    if (outcome == "patched" && patch && patch->replace)
        for (const DesiredPatch& wanted : std::vector<DesiredPatch>(desired_.patches))
            if (!find_patch(in_kernel, wanted.name)) {
                desired_.erase(wanted.name);
                journal::log(LogLevel::info, wanted.name + ": replaced by " + ended.patch,
                             {{"PATCH", wanted.name}});
                changed = true;
            }
    if (changed)
        save_desired();
}

void Service::on_stall(const Watched& watched)
{
    const std::string limit =
        std::to_string(config_.transition.stall_timeout_ms.count()) + " ms";
    const StallAction action = config_.transition.on_stall;
    journal::log(LogLevel::warning,
                 watched.patch + ": the transition to " + watched.target +
                     " has not completed after " + limit + "; on_stall is " +
                     std::string(to_string(action)),
                 {{"PATCH", watched.patch}, {"TRANSITION", watched.target}});
    manager_->emit_transition_stalled(watched.patch, to_string(action),
                                      realtime_usec() - watched.started_usec);
    Result<void> done;
    if (action == StallAction::revert && watched.target == "patched")
        done = control_->revert(watched.patch);
    else if (action == StallAction::force)
        done = control_->force(watched.patch);
    if (!done)
        journal::log(LogLevel::err, done.error().message,
                     {{"PATCH", watched.patch},
                      {"MESSAGE_ID", std::string(journal::message_id::action_failed)}});
}

void Service::remediate(std::chrono::milliseconds elapsed, const std::vector<PendingTask>& pending)
{
    // /proc is read only for the tasks the stop rung will look at: this runs every 100 ms of a
    // transition, possibly with thousands of tasks pending.
    std::vector<TaskFacts> facts;
    const std::uint64_t now = realtime_usec();
    const bool read_proc = remediation_.needs_facts(elapsed);
    for (const PendingTask& task : pending) {
        seen_.try_emplace(task.tid, Seen{now, 0, {}});
        if (!read_proc || remediation_.already_stopped(task)) {
            TaskFacts known;
            known.task = task;
            facts.push_back(std::move(known));
        } else if (auto f = read_task_facts(task)) {
            facts.push_back(std::move(*f));
        }
    }
    std::vector<std::pair<std::uint32_t, std::string>> refused;
    for (const Remedy& remedy : remediation_.decide(elapsed, facts, &refused)) {
        if (remedy.kind == RemedyKind::kick) {
            const auto kicked = control_->kick();
            if (!kicked) {
                journal::log(LogLevel::warning, kicked.error().message,
                             {{"PATCH", watched_->patch}});
                continue;
            }
            for (const TaskFacts& f : facts)
                ++seen_[f.task.tid].kicks;
            journal::log(LogLevel::debug,
                         watched_->patch + ": kicked " + std::to_string(facts.size()) +
                             " pending task(s)",
                         {{"PATCH", watched_->patch}});
            continue;
        }
        stop_for_a_moment(remedy.target);
    }
    // Each task is refused once per transition: its stack is worth a walk of the task list.
    const auto stacks = refused.empty() ? decltype(pending_stacks()){} : pending_stacks();
    for (const auto& [tid, why] : refused) {
        const auto f = std::find_if(facts.begin(), facts.end(),
                                    [tid = tid](const TaskFacts& x) { return x.task.tid == tid; });
        if (f == facts.end())
            continue;
        const std::string kind(to_string(f->kind));
        const std::string unit = f->units.empty() ? "" : f->units.back();
        journal::log(LogLevel::warning,
                     watched_->patch + ": task " + std::to_string(tid) + " (" + f->task.comm +
                         ", " + kind + ") blocks the transition in " +
                         (f->task.function.empty() ? "?" : f->task.function) +
                         "; not stopped: " + why,
                     {{"PATCH", watched_->patch},
                      {"TID", std::to_string(tid)},
                      {"TASK_KIND", kind},
                      {"UNIT", unit},
                      {"FUNCTION", f->task.function},
                      {"STACK", stack_text(stacks, tid)}});
        manager_->emit_task_blocked(f->task, kind, "not stopped: " + why);
        seen_[tid].actions.push_back("not stopped: " + why);
    }
}

// SIGSTOP now, SIGCONT hold_ms later: the task leaves the patched function on its way to the
// stop and switches at its return to user mode.
void Service::stop_for_a_moment(const TaskFacts& facts)
{
    const PendingTask& task = facts.task;
    const std::string unit = facts.units.empty() ? "" : facts.units.back();
    const auto pid = static_cast<pid_t>(task.tgid);
    const std::string stack = stack_text(pending_stacks(), task.tid);
    journal::log(LogLevel::notice,
                 watched_->patch + ": stopping process " + std::to_string(pid) + " (" +
                     task.comm + (unit.empty() ? "" : ", " + unit) + ") for " +
                     std::to_string(config_.remediation.stop_continue.hold_ms.count()) +
                     " ms: task " + std::to_string(task.tid) + " is asleep in " +
                     task.function,
                 {{"PATCH", watched_->patch},
                  {"TID", std::to_string(task.tid)},
                  {"UNIT", unit},
                  {"FUNCTION", task.function},
                  {"STACK", stack}});
    if (auto stopped = signaller_.stop(pid, facts.start_time); !stopped) {
        journal::log(LogLevel::warning, stopped.error().message, {{"PATCH", watched_->patch}});
        return;
    }
#ifdef LIVEPATCHD_FAULT_INJECTION
    // tests/vm: a crash between SIGSTOP and SIGCONT, which the next start must repair.
    if (std::getenv("LIVEPATCHD_FAULT_KILL_AFTER_STOP"))
        ::raise(SIGKILL);
#endif
    manager_->emit_task_remediated(task, "stop-continue");
    seen_[task.tid].actions.push_back(
        "stopped for " + std::to_string(config_.remediation.stop_continue.hold_ms.count()) +
        " ms");
    struct Resume {
        Service* service;
        pid_t pid;
    };
    auto* resume = new Resume{this, pid};
    std::uint64_t now = 0;
    sd_event_now(event_.get(), CLOCK_MONOTONIC, &now);
    const auto hold = static_cast<std::uint64_t>(config_.remediation.stop_continue.hold_ms.count()) *
                      usec_per_msec;
    sd_event_source* source = nullptr;
    const int r = sd_event_add_time(
        event_.get(), &source, CLOCK_MONOTONIC, now + hold, 0,
        [](sd_event_source* s, std::uint64_t, void* userdata) -> int {
            auto* r = static_cast<Resume*>(userdata);
            if (auto resumed = r->service->signaller_.resume(r->pid); !resumed)
                journal::log(LogLevel::warning, resumed.error().message);
            delete r;
            sd_event_source_unref(s);
            return 0;
        },
        resume);
    if (r < 0) {
        delete resume;
        (void)signaller_.resume(pid); // no timer: continue it at once
    }
}

Result<std::vector<BlockingTask>> Service::blocking_tasks()
{
    auto pending = pending_tasks();
    if (!pending)
        return pending.error();
    auto stacks = pending_stacks();
    const std::uint64_t now = realtime_usec();
    const std::uint64_t now_monotonic = monotonic_usec();
    std::vector<BlockingTask> report;
    for (PendingTask& task : *pending) {
        BlockingTask b;
        if (auto facts = read_task_facts(task))
            b.facts = std::move(*facts);
        else
            b.facts.task = std::move(task);
        const std::uint64_t since = b.facts.task.blocked_since_usec;
        if (since != 0 && since <= now_monotonic)
            b.blocked_usec = now_monotonic - since;
        if (b.facts.task.attempts)
            b.actions.push_back("found blocked " + std::to_string(b.facts.task.attempts) +
                                " time(s) by lpshim");
        if (const auto seen = seen_.find(b.facts.task.tid); seen != seen_.end()) {
            if (since == 0)
                b.blocked_usec = now - seen->second.first_usec;
            if (seen->second.kicks)
                b.actions.push_back("kicked " + std::to_string(seen->second.kicks) + " time(s)");
            b.actions.insert(b.actions.end(), seen->second.actions.begin(),
                             seen->second.actions.end());
        }
        b.stack = std::move(stacks[b.facts.task.tid]);
        report.push_back(std::move(b));
    }
    return report;
}

// A patch of the store whose module is loaded but that lpshim no longer lists ended its unpatch
// transition (or was replaced): its module goes, so that it can be applied again later.
// Modules of patches not in the store are not livepatchd's to remove.
void Service::unload_unpatched(const std::vector<KernelPatch>& in_kernel)
{
    auto installed = store_.list();
    if (!installed)
        return;
    for (const InstalledPatch& patch : *installed) {
        if (find_patch(in_kernel, patch.name) || !kernel_.module_loaded(patch.name)) {
            cannot_unload_.erase(patch.name);
            continue;
        }
        if (cannot_unload_.contains(patch.name))
            continue;
        if (auto gone = control_->unload(patch.name); !gone) {
            // Said once: a forced patch's module, for one, can never be removed.
            journal::log(LogLevel::warning, gone.error().message, {{"PATCH", patch.name}});
            cannot_unload_.insert(patch.name);
            continue;
        }
        journal::log(LogLevel::info, patch.name + ": module removed", {{"PATCH", patch.name}});
        manager_->emit_patch_changed(patch.name);
    }
}

void Service::apply_next_queued(const std::vector<KernelPatch>& in_kernel)
{
    while (!boot_queue_.empty()) {
        const std::string name = boot_queue_.front();
        boot_queue_.pop_front();
        DesiredPatch* wanted = desired_.find(name);
        if (!wanted || find_patch(in_kernel, name))
            continue; // reverted meanwhile, or applied over the bus
        auto patch = store_.find(name);
        if (!patch) {
            journal::log(LogLevel::err, patch.error().message, {{"PATCH", name}});
            continue;
        }
        // Recorded before the module loads, as Apply does: a crash during the transition
        // counts for the crash-loop guard at the next boot.
        wanted->applied_at_usec = realtime_usec();
        wanted->applied_boot_id = boot_id_;
        wanted->survived_guard = false;
        wanted->oops_after_apply = false;
        save_desired();
        journal::log(LogLevel::info, name + ": applying (boot apply)",
                     {{"PATCH", name},
                      {"MESSAGE_ID", std::string(journal::message_id::boot_apply)},
                      {"ACTION", "apply"}});
        if (auto done = control_->apply(*patch); !done) {
            journal::log(LogLevel::err, done.error().message,
                         {{"PATCH", name},
                          {"MESSAGE_ID", std::string(journal::message_id::action_failed)}});
            continue;
        }
        manager_->emit_patch_changed(name);
        started_watching(name, "patched");
        return; // the next one after this transition ends
    }
}

// The crash-loop guard's records for the patches applied in this boot: survived the guard's
// window, or saw an oops after their apply.
void Service::keep_crash_guard()
{
    const bool oops = kernel_oopsed();
    const bool new_oops = oops && !oops_seen_;
    oops_seen_ = oops;
    const std::uint64_t now = realtime_usec();
    const auto window = static_cast<std::uint64_t>(config_.boot.crash_guard_seconds.count()) *
                        1000000;
    bool changed = false;
    for (DesiredPatch& p : desired_.patches) {
        if (p.applied_boot_id != boot_id_ || p.applied_at_usec == 0)
            continue;
        if (new_oops && !p.oops_after_apply) {
            p.oops_after_apply = true;
            changed = true;
            journal::log(LogLevel::err,
                         "the kernel oopsed after " + p.name +
                             " was applied; it will not be applied at the next boot unless "
                             "applied again",
                         {{"PATCH", p.name}});
        }
        if (!p.survived_guard && !p.oops_after_apply && window > 0 &&
            now >= p.applied_at_usec + window) {
            p.survived_guard = true;
            changed = true;
        }
    }
    if (changed)
        save_desired();
}

void Service::record_clean_shutdown()
{
    if (!bus_ || !system_stopping(bus_.get()))
        return;
    desired_.clean_shutdown_boot_id = boot_id_;
    save_desired();
}

void Service::save_desired()
{
    if (auto saved = desired_file_.save(desired_); !saved)
        journal::log(LogLevel::err, saved.error().message,
                     {{"MESSAGE_ID", std::string(journal::message_id::action_failed)}});
}

void Service::update_status_line(const TransitionStatus& status)
{
    std::string line;
    if (status.state == ServiceState::idle) {
        line = boot_queue_.empty() ? "Idle"
                                   : "Boot apply: " + std::to_string(boot_queue_.size()) +
                                         " patch(es) to go";
    } else {
        line = std::string(status.state == ServiceState::stalled ? "Stalled: " : "") +
               status.patch + " moving to " + status.target + ", " +
               std::to_string(status.pending_tasks) + " task(s) left";
    }
    if (line == status_line_)
        return;
    status_line_ = line;
    sd_notify(0, ("STATUS=" + line).c_str());
}

} // namespace livepatchd
