// SPDX-License-Identifier: GPL-2.0-only
#include "service/service.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/epoll.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/atomic_file.hpp"
#include "common/c_string.hpp"
#include "common/clock.hpp"
#include "common/dispatch_label.hpp"
#include "common/fault.hpp"
#include "common/journal.hpp"
#include "common/loop_activity.hpp"
#include "common/run_delay.hpp"
#include "common/small_file.hpp"
#include "common/text.hpp"
#include "dbus/system_bus.hpp"
#include "remediation/task_facts.hpp"
#include "service/transition_report.hpp"

namespace livepatchd {

namespace {

constexpr std::uint64_t usec_per_msec = 1000;
constexpr std::uint64_t busy_tick_usec = 100 * usec_per_msec;
constexpr std::uint64_t idle_tick_usec = 1000 * usec_per_msec;
constexpr std::uint64_t stall_look_usec = 1000 * usec_per_msec;
constexpr const char* transition_record_file = "transition.json";

// The kernel's oops count, nullopt (logged at debug: a look comes back) when unreadable.
std::optional<std::uint64_t> kernel_oops_count()
{
    auto count = read_oops_count();
    if (count)
        return *count;
    journal::log(LogLevel::debug, "cannot read the kernel's oops count: " + count.error().message);
    return std::nullopt;
}

// An OffLoopQueue for works the loop can also do itself; without one (no thread, no eventfd),
// the journal says what then runs on the loop (on_loop), and nullptr.
std::unique_ptr<OffLoopQueue> queue_or_loop(sd_event* event, const char* label,
                                            OffLoopQueue::Priority priority,
                                            std::string_view on_loop)
{
    auto queue = OffLoopQueue::create(event, label, priority);
    if (queue)
        return std::move(*queue);
    journal::log(LogLevel::warning, queue.error().message + "; " + std::string(on_loop));
    return nullptr;
}

// A STACK= journal field: one frame per line, innermost first.
std::string stack_text(const std::map<std::uint32_t, std::vector<std::string>>& stacks,
                       std::uint32_t tid)
{
    std::string text;
    if (const auto it = stacks.find(tid); it != stacks.end())
        for (const std::string& frame : it->second)
            text += (text.empty() ? "" : "\n") + printable(frame); // the kernel's words
    return text;
}

std::string seconds_text(std::uint64_t usec)
{
    char text[32];
    std::snprintf(text, sizeof(text), "%.1f s", static_cast<double>(usec) / 1e6);
    return text;
}

// Whether systemd is shutting the system down (SystemState "stopping").
// Not known (no answer): not stopping, and the journal says so.
bool system_stopping(sd_bus* bus)
{
    char* state = nullptr;
    const int r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1",
                                             "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", "SystemState",
                                             nullptr, &state);
    if (r < 0) {
        journal::log(LogLevel::warning,
                     std::string("cannot ask systemd whether the system is stopping (") +
                         std::strerror(-r) + "): this stop is not recorded as a clean shutdown");
        return false;
    }
    const std::string said = printable(CString(state).get());
    journal::log(LogLevel::debug, "at livepatchd's stop, systemd's state is " + said);
    return said == "stopping";
}

std::uint64_t now_monotonic(sd_event* event)
{
    std::uint64_t now = 0;
    if (sd_event_now(event, CLOCK_MONOTONIC, &now) < 0)
        now = monotonic_usec();
    return now;
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
    auto records = DirStopRecords::open(state_directory);
    if (!records)
        return std::move(records).error();

    std::unique_ptr<Service> service(new Service(config, state_directory, std::move(*store),
                                                 std::move(*desired_file), std::move(*control),
                                                 std::move(*records)));
    if (auto connected = service->connect(); !connected)
        return connected.error();
    return service;
}

Service::Service(const Config& config, std::filesystem::path state_directory, PatchStore store,
                 DesiredStateFile desired_file, std::unique_ptr<KmodPatchControl> control,
                 std::unique_ptr<StopRecords> records)
    : config_(config), state_directory_(std::move(state_directory)),
      state_fd_(::open(state_directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
      store_(std::move(store)), desired_file_(std::move(desired_file)),
      control_(std::move(control)), remediation_(config.remediation, getpid()),
      signaller_(std::move(records)), release_(running_kernel_release()),
      watcher_(config.transition.stall_timeout_ms)
{
    if (auto id = read_boot_id())
        boot_id_ = *id;
    else
        journal::log(LogLevel::err, id.error().message);
    if (auto cmdline = read_kernel_command_line())
        boot_flags_ = parse_kernel_command_line(*cmdline);
    for (const std::string& warning : boot_flags_.warnings)
        journal::log(LogLevel::warning, warning);
    operations_ = std::make_unique<PatchOperations>(OperationsContext{
        .store = store_,
        .storage = desired_file_,
        .kernel = kernel_,
        .control = *control_,
        .kernel_release = release_,
        .boot_id = boot_id_,
        .crash_guard_window = config.boot.crash_guard_seconds,
        .oops_count = kernel_oops_count,
    });
    if (auto problem = operations_->load())
        journal::log(LogLevel::err, problem->message,
                     {{"MESSAGE_ID", std::string(journal::message_id::action_failed)}});
    operations_->start_oops_watch(kernel_oops_count());
}

Service::~Service()
{
    off_loop_.reset(); // waits for an operation's blocking work; its end does not run
#if LIVEPATCHD_HAVE_BPF
    lister_.reset(); // drops the listings waiting for a walk (Manager's, the tick's)
#endif
    executor_.reset(); // continues every held process
    // The reads of lpshim's list not yet started are skipped (their listings dropped); the
    // one under way ends first.
    closing_reads_ = true;
    list_reader_.reset();
    kernel_reader_.reset();
    patches_reader_.reset(); // reads what is queued; PatchStateChanged is not sent
    facts_reader_.reset();
    list_converter_.reset(); // its conversions' answers are dropped
    record_writer_.reset();  // writes what is still queued
    operations_->set_sink(nullptr);
    metrics_.reset(); // passes events on to manager_
    manager_.reset(); // its slots before the bus
}

Result<void> Service::connect()
{
    sd_event* event = nullptr;
    int r = sd_event_default(&event);
    if (r < 0)
        return Error{-r, "cannot create the event loop: " + std::string(std::strerror(-r))};
    event_.reset(event);
    // The heap's trim after a transition's lists on the conversions' thread, after them; on
    // the loop without that thread. (glibc holds each arena's lock while it trims it: an
    // allocation of the loop's may wait for the main arena's part, which holds the lists'
    // storage; their strings, the bulk, are the walks' reader's. A trim preempted while it
    // holds that lock would keep the loop waiting as long: its time is logged past 20 ms.)
    list_pool_ = std::make_unique<PendingListPool>(event, [this] {
        if (list_converter_)
            list_converter_->post([] { PendingListPool::trim_heap(); }, nullptr);
        else
            PendingListPool::trim_heap();
    });
    retired_facts_ = std::make_unique<RetiredEntries<StallFactsMap>>(event);
    retired_seen_ = std::make_unique<RetiredEntries<SeenMap>>(event);

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

    executor_ = std::make_unique<RemediationExecutor>(
        event, signaller_, config_.remediation.stop_continue.hold_ms, [](const Error& e) {
            journal::log(LogLevel::err, e.message,
                         {{"MESSAGE_ID", std::string(journal::message_id::action_failed)}});
        });

    auto opened = dbus::open_system_bus();
    if (!opened)
        return std::move(opened).error();
    bus_ = std::move(*opened);
    sd_bus* bus = bus_.get();

    manager_ = std::make_unique<dbus::Manager>(
        bus, dbus::ManagerContext{
                 .operations = *operations_,
                 .kernel = kernel_,
                 .control = *control_,
                 .kernel_release = release_,
                 .list_pending =
                     [this](bool stacks, dbus::ManagerContext::PendingListed done) {
                         list_pending([this, stacks, done = std::move(done)](
                                          Result<std::vector<PendingTask>> tasks) {
                             if (!stacks || !tasks || tasks->empty()) {
                                 done(std::move(tasks), {});
                                 return;
                             }
                             // (Run from a continuation, which swallows what it throws: the
                             // call is answered whatever fails here.)
                             try {
                                 // The first ones by tid (the list is in tid order).
                                 std::set<std::uint32_t> first;
                                 for (std::size_t i = 0;
                                      i < tasks->size() && i < dbus::max_listed_stacks; ++i)
                                     first.insert((*tasks)[i].tid);
                                 auto listed = std::make_shared<std::vector<PendingTask>>(
                                     std::move(*tasks));
                                 list_stacks(first, [done, listed](Stacks stacks, bool) {
                                     done(std::move(*listed), std::move(stacks));
                                 });
                             } catch (const std::bad_alloc&) {
                                 done(Error{ENOMEM, "list the pending tasks: out of memory"}, {});
                             }
                         });
                     },
                 .blocking_task = [this](const PendingTask& task,
                                         TaskFactsLook& look) { return blocking_task(task, look); },
                 .read_patches =
                     [this](std::function<void()> work, std::function<void()> then) {
                         if (!patches_reader_) {
                             work();
                             then();
                             return;
                         }
                         patches_reader_->post(std::move(work), std::move(then));
                     },
             });
    if (!config_.metrics.textfile.empty()) {
        metrics::MetricsSnapshot identity;
        identity.version = PROJECT_VERSION;
        identity.kernel_release = release_;
        identity.start_time_usec = realtime_usec();
        metrics_ = std::make_unique<metrics::MetricsRecorder>(
            *manager_,
            metrics::MetricsSources{
                .read_patches = [this] { return operations_->read_patches(); },
                .patch_states =
                    [this](const PatchReads& read) { return operations_->statuses_from(read); },
                .shim_version = [this] { return kernel_.shim_version(); },
                .save_failed = [this] { return operations_->save_failed(); },
            },
            metrics::TextfileWriter(config_.metrics.textfile), std::move(identity), event);
    }
    operations_->set_sink(&sink());
    // An Apply's blocking work (the file's checks, the saves, finit_module()) off the loop.
    if (auto off_loop = OffLoopWork::create(event); off_loop) {
        off_loop_ = std::move(*off_loop);
        operations_->set_work_runner([this](std::function<void()> work,
                                            std::function<void()> then) {
            off_loop_->run(std::move(work), [this, then = std::move(then)] {
                try {
                    then();
                } catch (...) {
                    operation_ended(); // whatever failed, the loop goes on following
                    throw;
                }
                operation_ended();
            });
        });
    } else
        journal::log(LogLevel::warning, off_loop.error().message +
                                            "; an Apply's file and kernel work runs on the "
                                            "event loop");
    using Priority = OffLoopQueue::Priority;
    list_reader_ = queue_or_loop(event, "the end of a read of lpshim's list", Priority::below_loop,
                                 "lpshim's list of pending tasks is read on the event loop");
    facts_reader_ = queue_or_loop(event, "the end of a read of the stall's blockers",
                                  Priority::below_loop,
                                  "the stall's blockers are read on the event loop");
    list_converter_ = queue_or_loop(event, "the end of a pending list's conversion",
                                    Priority::as_loop,
                                    "the walks' records become the looks' lists on the event "
                                    "loop");
    patches_reader_ = queue_or_loop(event, "the end of PatchStateChanged's read of the patches",
                                    Priority::as_loop,
                                    "PatchStateChanged reads the patches on the event loop");
    kernel_reader_ = queue_or_loop(event, "the end of a tick's read of the kernel",
                                   Priority::as_loop,
                                   "the tick reads the kernel's patches on the event loop");
    // As the loop: a restart of livepatchd finds what the loop last asked for.
    record_writer_ = queue_or_loop(event, "the transition record's write", Priority::as_loop,
                                   "the transition record is written on the event loop");
    operations_->set_transition_started(
        [this](std::string_view patch, std::string_view target) { watch(patch, target); });
    operations_->set_transition_reversed(
        [this](std::string_view patch, std::string_view target) { watch(patch, target, true); });
    operations_->set_transition_forced([this](std::string_view patch) {
        ++kernel_acts_;
        watcher_.forced(patch);
        save_transition_record();
    });
    if (auto attached = manager_->attach(); !attached)
        return attached.error();
    shim_version_ = kernel_.shim_version();
    if ((r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL)) < 0)
        return Error{-r, "cannot attach the bus to the loop: " + std::string(std::strerror(-r))};
    if ((r = sd_bus_request_name(bus, dbus::bus_name, 0)) < 0)
        return Error{-r, std::string("cannot own the bus name ") + dbus::bus_name + ": " +
                             std::strerror(-r) +
                             " (is another livepatchd running? The D-Bus policy lets only "
                             "root own it)"};
    watch_transition_events();

    // What a crash of the previous instance left: pending applies and reverts, the start of
    // the transition under way. Then the boot apply's plan.
    if (auto in_kernel = kernel_.patches()) {
        operations_->settle(*in_kernel);
        resume_transition_record(*in_kernel);
    }
    operations_->plan_boot_apply({config_.boot.apply, boot_flags_});
    schedule_tick(0);
    return {};
}

EventSink& Service::sink()
{
    if (metrics_)
        return *metrics_;
    return *manager_;
}

// Transition starts and ends from lpshim's tracepoints (BPF): the watcher wakes when something
// happens instead of looking every second. Without them (no BPF), it looks every second.
void Service::watch_transition_events()
{
#if LIVEPATCHD_HAVE_BPF
    // libbpf's messages (a verifier's log) to the journal at debug level, not raw to stderr.
    route_libbpf_messages([](std::string_view line) {
        journal::log(LogLevel::debug, std::string(line));
    });
    auto events = TransitionEvents::open([this](const TransitionEvent& e) {
        ++kernel_acts_;
        if (e.type == TransitionEvent::Type::lost) {
            // What they said is gone: the tick reads sysfs, where the watcher finds a
            // transition whose start was lost, and the end of one whose end was.
            journal::log(LogLevel::warning,
                         std::to_string(e.count) + " transition event(s) of lpshim were lost "
                                                   "(the ring buffer was full); reading "
                                                   "lpshim's sysfs instead");
            schedule_tick(0);
            return;
        }
        const std::uint64_t now = now_monotonic(event_.get());
        // An action's own start is matched off, a stale one dropped; any other was started
        // outside livepatchd. An end may say the transition was forced (by hand too). Timed
        // when lpshim said it, not when the loop got to it: events read in one go keep their
        // order in time (a start, its end, the next start).
        const KernelTransitionEvent event{
            .start = e.type == TransitionEvent::Type::start,
            .patch = e.patch,
            .target = e.to_patched ? "patched" : "unpatched",
            .forced_tasks = e.type == TransitionEvent::Type::end ? e.count : 0,
            .usec = std::min<std::uint64_t>(e.time_ns / 1000, now),
        };
        handle(follow_kernel_event(event, now, watcher_, *operations_));
        schedule_tick(0);
    });
    // The pending tasks' programs need neither the events nor their ring buffer: tried anyway.
    auto tracker = PendingTaskTracker::open();
    Result<void> following = tracker ? tracker->follow_transitions() : Result<void>(tracker.error());
    if (following) {
        tracker_ = std::move(*tracker);
        lister_ = std::make_unique<PendingTaskLister>(event_.get(), *tracker_);
    } else
        journal::log(LogLevel::warning, following.error().message +
                                            "; pending tasks from lpshim's debugfs list, "
                                            "without stacks");
    if (!events) {
        journal::log(LogLevel::warning, events.error().message +
                                            "; following transitions by reading sysfs every "
                                            "second instead");
        malloc_trim(0);
        return;
    }
    sd_event_source* source = nullptr;
    const int r = sd_event_add_io(
        event_.get(), &source, (*events)->fd(), EPOLLIN,
        [](sd_event_source*, int, std::uint32_t, void* userdata) noexcept -> int {
            label_dispatch("lpshim's transition events");
            auto* self = static_cast<Service*>(userdata);
            if (self->operations_->busy()) {
                // An Apply's own start is matched off once it has ended (operation_ended).
                (void)sd_event_source_set_enabled(self->events_source_.get(), SD_EVENT_OFF);
                return 0;
            }
            try {
                if (auto consumed = self->events_->consume(); !consumed)
                    journal::log(LogLevel::warning, consumed.error().message);
            } catch (...) {
            }
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
    // Loading the programs parsed the kernel's BTF (/sys/kernel/btf/vmlinux, ~9 MB of heap
    // here) and freed it; give those pages back now, or a later allocation above them keeps the
    // whole heap resident for the life of the daemon.
    malloc_trim(0);
#endif
}

void Service::list_pending(PendingDone done)
{
#if LIVEPATCHD_HAVE_BPF
    if (lister_) {
        // lpshim checks every task at the transition's first attempt, so each one that blocks
        // is in the map from then on; a child forked since appears at the next attempt. Unless
        // the map cannot be trusted now: then lpshim's own list, which is exact (without
        // first-seen times nor attempts), and the journal says why, once.
        auto say_fallback = [this](const std::string& why) {
            if (why.substr(0, 40) != pending_fallback_.substr(0, 40))
                journal::log(LogLevel::warning,
                             why + "; listing the pending tasks from lpshim's debugfs list "
                                   "instead");
            pending_fallback_ = why;
        };
        if (const std::uint64_t lost = tracker_->overflowed(); lost > 0) {
            say_fallback("the BPF map of pending tasks (" + std::to_string(tracker_->capacity()) +
                         " entries) had no room for " + std::to_string(lost) + " of them");
            read_lpshim_list(std::move(done));
            return;
        }
        lister_->list(StackSelection::nothing(), [this, say_fallback, done = std::move(done)](
                                                     Result<std::vector<TrackedTask>> tracked)
                                                     mutable {
            // done is called once, whatever fails before: the tick and the bus calls wait
            // for it.
            if (!tracked) {
                try {
                    say_fallback(tracked.error().message);
                } catch (...) {
                }
                read_lpshim_list(std::move(done));
                return;
            }
            // The walk's records become the look's list on list_converter_'s thread: at 30,000
            // tasks, moving them and freeing the walk's took tens of ms of the loop's turn.
            struct Conversion {
                std::vector<TrackedTask> tracked;
                Result<std::vector<PendingTask>> listed =
                    Error{ENOMEM, "list the pending tasks: out of memory"};
            };
            std::shared_ptr<Conversion> conversion;
            std::shared_ptr<PendingDone> reply;
            // (Made first: answering out of memory must not need memory.)
            Result<std::vector<PendingTask>> no_memory =
                Error{ENOMEM, "list the pending tasks: out of memory"};
            try {
                pending_fallback_.clear();
                conversion = std::make_shared<Conversion>();
                conversion->tracked = std::move(*tracked);
                conversion->listed = list_pool_->take(conversion->tracked.size());
                reply = std::make_shared<PendingDone>(std::move(done)); // (last: done kept)
            } catch (...) {
                done(std::move(no_memory));
                return;
            }
            auto convert = [conversion] {
                try {
                    std::vector<PendingTask>& tasks = *conversion->listed;
                    // Moved, not copied: no allocation per task (the tracker made the text
                    // printable as it read each record; the list has room for every task).
                    for (TrackedTask& t : conversion->tracked)
                        tasks.push_back(PendingTask{.tid = static_cast<std::uint32_t>(t.tid),
                                                    .tgid = static_cast<std::uint32_t>(t.tgid),
                                                    .comm = std::move(t.comm),
                                                    .reason = std::move(t.reason),
                                                    .function = std::move(t.function),
                                                    .blocked_since_usec =
                                                        t.first_seen_ns / 1000,
                                                    .attempts = t.attempts});
                } catch (...) {
                    conversion->listed = Error{ENOMEM, "list the pending tasks: out of memory"};
                }
                std::vector<TrackedTask>().swap(conversion->tracked); // freed here too
            };
            auto answer = [conversion, reply] { (*reply)(std::move(conversion->listed)); };
            if (list_converter_) {
                try {
                    list_converter_->post(convert, answer);
                    return;
                } catch (const std::bad_alloc&) {
                }
            }
            convert();
            answer();
        });
        return;
    }
#endif
    read_lpshim_list(std::move(done));
}

void Service::read_lpshim_list(PendingDone done)
{
    // The kernel walks every task to print the list (100-140 ms at 1,500 pending tasks under
    // emulation): the loop does not wait for it. done is called once, whatever fails (out of
    // memory: the list is read here, or done told so).
    if (list_reader_) {
        std::shared_ptr<PendingDone> answer;
        try {
            auto read = std::make_shared<Result<std::vector<PendingTask>>>(
                Error{ENOMEM, "list the pending tasks: out of memory"});
            answer = std::make_shared<PendingDone>();
            std::function<void()> work = [control = control_.get(), closing = &closing_reads_,
                                          read] {
                if (closing->load())
                    return; // (its answer is never given: the service is going)
                try {
                    *read = control->pending_tasks();
                } catch (...) {
                    // (out of memory: read says so)
                }
            };
            std::function<void()> then = [read, answer] { (*answer)(std::move(*read)); };
            *answer = std::move(done); // (nothing throws from here but post, which keeps it)
            list_reader_->post(std::move(work), std::move(then));
            return;
        } catch (...) {
            if (answer && *answer)
                done = std::move(*answer);
        }
    }
    Result<std::vector<PendingTask>> listed =
        Error{ENOMEM, "list the pending tasks: out of memory"};
    try {
        listed = control_->pending_tasks();
    } catch (...) {
    }
    done(std::move(listed));
}

void Service::list_stacks(const std::set<std::uint32_t>& tids,
                          std::function<void(Stacks, bool walked)> done)
{
#if LIVEPATCHD_HAVE_BPF
    if (lister_) {
        std::set<pid_t> selected(tids.begin(), tids.end());
        lister_->list(StackSelection::of(selected),
                      [selected, done = std::move(done)](Result<std::vector<TrackedTask>> tracked) {
                          // done is called once, whatever fails before (out of memory).
                          Stacks stacks;
                          bool walked = false;
                          try {
                              if (!tracked) {
                                  journal::log(LogLevel::warning, tracked.error().message);
                              } else {
                                  // The selected tasks only (PendingTaskLister), unless
                                  // none was selected (of() an empty set is nothing()).
                                  for (TrackedTask& t : *tracked) {
                                      if (!selected.count(t.tid))
                                          continue;
                                      std::vector<std::string>& frames =
                                          stacks[static_cast<std::uint32_t>(t.tid)];
                                      frames = std::move(t.frames);
                                      if (frames.empty() && t.stack_errnum != 0)
                                          frames.push_back(
                                              "(no stack: " +
                                              std::generic_category().message(t.stack_errnum) +
                                              ")");
                                  }
                                  walked = true;
                              }
                          } catch (...) {
                              stacks.clear();
                          }
                          done(std::move(stacks), walked);
                      });
        return;
    }
#endif
    (void)tids;
    done({}, false);
}

int Service::run()
{
    if (metrics_)
        metrics_->write_now();
    sd_notify(0, "READY=1\nSTATUS=Started");
    journal::log(LogLevel::info, "livepatchd " PROJECT_VERSION " started on " + release_,
                 {{"KERNEL_RELEASE", release_}});
    // sd_event_loop(), with each dispatch timed: nothing in it may keep the loop (the holds'
    // SIGCONT timers, the bus, the watchdog) waiting long. A dispatch longer than 20 ms is
    // logged at debug level, with the part of it the loop spent runnable but waiting for a
    // CPU (preempted), and the longest when the loop ends (docs/benchmarks.md measures it at
    // 30,000 pending tasks).
    constexpr std::uint64_t slow_dispatch_usec = 20 * usec_per_msec;
    const RunDelayClock run_delay = RunDelayClock::of_this_thread();
    std::uint64_t longest_usec = 0;
    // Since when the loop has not slept in its poll (LoopPriority: real-time that long only).
    std::uint64_t busy_since = monotonic_usec();
    int r = 0;
    loop_busy.store(true, std::memory_order_relaxed);
    while (sd_event_get_state(event_.get()) != SD_EVENT_FINISHED) {
        // sd_event_prepare() sees only what is pending already: a ready fd (a bus message) or
        // a timer due is found by the wait. A look without sleeping first, so that a stream of
        // them is one busy stretch, and the loop rests only when it is to sleep.
        if ((r = sd_event_prepare(event_.get())) == 0 &&
            (r = sd_event_wait(event_.get(), 0)) == 0 &&
            (r = sd_event_prepare(event_.get())) == 0) {
            loop_priority_.rested();
            // Release: a thread that sees it false sees what the dispatches before did
            // (loop_retrying).
            loop_busy.store(false, std::memory_order_release);
            r = sd_event_wait(event_.get(), UINT64_MAX);
            loop_busy.store(true, std::memory_order_relaxed);
            busy_since = monotonic_usec();
        }
        if (r < 0)
            break;
        if (r == 0)
            continue;
        loop_priority_.busy_for(monotonic_usec() - busy_since);
        // The run delay is read inside the timed window, so that a wait for a CPU around a read
        // (returning from it is a common place to be preempted) counts in both; the one at the
        // end only for a slow dispatch. The delay is clamped to the dispatch.
        label_dispatch(nullptr);
        const std::uint64_t start = monotonic_usec();
        const std::optional<std::uint64_t> delayed_before = run_delay.usec();
        const std::optional<ThreadUsage> used_before = ThreadUsage::now();
        if ((r = sd_event_dispatch(event_.get())) < 0)
            break;
        std::uint64_t took = monotonic_usec() - start;
        if (took >= slow_dispatch_usec || took > longest_usec) {
            const std::optional<ThreadUsage> used_after = ThreadUsage::now();
            const std::optional<std::uint64_t> delayed_after = run_delay.usec();
            // To the end read too: a wait for a CPU before it counts in both.
            took = monotonic_usec() - start;
            // Unlabelled: sd-bus's own work (reading, writing, matches) or the watchdog.
            const std::string what = dispatch_label ? dispatch_label : "the bus or the watchdog";
            // Empty where the kernel keeps no schedstat.
            const std::string delayed = delayed_before && delayed_after
                ? std::to_string(std::min(took, usec_since(*delayed_before, *delayed_after)))
                : std::string();
            // Where the rest went: on a CPU (ours, or the kernel's work for us), or asleep.
            // Empty where getrusage() failed.
            std::optional<ThreadUsage> used;
            if (used_before && used_after)
                used = used_after->since(*used_before);
            auto count = [&used](std::uint64_t ThreadUsage::*field) {
                return used ? std::to_string((*used).*field) : std::string();
            };
            const std::string used_text = !used ? std::string()
                : "; " + count(&ThreadUsage::user_usec) + " us in user space, " +
                    count(&ThreadUsage::system_usec) + " us in the kernel, " +
                    std::to_string(used->minor_faults + used->major_faults) +
                    " page fault(s) (" + count(&ThreadUsage::major_faults) + " major), " +
                    count(&ThreadUsage::sleeps) + " sleep(s)";
            journal::log(LogLevel::debug,
                         "event loop dispatch took " + std::to_string(took) + " us (" + what +
                             ")" +
                             (delayed.empty() ? "" : ", " + delayed + " us of it waiting for a CPU") +
                             used_text + (took > longest_usec ? " (longest so far)" : ""),
                         {{"DISPATCH_USEC", std::to_string(took)},
                          {"DISPATCH_WHAT", what},
                          {"DISPATCH_RUN_DELAY_USEC", delayed},
                          {"DISPATCH_USER_USEC", count(&ThreadUsage::user_usec)},
                          {"DISPATCH_SYSTEM_USEC", count(&ThreadUsage::system_usec)},
                          {"DISPATCH_MINOR_FAULTS", count(&ThreadUsage::minor_faults)},
                          {"DISPATCH_MAJOR_FAULTS", count(&ThreadUsage::major_faults)},
                          {"DISPATCH_SLEEPS", count(&ThreadUsage::sleeps)}});
        }
        longest_usec = std::max(longest_usec, took);
    }
    loop_busy.store(false, std::memory_order_relaxed); // the signals sent at the end need not wait
    loop_priority_.set_wanted(false); // what follows is not timed in stretches
    if (r >= 0)
        (void)sd_event_get_exit_code(event_.get(), &r);
    journal::log(LogLevel::debug,
                 "longest event loop dispatch: " + std::to_string(longest_usec) + " us",
                 {{"DISPATCH_USEC_MAX", std::to_string(longest_usec)}});
    sd_notify(0, "STOPPING=1");
    executor_->resume_all();
    // A synchronous call to systemd and a synced save: after the loop, which nothing waits on
    // any more (in the SIGTERM's dispatch, 76 ms under emulation).
    if (stop_signalled_ && bus_) {
        try {
            fault_point("stop-asks-systemd");
            if (system_stopping(bus_.get()))
                operations_->record_clean_shutdown(kernel_oops_count());
        } catch (...) {
        }
    }
    if (metrics_)
        metrics_->stopping();
    if (r < 0) {
        journal::log(LogLevel::err, std::string("the event loop failed: ") + std::strerror(-r));
        return 1;
    }
    return 0;
}

int Service::on_signal(sd_event_source*, const signalfd_siginfo*, void* userdata) noexcept
{
    label_dispatch("a signal");
    auto* self = static_cast<Service*>(userdata);
    try {
        // First what must not wait: every process a hold keeps stopped goes on now.
        self->executor_->resume_all();
        // The calls waiting for an Apply are refused (nothing of theirs is done), and the Apply
        // under way ends (its caller is answered) before the desired state is saved again.
        self->manager_->refuse_waiting();
        if (self->off_loop_)
            self->off_loop_->finish_now();
        // Its signals and its reply, which wait for their read of the patches.
        if (self->patches_reader_)
            self->patches_reader_->flush();
        self->stop_signalled_ = true; // whether the system is stopping: asked once it ended
        journal::log(LogLevel::info, "stopping; the kernel keeps every patch as it is");
    } catch (...) {
    }
    return sd_event_exit(self->event_.get(), 0);
}

void Service::schedule_tick(std::uint64_t delay_usec)
{
    // From now, not from the loop's wake-up: a long dispatch before must not eat the delay.
    const std::uint64_t at = monotonic_usec() + delay_usec;
    if (timer_) {
        (void)sd_event_source_set_time(timer_.get(), at);
        (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_ONESHOT);
        return;
    }
    sd_event_source* source = nullptr;
    if (sd_event_add_time(event_.get(), &source, CLOCK_MONOTONIC, at, 0, on_tick, this) >= 0)
        timer_.reset(source);
}

int Service::on_tick(sd_event_source*, std::uint64_t, void* userdata) noexcept
{
    label_dispatch("the tick");
    try {
        static_cast<Service*>(userdata)->tick();
    } catch (const std::exception& e) {
        journal::log(LogLevel::err, std::string("a tick failed: ") + e.what());
    } catch (...) {
    }
    return 0;
}

void Service::operation_ended()
{
    // The ladder's kick changes nothing a look shows, and its look scheduled the next tick:
    // that one comes at its time, unless a tick was held meanwhile.
    const bool kick = std::exchange(kick_writing_, false);
    if (!kick)
        ++kernel_acts_;
    if (operations_->busy())
        return; // a call that waited started the next one
    // The calls parked behind a write of the service's own (the adapter resumes those behind
    // its calls' operations itself).
    manager_->resume_waiting();
    if (operations_->busy())
        return;
    if (events_source_)
        (void)sd_event_source_set_enabled(events_source_.get(), SD_EVENT_ON);
    if (!kick || std::exchange(tick_held_, false))
        schedule_tick(0);
}

Service::KernelLook Service::read_kernel() const
{
    KernelLook look;
    fault_point("tick-reads-kernel");
    look.patches = kernel_.patches();
    look.read_usec = monotonic_usec();
    look.shim_version = kernel_.shim_version();
    look.oops_count = kernel_oops_count();
    return look;
}

void Service::tick()
{
    // Nothing changes the patches or follows their transitions while an operation's blocking
    // work runs: the tick after its end (operation_ended) does. Nor while a tick waits for its
    // read of the kernel: that tick goes on once it has it.
    if (operations_->busy() || tick_reading_) {
        tick_held_ = tick_held_ || operations_->busy();
        return;
    }
    tick_held_ = false;
    const std::uint64_t started = monotonic_usec();
    executor_->tidy();
    int events = 0;
#if LIVEPATCHD_HAVE_BPF
    // lpshim's events before the look at sysfs: an end the look would see is known first
    // (forced by hand; a Revert that raced the completion), and the look's time bounds the
    // starts it accounts for (TransitionWatcher::kernel_started).
    if (events_) {
        if (auto consumed = events_->consume(); !consumed)
            journal::log(LogLevel::warning, consumed.error().message);
        else
            events = *consumed;
    }
#endif
    const std::uint64_t consumed_usec = monotonic_usec();
    if (!kernel_reader_) {
        tick_with(read_kernel(), started, consumed_usec, events);
        return;
    }
    // The loop serves on while the kernel is read. Unless it acted meanwhile in a way the look
    // would not show (kernel_acts_): then the look is dropped and the next tick reads again.
    try {
        auto look = std::make_shared<KernelLook>();
        kernel_reader_->post(
            [this, look] { *look = read_kernel(); },
            [this, look, acts = kernel_acts_, started, consumed_usec, events] {
                tick_reading_ = false;
                if (operations_->busy()) {
                    tick_held_ = true;
                    return; // its end ticks
                }
                if (acts != kernel_acts_) {
                    schedule_tick(0);
                    return;
                }
                try {
                    tick_with(*look, started, consumed_usec, events);
                } catch (const std::exception& e) {
                    journal::log(LogLevel::err, std::string("a tick failed: ") + e.what());
                }
            });
    } catch (const std::bad_alloc&) {
        tick_with(read_kernel(), started, consumed_usec, events); // not posted: read here
        return;
    }
    tick_reading_ = true;
}

void Service::tick_with(const KernelLook& look, std::uint64_t started,
                        std::uint64_t consumed_usec, int events)
{
    if (!look.patches) {
        journal::log(LogLevel::err, "cannot read the kernel's patches: " +
                                        look.patches.error().message);
        schedule_tick(idle_tick_usec);
        return;
    }
    const std::uint64_t resumed_usec = monotonic_usec();
    const std::vector<KernelPatch>& in_kernel = *look.patches;
    follow_transition(in_kernel, look.read_usec);
    // What a replace loaded by hand (or by the boot apply) took the place of, if one ended.
    operations_->forget_replaced(in_kernel);
    const std::uint64_t followed_usec = monotonic_usec();
    // A removal of modules runs as blocking work: the boot apply's next patch waits for the
    // tick after its end.
    if (!watcher_.watched() && !operations_->unload_unpatched(in_kernel))
        (void)operations_->apply_next_queued(in_kernel); // watched from its start
    // lpshim.ko unloaded or loaded again by hand. With BPF attached it cannot be (the programs
    // hold it), and ticks wait for events; without BPF, ticks run every second.
    if (look.shim_version != shim_version_) {
        shim_version_ = look.shim_version;
        manager_->shim_version_changed();
        if (metrics_)
            metrics_->shim_version_changed();
    }
    operations_->keep_crash_guard(in_kernel, look.oops_count);
    if (!tick_listing_)
        last_tick_usec_ = monotonic_usec() - started;
    schedule_next_tick();
    // Each part timed, for a reader of a long tick's DISPATCH_USEC line; the read of the
    // kernel is off the loop (with the wait for its turn on the loop after it).
    if (const std::uint64_t now = monotonic_usec(); now - started >= 20'000)
        journal::log(LogLevel::debug,
                     "the tick took " + std::to_string(now - started) + " us: " +
                         std::to_string(consumed_usec - started) + " us " +
                         std::to_string(events) + " lpshim event(s), " +
                         std::to_string(resumed_usec - consumed_usec) +
                         " us the kernel's patches (read off the loop), " +
                         std::to_string(followed_usec - resumed_usec) +
                         " us following the transition, " + std::to_string(now - followed_usec) +
                         " us the rest",
                     {{"TICK_USEC", std::to_string(now - started)}});
}

void Service::schedule_next_tick()
{
    // The crash-loop guard's next deadline, on CLOCK_BOOTTIME like its window.
    if (const auto deadline = operations_->crash_guard_deadline()) {
        if (guard_timer_) {
            (void)sd_event_source_set_time(guard_timer_.get(), *deadline);
            (void)sd_event_source_set_enabled(guard_timer_.get(), SD_EVENT_ONESHOT);
        } else {
            sd_event_source* source = nullptr;
            if (sd_event_add_time(event_.get(), &source, CLOCK_BOOTTIME, *deadline, 0, on_tick,
                                  this) >= 0)
                guard_timer_.reset(source);
        }
    } else if (guard_timer_) {
        (void)sd_event_source_set_enabled(guard_timer_.get(), SD_EVENT_OFF);
    }
    if (tick_listing_)
        return; // the next tick is scheduled once the pending tasks are listed
    if (watcher_.watched() || operations_->boot_queue_size() > 0) {
        // A look at a transition costs more with more tasks pending (seconds at 30,000 under
        // TCG: listing them, in slices, and the remediation round): the next comes at least
        // twice that long after it, so that the loop's other work (bus calls,
        // ListPendingTasks' slices at idle priority, the holds' SIGCONT) and the kernel's
        // passes keep the CPU two thirds of the time; at most a second.
        schedule_tick(std::clamp(2 * last_tick_usec_, busy_tick_usec, idle_tick_usec));
        return;
    }
    if (!events_source_) {
        schedule_tick(idle_tick_usec);
        return;
    }
    // No event says when lpshim lets go of an unpatched patch's module: a tick looks then.
    if (const auto due = operations_->next_removal_usec()) {
        const std::uint64_t now = boottime_usec();
        schedule_tick(*due > now ? *due - now : 0);
        return;
    }
    if (timer_)
        (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
}

void Service::watch(std::string_view patch, std::string_view target, bool reversal)
{
    ++kernel_acts_;
#if LIVEPATCHD_HAVE_BPF
    if (events_)
        watcher_.expect_kernel_start(patch, target); // lpshim's tracepoint reports it too
#endif
    // Now, after the action's write (not the loop's wake-up time, which is before it).
    const std::uint64_t now = monotonic_usec();
    handle(reversal ? watcher_.reverse(patch, target, now) : watcher_.watch(patch, target, now));
    schedule_tick(0);
}

void Service::handle(const std::vector<TransitionChange>& events)
{
    // First: the watcher knows already, and what follows may throw.
    loop_priority_.set_wanted(watcher_.watched().has_value());
    for (const TransitionChange& e : events) {
        switch (e.kind) {
        case TransitionChange::Kind::started:
            ++transition_seq_;
            status_shown_ = false;
            pending_counted_.reset();
            remediation_.reset();
            retired_seen_->retire(seen_);
            kicks_.clear();
            stall_acted_ = false;
            stall_waiting_.clear();
            stall_looked_usec_ = 0;
            ++stall_facts_epoch_;
            retired_facts_->retire(stall_facts_);
            save_transition_record();
            report_transition_change(e, sink(), *operations_);
            journal::log(LogLevel::info, e.patch + ": transition to " + e.target + " started",
                         {{"PATCH", e.patch},
                          {"TRANSITION", e.target},
                          {"MESSAGE_ID", std::string(journal::message_id::transition_started)}});
            break;
        case TransitionChange::Kind::reversed:
            ++transition_seq_;
            status_shown_ = false; // TransitionTarget now shows the way back
            save_transition_record();
            journal::log(LogLevel::info,
                         e.patch + ": transition to " + e.target + " reversed: going back to " +
                             (e.target == "patched" ? "unpatched" : "patched"),
                         {{"PATCH", e.patch}, {"TRANSITION", e.target}});
            break;
        case TransitionChange::Kind::ended: {
            ++transition_seq_;
            list_pool_->release(); // the lists of its looks are not kept for the next one
            remove_transition_record();
            const bool as_asked = e.outcome == outcome_completed;
            journal::log(as_asked ? LogLevel::info : LogLevel::warning,
                         e.patch + ": transition to " + e.target + " " + e.outcome + " after " +
                             seconds_text(e.usec) +
                             (as_asked ? "" : "; the patch is " + e.state),
                         {{"PATCH", e.patch},
                          {"TRANSITION", e.target},
                          {"OUTCOME", e.outcome},
                          {"DURATION_USEC", std::to_string(e.usec)},
                          {"MESSAGE_ID", std::string(journal::message_id::transition_finished)}});
            report_transition_change(e, sink(), *operations_);
            break;
        }
        case TransitionChange::Kind::stalled: {
            const std::string limit =
                std::to_string(config_.transition.stall_timeout_ms.count()) + " ms";
            journal::log(LogLevel::warning,
                         e.patch + ": the transition to " + e.target +
                             " has not completed after " + limit + "; on_stall is " +
                             std::string(to_string(config_.transition.on_stall)),
                         {{"PATCH", e.patch}, {"TRANSITION", e.target}});
            break;
        }
        }
    }
}

void Service::follow_transition(const std::vector<KernelPatch>& in_kernel,
                                std::uint64_t read_usec)
{
    const std::uint64_t now = read_usec;
    handle(watcher_.update(in_kernel, now));
    if (!watcher_.watched()) {
        const TransitionStatus idle = transition_status(0);
        sink().transition_status(idle);
        update_status_line(idle);
        return;
    }
    if (!status_shown_) {
        // A transition that started (or was found), or turned back, is shown now, not only
        // once a look has counted its tasks (seconds at tens of thousands): until the first
        // look PendingTasks is 0, and nothing on the bus reads lpshim's list.
        status_shown_ = true;
        const TransitionStatus status = transition_status(pending_counted_.value_or(0));
        sink().transition_status(status);
        update_status_line(status, pending_counted_.has_value());
    }
    if (tick_listing_)
        return; // an earlier tick's listing is under way: it follows on
    tick_listing_ = true;
    tick_started_usec_ = now;
    auto listed = [this, seq = transition_seq_](Result<std::vector<PendingTask>> tasks) {
        label_dispatch("the look at the pending tasks");
        tick_listing_ = false;
        const bool same = watcher_.watched() && seq == transition_seq_;
        // The next tick is scheduled below whatever fails: nothing else would.
        try {
            if (same) {
                const std::size_t count = tasks ? tasks->size() : 0;
                const std::uint64_t started = monotonic_usec();
                follow_pending(std::move(tasks));
                // The dispatch this runs in, for a reader of DISPATCH_USEC lines.
                if (const std::uint64_t took = monotonic_usec() - started; took >= 20'000)
                    journal::log(LogLevel::debug,
                                 "the look at " + std::to_string(count) +
                                     " pending task(s) took " + std::to_string(took) + " us (" +
                                     std::to_string(look_remedy_usec_) + " us the ladder, " +
                                     std::to_string(look_stall_usec_) + " us the stall, " +
                                     std::to_string(look_shown_usec_) + " us its count shown), " +
                                     std::to_string(started - tick_started_usec_) +
                                     " us after the tick that listed them",
                                 {{"FOLLOW_USEC", std::to_string(took)}});
            }
        } catch (const std::exception& e) {
            journal::log(LogLevel::err,
                         std::string("a look at the pending tasks failed: ") + e.what());
        } catch (...) {
        }
        last_tick_usec_ = monotonic_usec() - tick_started_usec_;
        if (same)
            schedule_next_tick();
        else
            schedule_tick(0); // listed for a transition that is over: look again now
    };
    try {
        list_pending(std::move(listed));
    } catch (...) {
        tick_listing_ = false; // not asked: the next tick asks again
        throw;
    }
}

void Service::follow_pending(Result<std::vector<PendingTask>> tasks)
{
    std::uint32_t count = 0;
    look_remedy_usec_ = look_stall_usec_ = look_shown_usec_ = 0;
    if (tasks) {
        const std::uint64_t now = monotonic_usec();
        count = static_cast<std::uint32_t>(tasks->size());
        pending_counted_ = count;
        // While an Apply's blocking work runs, the ladder and the stall wait for the next look.
        if (operations_->busy()) {
            list_pool_->give_back(std::move(*tasks));
            const TransitionStatus status = transition_status(count);
            sink().transition_status(status);
            update_status_line(status);
            return;
        }
        // (Each part timed, for the look's debug line.) The stall first: its write to lpshim
        // runs off the loop, and a look that started one has no ladder round (no kick in every
        // look keeps the stall from acting, and nothing is stopped for a transition being
        // turned around).
        if (watcher_.watched() && watcher_.watched()->stalled)
            act_on_stall(*tasks);
        const std::uint64_t stalled = monotonic_usec();
        look_stall_usec_ = stalled - now;
        if (!operations_->busy())
            remediate(std::chrono::milliseconds(watcher_.elapsed_usec(now) / usec_per_msec),
                      *tasks);
        look_remedy_usec_ = monotonic_usec() - stalled;
        // Emptied in later turns, its storage kept for the next list (PendingListPool).
        list_pool_->give_back(std::move(*tasks));
    }
    const std::uint64_t shown = monotonic_usec();
    const TransitionStatus status = transition_status(count);
    sink().transition_status(status);
    update_status_line(status);
    look_shown_usec_ = monotonic_usec() - shown;
}

TransitionStatus Service::transition_status(std::uint32_t pending) const
{
    TransitionStatus status = watcher_.status();
    if (status.state == ServiceState::idle)
        return status;
    // For people: when it started by the wall clock of now, whatever steps it took since.
    const std::uint64_t elapsed = watcher_.elapsed_usec(monotonic_usec());
    const std::uint64_t realtime = realtime_usec();
    status.started_usec = realtime > elapsed ? realtime - elapsed : 0;
    status.pending_tasks = pending;
    return status;
}

// Why a stalled transition is not reverted, in the journal and as TransitionStalled (wait),
// once per reason.
void Service::report_stall_waiting(const WatchedTransition& watched, std::uint64_t elapsed,
                                   const std::string& reason)
{
    if (reason == stall_waiting_)
        return;
    stall_waiting_ = reason;
    journal::log(LogLevel::warning,
                 watched.patch + ": the stalled transition to " + watched.direction() +
                     " is not reverted: " + reason,
                 {{"PATCH", watched.patch}, {"TRANSITION", watched.direction()}});
    sink().transition_stalled(watched.patch, to_string(StallAction::wait), elapsed);
}

void Service::act_on_stall(const std::vector<PendingTask>& pending)
{
    if (stall_acted_ || operations_->busy())
        return;
    const std::uint64_t now = now_monotonic(event_.get());
    if (stall_looked_usec_ != 0 && now - stall_looked_usec_ < stall_look_usec)
        return;
    const WatchedTransition watched = *watcher_.watched();
    // Only a revert looks at who blocks. Reading a task's /proc facts costs 0.1-0.3 ms, and
    // tens of milliseconds when the kernel works on the task's process; thousands may block.
    // The facts are read off the loop, a batch at a time (read_stall_facts), and a look
    // decides once every blocker's are read (one whose /proc cannot be parsed is left out of
    // one decision, as before). A blocker that rules the revert out decides at once. Facts
    // are kept for stall_facts_max_age_usec at most (a task may go into uninterruptible sleep,
    // change its uid, or exit and leave its tid to another): past it they are read again, so
    // a revert is never decided on older ones; with too many blockers to read in that time,
    // the stall waits.
    constexpr std::uint64_t stall_facts_max_age_usec = 30'000 * usec_per_msec;
    constexpr std::size_t stall_facts_batch = 256;
    std::vector<const TaskFacts*> blockers; // in stall_facts_
    bool complete = true;
    const std::uint64_t look = monotonic_usec();
    if (stall_facts_.empty())
        stall_facts_since_usec_ = look;
    std::vector<PendingTask> unread; // the next batch to read
    if (config_.transition.on_stall == StallAction::revert) {
        // Entries are updated in place and only an unreadable one is erased here: blockers
        // points into the others (and a tid may be listed twice: lpshim's debugfs list prints
        // a task reaped between its walks of the live and the exiting tasks twice).
        for (const PendingTask& task : pending) {
            const auto known = stall_facts_.find(task.tid);
            if (known != stall_facts_.end() && known->second.facts.task.tgid == task.tgid &&
                usec_since(known->second.read_usec, look) <= stall_facts_max_age_usec) {
                if (known->second.unreadable)
                    stall_facts_.erase(known); // left out of this decision; a later look reads it
                else
                    blockers.push_back(&known->second.facts);
                continue;
            }
            complete = false;
            if (!stall_reading_ && unread.size() < stall_facts_batch)
                unread.push_back(task);
        }
    }
    StallDecision decision =
        decide_stall(config_.transition.on_stall, watched.direction(), blockers);
    const std::uint64_t elapsed = watcher_.elapsed_usec(now);
    if (!complete && (decision.action != StallAction::wait || blockers.empty())) {
        // Not every blocker read yet: the next batch is read, and a later look decides (a
        // look that decides reads nothing: the decision retires what was read). Past the
        // facts' age, it says why nothing happens (and reads on: fewer may block later).
        if (!unread.empty())
            read_stall_facts(std::move(unread));
        if (look - stall_facts_since_usec_ > stall_facts_max_age_usec)
            // (No count in it: it is said once, not at every change of the count.)
            report_stall_waiting(watched, elapsed,
                                 "more tasks block it than can be looked at within 30 s: "
                                 "waiting (Revert or Force it by hand; livepatchctl blocking "
                                 "lists them)");
        return;
    }
    // A decision is on facts read since the last one: the next look reads them again.
    stall_looked_usec_ = now;
    ++stall_facts_epoch_;
    retired_facts_->retire(stall_facts_);
    if (decision.action == StallAction::revert &&
        stall_step(decision.action, watched) == StallStep::wait)
        decision = {StallAction::wait,
                    "it is already the reversal an operator asked for (Revert during an apply, "
                    "or Apply during a revert), which on_stall does not undo: waiting (Force "
                    "it, or look at livepatchctl blocking)"};
    if (!decision.reason.empty()) {
        report_stall_waiting(watched, elapsed, decision.reason);
        return;
    }
    stall_acted_ = true;
    sink().transition_stalled(watched.patch, to_string(decision.action), elapsed);
    const std::string patch = watched.patch;
    const auto failed = [patch](const Error& e) {
        journal::log(LogLevel::err, e.message,
                     {{"PATCH", patch},
                      {"MESSAGE_ID", std::string(journal::message_id::action_failed)}});
    };
    // The writes to lpshim walk every task: they run off the loop (PatchOperations::busy()
    // meanwhile, which holds the tick and lpshim's events, so that the watch is told of the
    // reversal before its events come).
    switch (stall_step(decision.action, watched)) {
    case StallStep::wait:
        break;
    case StallStep::reverse_to_unpatched:
        operations_->write_kernel(
            [control = control_.get(), patch] {
                fault_point("stall-writes-kernel");
                return control->revert(patch);
            },
            [this, patch, failed](Result<void> done) {
                if (!done)
                    return failed(done.error());
                watch(patch, "unpatched", true);
            });
        break;
    case StallStep::reverse_to_patched:
        // A stalled revert goes back: the patch stays applied in this boot. The Revert already
        // stopped wanting it, so the next boot does not apply it.
        operations_->write_kernel(
            [control = control_.get(), patch] {
                fault_point("stall-writes-kernel");
                return control->enable(patch);
            },
            [this, patch, failed](Result<void> done) {
                if (!done)
                    return failed(done.error());
                watch(patch, "patched", true);
                journal::log(LogLevel::warning,
                             patch + ": the stalled revert is reversed (on_stall is revert): "
                                     "the patch stays applied until the next boot, which does "
                                     "not apply it; revert it again once the tasks that block "
                                     "it are gone (livepatchctl blocking)",
                             {{"PATCH", patch}});
            });
        break;
    case StallStep::force:
        // Through PatchOperations, as Force: the patch's Forced becomes true, and is kept.
        operations_->force(patch, [failed](OpResult<void> forced) {
            if (!forced)
                failed(forced.error());
        });
        break;
    }
}

void Service::read_stall_facts(std::vector<PendingTask> tasks)
{
    // For at most budget_usec (the rest are posted by a later look), so that the facts arrive
    // while fresh and their merge is short: 50 ms on the thread, 20 on the loop without it.
    struct Read {
        Result<TaskFacts> facts;
        std::uint64_t read_usec = 0;
    };
    struct Batch {
        std::vector<PendingTask> tasks;
        std::vector<Read> reads; // of the first tasks
        std::uint64_t budget_usec = 0;
        std::uint64_t took_usec = 0;
        std::string longest_read; // TaskFactsLook::longest_read_parts()
    };
    auto batch = std::make_shared<Batch>();
    batch->tasks = std::move(tasks);
    batch->budget_usec = (facts_reader_ ? 50 : 20) * usec_per_msec;
    auto work = [batch] {
        try {
            TaskFactsLook look(TaskFactsLook::Units::skip);
            const std::uint64_t start = monotonic_usec();
            for (const PendingTask& task : batch->tasks) {
                if (!batch->reads.empty() && monotonic_usec() - start >= batch->budget_usec)
                    break;
                fault_point("stall-reads-facts");
                Result<TaskFacts> facts = look.read(task);
                batch->reads.push_back(Read{std::move(facts), monotonic_usec()});
            }
            batch->took_usec = monotonic_usec() - start;
            batch->longest_read = look.longest_read_parts();
        } catch (...) {
            // (out of memory: the reads so far are kept, the next look reads on)
        }
    };
    auto merge = [this, batch, epoch = stall_facts_epoch_] {
        stall_reading_ = false;
        // For a reader of the journal: reads far over their budget, and the slowest.
        if (batch->took_usec >= 2 * batch->budget_usec)
            journal::log(LogLevel::debug,
                         "the stall's read of " + std::to_string(batch->reads.size()) +
                             " blocker(s) took " + std::to_string(batch->took_usec) +
                             " us (the longest read: " + batch->longest_read + ")");
        if (epoch != stall_facts_epoch_)
            return; // a decision or a new transition since: read for it again
        for (std::size_t i = 0; i < batch->reads.size(); ++i) {
            const PendingTask& task = batch->tasks[i];
            Read& read = batch->reads[i];
            StallFacts entry;
            entry.read_usec = read.read_usec;
            if (read.facts) {
                entry.facts = std::move(*read.facts);
            } else if (read.facts.error().errnum == ESRCH) {
                // Gone from /proc, not yet from the kernel's next pass: it is leaving.
                entry.facts.task = task;
                entry.facts.state = 'X';
            } else {
                entry.facts.task = task;
                entry.unreadable = true;
            }
            stall_facts_[task.tid] = std::move(entry);
        }
    };
    if (facts_reader_) {
        facts_reader_->post(std::move(work), std::move(merge));
        stall_reading_ = true; // (once posted: post may throw)
        return;
    }
    work();
    merge();
}

void Service::remediate(std::chrono::milliseconds elapsed, const std::vector<PendingTask>& pending)
{
    const std::string patch = watcher_.watched()->patch;
    // /proc is read only for the tasks the stop rung will look at: this runs every 100 ms of a
    // transition, possibly with thousands of tasks pending (reading one task's /proc and
    // sd-login facts costs about 0.1-0.3 ms). So a round reads for at most facts_budget_usec,
    // from where the last one stopped, and the stop rung decides on the tasks read (the others
    // at the next rounds); a process stopped already needs no reading.
    constexpr std::uint64_t facts_budget_usec = 20 * usec_per_msec;
    const std::uint64_t now = now_monotonic(event_.get());
    // When a task was first seen pending, for the tasks the list gives no time for (lpshim's
    // debugfs list): the only per-task work of a round before the stop rung.
    for (const PendingTask& task : pending)
        if (task.blocked_since_usec == 0) {
            // (An entry made for an action, before the list came from debugfs, has no time.)
            Seen& seen = seen_[task.tid];
            if (seen.first_usec == 0)
                seen.first_usec = now;
        }
    std::vector<TaskFacts> facts;
    if (remediation_.needs_facts(elapsed) && !pending.empty()) {
        const std::uint64_t deadline = monotonic_usec() + facts_budget_usec;
        const std::size_t first = facts_cursor_ % pending.size();
        facts_cursor_ = 0;
        TaskFactsLook facts_look;
        for (std::size_t i = 0; i < pending.size(); i++) {
            const PendingTask& task = pending[(first + i) % pending.size()];
            if (remediation_.already_stopped(task))
                continue;
            if (i > 0 && monotonic_usec() >= deadline) {
                facts_cursor_ = (first + i) % pending.size();
                break;
            }
            if (auto f = facts_look.read(task))
                facts.push_back(std::move(*f));
        }
        // For a reader of the look's debug line: one read far over its share.
        if (const std::uint64_t end = monotonic_usec(); end > deadline + facts_budget_usec)
            journal::log(LogLevel::debug,
                         "reading what /proc says of " + std::to_string(facts_look.reads()) +
                             " pending task(s) took " + std::to_string(end - deadline) +
                             " us over its budget of " + std::to_string(facts_budget_usec) +
                             " us (the units of " + std::to_string(facts_look.unit_reads()) +
                             " process(es) read from sd-login; the longest read: " +
                             facts_look.longest_read_parts() + ")");
    }
    std::vector<std::pair<std::uint32_t, std::string>> refused;
    const std::vector<Remedy> remedies =
        remediation_.decide(elapsed, pending.size(), facts, &refused);
    std::vector<Remedy> stops;
    for (const Remedy& remedy : remedies) {
        if (remedy.kind != RemedyKind::kick) {
            stops.push_back(remedy);
            continue;
        }
        // lpshim's kick walks the pending tasks: off the loop (one per round). It changes
        // nothing a look at the patches shows.
        if (operations_->busy())
            continue;
        kick_writing_ = true; // its end: operation_ended()
        try {
            operations_->write_kernel(
                [control = control_.get()] {
                    fault_point("ladder-kicks-kernel");
                    return control->kick();
                },
                [this, patch, count = pending.size()](Result<void> kicked) {
                    if (!kicked) {
                        journal::log(LogLevel::warning, kicked.error().message,
                                     {{"PATCH", patch}});
                        return;
                    }
                    kicks_.record(monotonic_usec());
                    if (metrics_)
                        metrics_->tasks_kicked();
                    journal::log(LogLevel::debug,
                                 patch + ": kicked " + std::to_string(count) + " pending task(s)",
                                 {{"PATCH", patch}});
                });
        } catch (...) {
            kick_writing_ = false; // not started
            throw;
        }
    }
    std::vector<std::pair<TaskFacts, std::string>> refusals;
    for (auto& [tid, why] : refused) {
        const auto f = std::find_if(facts.begin(), facts.end(),
                                    [tid = tid](const TaskFacts& x) { return x.task.tid == tid; });
        if (f != facts.end())
            refusals.emplace_back(*f, std::move(why));
    }
    if (stops.empty() && refusals.empty())
        return;
    // The stacks of the tasks the round logs only, in one walk; the stops wait for it.
    list_stacks(tasks_to_show(remedies, refused),
                [this, seq = transition_seq_, stops = std::move(stops),
                 refusals = std::move(refusals)](Stacks stacks, bool walked) {
                    label_dispatch("the stop round");
                    stop_and_report(seq, stops, refusals, stacks, walked);
                });
}

void Service::stop_and_report(std::uint64_t seq, const std::vector<Remedy>& stops,
                              const std::vector<std::pair<TaskFacts, std::string>>& refused,
                              const Stacks& stacks, bool walked)
{
    // Decided for a transition that is over: its ladder was reset with it.
    if (!watcher_.watched() || seq != transition_seq_)
        return;
    const std::string patch = watcher_.watched()->patch;
    for (const auto& [f, why] : refused) {
        const std::uint32_t tid = f.task.tid;
        const std::string kind(to_string(f.kind));
        const std::string unit = f.units.empty() ? "" : f.units.back();
        journal::log(LogLevel::warning,
                     patch + ": task " + std::to_string(tid) + " (" + f.task.comm + ", " + kind +
                         ") blocks the transition in " +
                         (f.task.function.empty() ? "?" : f.task.function) +
                         "; not stopped: " + why,
                     {{"PATCH", patch},
                      {"TID", std::to_string(tid)},
                      {"TASK_KIND", kind},
                      {"UNIT", unit},
                      {"FUNCTION", f.task.function},
                      {"STACK", stack_text(stacks, tid)}});
        sink().task_blocked(f.task, kind, "not stopped: " + why);
        seen_[tid].actions.push_back("not stopped: " + why);
    }
    for (const Remedy& stop : stops) {
        // The walk lists the tasks still pending, each with an entry in stacks: one that
        // switched meanwhile needs no stop (and its listed reason is no longer true).
        if (walked && !stacks.count(stop.target.task.tid)) {
            journal::log(LogLevel::debug,
                         patch + ": task " + std::to_string(stop.target.task.tid) +
                             " no longer blocks the transition: not stopped",
                         {{"PATCH", patch}});
            continue;
        }
        // Read again: the walk for the stacks took time, in which the task may have exited
        // (its tid reused), changed its uid or gone into uninterruptible sleep. It is stopped
        // as it is now, if it still may be.
        auto now = read_task_facts(stop.target.task);
        if (!now || now->start_time != stop.target.start_time) {
            journal::log(LogLevel::debug,
                         patch + ": task " + std::to_string(stop.target.task.tid) +
                             " is gone: not stopped",
                         {{"PATCH", patch}});
            continue;
        }
        if (auto why = why_not_stop(*now, config_.remediation.stop_continue, ::getpid())) {
            journal::log(LogLevel::warning,
                         patch + ": task " + std::to_string(now->task.tid) + " (" +
                             now->task.comm + ") changed since it was looked at; not stopped: " +
                             *why,
                         {{"PATCH", patch}, {"TID", std::to_string(now->task.tid)}});
            continue;
        }
        stop_for_a_moment(*now, stacks);
    }
}

// SIGSTOP now, SIGCONT hold_ms later: the task leaves the patched function on its way to the
// stop and switches at its return to user mode.
void Service::stop_for_a_moment(const TaskFacts& facts, const Stacks& stacks)
{
    const std::string patch = watcher_.watched()->patch;
    const PendingTask& task = facts.task;
    const std::string unit = facts.units.empty() ? "" : facts.units.back();
    const auto pid = static_cast<pid_t>(task.tgid);
    const std::string hold = std::to_string(config_.remediation.stop_continue.hold_ms.count());
    journal::log(LogLevel::notice,
                 patch + ": stopping process " + std::to_string(pid) + " (" + task.comm +
                     (unit.empty() ? "" : ", " + unit) + ") for " + hold + " ms: task " +
                     std::to_string(task.tid) + " is asleep in " + task.function,
                 {{"PATCH", patch},
                  {"TID", std::to_string(task.tid)},
                  {"UNIT", unit},
                  {"FUNCTION", task.function},
                  {"STACK", stack_text(stacks, task.tid)}});
    // The SIGSTOP is sent from the executor's thread: what follows runs once it was (with that
    // thread, once its SIGCONT was sent too: RemediationExecutor).
    const auto stopped = [this, patch, task, pid, hold,
                          seq = transition_seq_](const Result<std::uint64_t>& took) {
        if (!took) {
            journal::log(LogLevel::warning, took.error().message, {{"PATCH", patch}});
            return;
        }
        // For a reader of the journal: a process of thousands of threads stops slowly.
        if (*took >= 20'000)
            journal::log(LogLevel::debug,
                         patch + ": stopping process " + std::to_string(pid) + " took " +
                             std::to_string(*took) + " us",
                         {{"PATCH", patch}, {"STOP_USEC", std::to_string(*took)}});
        // Told with the SIGCONT, often after the transition the stop ended: the act is
        // reported all the same, what is seen of a task only for its own transition.
        sink().task_remediated(task, "stop-continue");
        if (seq == transition_seq_)
            seen_[task.tid].actions.push_back("stopped for " + hold + " ms");
    };
    if (auto asked = executor_->stop_for_a_moment(pid, static_cast<pid_t>(task.tid),
                                                  facts.start_time, stopped);
        !asked)
        journal::log(LogLevel::warning, asked.error().message, {{"PATCH", patch}});
}

BlockingTask Service::blocking_task(const PendingTask& task, TaskFactsLook& look)
{
    BlockingTask b;
    if (auto facts = look.read(task))
        b.facts = std::move(*facts);
    else
        b.facts.task = task;
    const std::uint64_t now = monotonic_usec();
    const std::uint64_t since = b.facts.task.blocked_since_usec;
    if (since != 0)
        b.blocked_usec = usec_since(since, now);
    if (b.facts.task.attempts)
        b.actions.push_back("found blocked " + std::to_string(b.facts.task.attempts) +
                            " time(s) by lpshim");
    const auto seen = seen_.find(b.facts.task.tid);
    std::uint64_t first = since;
    if (since == 0 && seen != seen_.end() && seen->second.first_usec != 0) {
        first = seen->second.first_usec;
        b.blocked_usec = usec_since(first, now);
    }
    // lpshim's kicks wake every pending task: those since it was first seen pending (none
    // when that is not known: a task no round has looked at yet), "more than" when some of
    // the kicks KickLog let go came after that.
    if (first != 0)
        if (const KickLog::Count kicked = kicks_.since(first); kicked.kicks)
            b.actions.push_back((kicked.more ? "kicked more than " : "kicked ") +
                                std::to_string(kicked.kicks) + " time(s)");
    if (seen != seen_.end())
        b.actions.insert(b.actions.end(), seen->second.actions.begin(),
                         seen->second.actions.end());
    return b;
}

void Service::save_transition_record()
{
    if (!watcher_.watched() || !state_fd_)
        return;
    // Its content now, its write on record_writer_. Not synced to disk: it is for a restart of
    // livepatchd in this boot (it names the boot), which the page cache serves; after a crash
    // of the machine the transition is gone anyway.
    write_transition_record(
        [fd = state_fd_.get(), directory = state_directory_.native(),
         text = to_transition_record(*watcher_.watched(), boot_id_)] {
            fault_point("transition-record-writes");
            if (auto saved = write_file_atomically(fd, directory, transition_record_file, text,
                                                   0600, Durability::unsynced);
                !saved) {
                // Never an older transition's record left behind for a restart to resume.
                (void)::unlinkat(fd, transition_record_file, 0);
                journal::log(LogLevel::warning,
                             saved.error().message + "; a restart of livepatchd during this "
                                                     "transition would count its stall "
                                                     "timeout from the restart");
            }
        },
        /*skippable=*/true);
}

void Service::remove_transition_record()
{
    if (state_fd_)
        write_transition_record(
            [fd = state_fd_.get()] { (void)::unlinkat(fd, transition_record_file, 0); },
            /*skippable=*/false);
}

void Service::write_transition_record(std::function<void()> write, bool skippable)
{
    // In the order asked for; a write still queued when another write or removal is asked for
    // is skipped, so the file is never more than the one under way behind the loop (a
    // restarted livepatchd must not resume an older transition's start); a removal always
    // runs. Nobody waits for either: no continuation, so the loop is not woken for them.
    const std::uint64_t asked = ++record_asked_;
    if (record_writer_) {
        try {
            record_writer_->post(
                [write, last = &record_asked_, asked, skippable] {
                    if (!skippable || last->load() == asked)
                        write();
                },
                nullptr);
            return;
        } catch (const std::bad_alloc&) {
            // Not queued: done here, after the writes queued before it (skipped now, but for
            // the one under way).
            record_writer_->flush();
        }
    }
    write();
}

void Service::resume_transition_record(const std::vector<KernelPatch>& in_kernel)
{
    if (!state_fd_)
        return;
    auto text = read_small_file_at(state_fd_.get(), transition_record_file,
                                   (state_directory_ / transition_record_file).native(), 4096);
    if (!text)
        return;
    const auto record = parse_transition_record(*text, boot_id_);
    const TransitionStatus shown = transition_from_kernel(in_kernel);
    if (record && shown.state != ServiceState::idle && shown.patch == record->patch &&
        shown.target == record->direction()) {
        watcher_.resume(*record);
        loop_priority_.set_wanted(watcher_.watched().has_value());
        journal::log(LogLevel::info,
                     record->patch + ": following the transition to " + record->target +
                         " that an earlier livepatchd started " +
                         seconds_text(usec_since(record->started_usec, monotonic_usec())) +
                         " ago",
                     {{"PATCH", record->patch}});
        return;
    }
    remove_transition_record();
}

void Service::update_status_line(const TransitionStatus& status, bool counted)
{
    std::string line;
    if (status.state == ServiceState::idle) {
        const std::size_t queued = operations_->boot_queue_size();
        line = queued == 0 ? "Idle"
                           : "Boot apply: " + std::to_string(queued) + " patch(es) to go";
    } else {
        line = std::string(status.state == ServiceState::stalled ? "Stalled: " : "") +
               status.patch + " moving to " + status.target + ", " +
               (counted ? std::to_string(status.pending_tasks) + " task(s) left"
                        : std::string("counting the pending tasks"));
    }
    if (line == status_line_)
        return;
    status_line_ = line;
    sd_notify(0, ("STATUS=" + line).c_str());
}

} // namespace livepatchd
