// SPDX-License-Identifier: GPL-2.0-only
#include "dbus/manager.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "common/c_string.hpp"
#include "common/clock.hpp"
#include "common/dispatch_label.hpp"
#include "common/journal.hpp"
#include "common/text.hpp"
#include "dbus/bus_errors.hpp"
#include "store/patch_file.hpp"

namespace livepatchd::dbus {

namespace {

std::string action_id(std::string_view verb)
{
    return std::string(polkit_action_prefix) + std::string(verb);
}

int system_error(sd_bus_error* error, const Error& e)
{
    return sd_bus_error_set_errnof(error, e.errnum > 0 ? e.errnum : EIO, "%s", e.message.c_str());
}

// system_error() as the reply to a call answered later, from the loop.
void reply_system_error(sd_bus_message* call, const Error& e)
{
    sd_bus_error error = SD_BUS_ERROR_NULL;
    (void)system_error(&error, e);
    (void)sd_bus_reply_method_error(call, &error);
    sd_bus_error_free(&error);
}

// Every C callback below is one of these: nothing may unwind into libsystemd.
template <typename Body>
int guarded(sd_bus_error* error, Body&& body) noexcept
{
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return -ENOMEM;
    } catch (const std::exception& e) {
        return sd_bus_error_set_errnof(error, EIO, "Internal error: %s", e.what());
    } catch (...) {
        return -EIO;
    }
}

// A file descriptor's name for messages and polkit's "path" detail: what /proc says it is
// (its path in the caller's mount namespace, as the kernel last knew it). For people only.
std::string name_of_fd(int fd)
{
    char target[4096];
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0)
        return {};
    return printable(std::string_view(target, static_cast<std::size_t>(n)));
}

} // namespace

std::string patch_object_path(std::string_view name)
{
    char* path = nullptr;
    const std::string external(name);
    if (sd_bus_path_encode(patch_path_prefix, external.c_str(), &path) < 0)
        throw std::bad_alloc();
    return CString(path).get();
}

std::optional<std::string> patch_name_from_path(const char* path)
{
    char* name = nullptr;
    if (sd_bus_path_decode(path, patch_path_prefix, &name) <= 0 || !name)
        return std::nullopt;
    CString owned(name);
    if (!is_valid_patch_name(owned.get()))
        return std::nullopt;
    return std::string(owned.get());
}

// The vtables and the trampolines into Manager's members.
struct ManagerVtable {
    template <int (Manager::*body)(sd_bus_message*, sd_bus_error*)>
    static int method(sd_bus_message* call, void* userdata, sd_bus_error* error) noexcept
    {
        label_dispatch("a D-Bus method call");
        auto* manager = static_cast<Manager*>(userdata);
        const int r = guarded(error, [&] { return (manager->*body)(call, error); });
        // Whatever the handler did, a polkit answer for this message is spent now (a handler
        // that failed validation on its second dispatch never asked for it), unless the call
        // waits for its turn, where it is handled again on that answer.
        if (!manager->is_waiting(call))
            manager->authorizer_.forget(call);
        return r;
    }

    static int manager_property(sd_bus* /*bus*/, const char* /*path*/, const char* /*interface*/,
                                const char* property, sd_bus_message* reply, void* userdata,
                                sd_bus_error* error) noexcept
    {
        return guarded(error, [&] {
            return static_cast<Manager*>(userdata)->manager_property(property, reply, error);
        });
    }

    static int patch_property(sd_bus* /*bus*/, const char* path, const char* /*interface*/,
                              const char* property, sd_bus_message* reply, void* userdata,
                              sd_bus_error* error) noexcept
    {
        return guarded(error, [&] {
            return static_cast<Manager*>(userdata)->patch_property(path, property, reply, error);
        });
    }

    static int find_patch(sd_bus* /*bus*/, const char* path, const char* /*interface*/,
                          void* userdata, void** found, sd_bus_error* error) noexcept
    {
        return guarded(error, [&] {
            const int r = static_cast<Manager*>(userdata)->find_patch(path, error);
            if (r > 0)
                *found = userdata;
            return r;
        });
    }

    static int enumerate(sd_bus* /*bus*/, const char* /*prefix*/, void* userdata, char*** nodes,
                         sd_bus_error* error) noexcept
    {
        return guarded(error, [&] {
            return static_cast<Manager*>(userdata)->enumerate_patches(nodes, error);
        });
    }

    static const sd_bus_vtable manager[];
    static const sd_bus_vtable patch[];
};

// clang-format off
const sd_bus_vtable ManagerVtable::manager[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("Install", "h", SD_BUS_PARAM(file),
                             "so", SD_BUS_PARAM(name) SD_BUS_PARAM(patch),
                             method<&Manager::install>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Apply", "s", SD_BUS_PARAM(name), "", ,
                             method<&Manager::apply>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Revert", "s", SD_BUS_PARAM(name), "", ,
                             method<&Manager::revert>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Remove", "s", SD_BUS_PARAM(name), "", ,
                             method<&Manager::remove>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListPatches", "", , "a(sosbbbutt)", SD_BUS_PARAM(patches),
                             method<&Manager::list_patches>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListPendingTasks", "", , "a(uusssssstasas)", SD_BUS_PARAM(tasks),
                             method<&Manager::list_pending_tasks>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetTaskStacks", "", , "a(uas)", SD_BUS_PARAM(stacks),
                             method<&Manager::get_task_stacks>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Kick", "", "", method<&Manager::kick>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Force", "s", SD_BUS_PARAM(name), "", ,
                             method<&Manager::force>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_PROPERTY("KernelRelease", "s", manager_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("ShimVersion", "s", manager_property, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("State", "s", manager_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("TransitionPatch", "s", manager_property, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("TransitionTarget", "s", manager_property, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("TransitionStartedUSec", "t", manager_property, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("PendingTasks", "u", manager_property, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_SIGNAL_WITH_NAMES("TransitionStarted", "ss",
                             SD_BUS_PARAM(patch) SD_BUS_PARAM(target), 0),
    SD_BUS_SIGNAL_WITH_NAMES("TransitionFinished", "ssst",
                             SD_BUS_PARAM(patch) SD_BUS_PARAM(target) SD_BUS_PARAM(outcome)
                             SD_BUS_PARAM(duration_usec), 0),
    SD_BUS_SIGNAL_WITH_NAMES("PatchStateChanged", "ss",
                             SD_BUS_PARAM(patch) SD_BUS_PARAM(state), 0),
    SD_BUS_SIGNAL_WITH_NAMES("TaskBlocked", "uussss",
                             SD_BUS_PARAM(tid) SD_BUS_PARAM(tgid) SD_BUS_PARAM(comm)
                             SD_BUS_PARAM(kind) SD_BUS_PARAM(function) SD_BUS_PARAM(note), 0),
    SD_BUS_SIGNAL_WITH_NAMES("TaskRemediated", "uuss",
                             SD_BUS_PARAM(tid) SD_BUS_PARAM(tgid) SD_BUS_PARAM(action)
                             SD_BUS_PARAM(comm), 0),
    SD_BUS_SIGNAL_WITH_NAMES("TransitionStalled", "sst",
                             SD_BUS_PARAM(patch) SD_BUS_PARAM(action)
                             SD_BUS_PARAM(elapsed_usec), 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable ManagerVtable::patch[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Name", "s", patch_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("State", "s", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("SkipReason", "s", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Enabled", "b", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Transition", "b", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Replace", "b", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("StackOrder", "u", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Functions", "a(ssu)", patch_property, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("InstalledAt", "t", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("AppliedAt", "t", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Forced", "b", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("BuiltFor", "s", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("SHA256", "s", patch_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LivepatchObjects", "a(su)", patch_property, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_VTABLE_END,
};
// clang-format on

Manager::Manager(sd_bus* bus, ManagerContext context)
    : bus_(bus), context_(std::move(context)), authorizer_(bus)
{
}

Manager::~Manager()
{
    *alive_ = false;
    for (PendingListing& listing : listings_)
        sd_event_source_disable_unref(listing.source);
}

Result<void> Manager::attach()
{
    const auto failed = [](const char* what, int r) {
        return Error{-r, std::string("Failed to ") + what + ": " + std::strerror(-r)};
    };
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_object_vtable(bus_, &slot, manager_path, manager_interface,
                                     ManagerVtable::manager, this);
    if (r < 0)
        return failed("register the manager object", r);
    slots_.emplace_back(slot);
    r = sd_bus_add_fallback_vtable(bus_, &slot, patch_path_prefix, patch_interface,
                                   ManagerVtable::patch, ManagerVtable::find_patch, this);
    if (r < 0)
        return failed("register the patch objects", r);
    slots_.emplace_back(slot);
    r = sd_bus_add_node_enumerator(bus_, &slot, patch_path_prefix, ManagerVtable::enumerate,
                                   this);
    if (r < 0)
        return failed("register the patch object enumerator", r);
    slots_.emplace_back(slot);
    r = sd_bus_add_object_manager(bus_, &slot, manager_path);
    if (r < 0)
        return failed("register the object manager", r);
    slots_.emplace_back(slot);
    return {};
}

// --- state -------------------------------------------------------------------------------

Result<std::vector<PatchStatus>> Manager::statuses()
{
    // One snapshot per incoming message: every property of every object of a
    // GetManagedObjects, and the enumeration before it, read the store and the kernel once.
    sd_bus_message* current = sd_bus_get_current_message(bus_);
    if (cache_ && (pinned_ || (current && cache_->message.get() == current)))
        return cache_->statuses;
    ++status_reads_;
    auto all = context_.operations.statuses();
    if (!all)
        return all;
    if (current || pinned_)
        cache_ = Snapshot{current ? ref_message(current) : MessagePtr(), *all};
    else
        cache_.reset();
    return all;
}

Result<std::optional<PatchStatus>> Manager::status_of(std::string_view name)
{
    auto all = statuses();
    if (!all)
        return std::move(all).error();
    for (PatchStatus& status : *all)
        if (status.name == name)
            return std::optional<PatchStatus>(std::move(status));
    return std::optional<PatchStatus>();
}

TransitionStatus Manager::transition(bool count_pending) const
{
    if (watched_transition_)
        return *watched_transition_;
    auto in_kernel = context_.kernel.patches();
    if (!in_kernel)
        return TransitionStatus{ServiceState::error, {}, {}, 0, 0};
    TransitionStatus status = transition_from_kernel(*in_kernel);
    // Counting reads lpshim's whole list (a second at 30,000 tasks): only for PendingTasks.
    if (count_pending && status.state == ServiceState::transitioning)
        if (auto tasks = context_.control.pending_tasks())
            status.pending_tasks = static_cast<std::uint32_t>(tasks->size());
    if (status.state == ServiceState::idle && context_.operations.save_failed())
        status.state = ServiceState::error;
    return status;
}

void Manager::transition_status(const TransitionStatus& status)
{
    TransitionStatus shown = status;
    if (shown.state == ServiceState::idle && context_.operations.save_failed())
        shown.state = ServiceState::error;
    if (watched_transition_ == shown)
        return;
    // With the values of this event, also when it waits behind a read of the patches (a
    // later status is its own PropertiesChanged): swapped in for the getters while it is
    // sent (swaps cannot fail), and everything that can fail before anything changed.
    std::function<void()> emit =
        [this, event = std::optional<TransitionStatus>(shown)]() mutable {
            watched_transition_.swap(event);
            (void)sd_bus_emit_properties_changed(bus_, manager_path, manager_interface,
                                                 "State", "TransitionPatch", "TransitionTarget",
                                                 "TransitionStartedUSec", "PendingTasks",
                                                 nullptr);
            watched_transition_.swap(event);
        };
    std::optional<TransitionStatus> next(std::move(shown));
    watched_transition_.swap(next);
    send(std::move(emit));
}

void Manager::shim_version_changed()
{
    send([this] {
        (void)sd_bus_emit_properties_changed(bus_, manager_path, manager_interface,
                                             "ShimVersion", nullptr);
    });
}

void Manager::transition_started(std::string_view patch, std::string_view target)
{
    invalidate();
    send([this, patch = std::string(patch), target = std::string(target)] {
        (void)sd_bus_emit_signal(bus_, manager_path, manager_interface, "TransitionStarted",
                                 "ss", patch.c_str(), target.c_str());
    });
}

void Manager::transition_finished(std::string_view patch, std::string_view target,
                                  std::string_view outcome, std::uint64_t duration_usec)
{
    invalidate();
    send([this, patch = std::string(patch), target = std::string(target),
          outcome = std::string(outcome), duration_usec] {
        (void)sd_bus_emit_signal(bus_, manager_path, manager_interface, "TransitionFinished",
                                 "ssst", patch.c_str(), target.c_str(), outcome.c_str(),
                                 duration_usec);
    });
}

// Task names are printable UTF-8 already (PendingTask::comm); printable() again costs little
// and keeps a signal from being dropped if some path forgot.
void Manager::task_blocked(const PendingTask& task, std::string_view kind, std::string_view note)
{
    send([this, tid = task.tid, tgid = task.tgid, comm = printable(task.comm),
          kind = std::string(kind), function = printable(task.function),
          note = printable(note)] {
        (void)sd_bus_emit_signal(bus_, manager_path, manager_interface, "TaskBlocked", "uussss",
                                 tid, tgid, comm.c_str(), kind.c_str(), function.c_str(),
                                 note.c_str());
    });
}

void Manager::task_remediated(const PendingTask& task, std::string_view action)
{
    send([this, tid = task.tid, tgid = task.tgid, action = std::string(action),
          comm = printable(task.comm)] {
        (void)sd_bus_emit_signal(bus_, manager_path, manager_interface, "TaskRemediated",
                                 "uuss", tid, tgid, action.c_str(), comm.c_str());
    });
}

void Manager::transition_stalled(std::string_view patch, std::string_view action,
                                 std::uint64_t elapsed_usec)
{
    send([this, patch = std::string(patch), action = std::string(action), elapsed_usec] {
        (void)sd_bus_emit_signal(bus_, manager_path, manager_interface, "TransitionStalled",
                                 "sst", patch.c_str(), action.c_str(), elapsed_usec);
    });
}

Manager::PinnedSnapshot::PinnedSnapshot(Manager& manager) : manager_(manager)
{
    manager_.invalidate();
    manager_.pinned_ = true;
}

Manager::PinnedSnapshot::~PinnedSnapshot()
{
    manager_.pinned_ = false;
    manager_.invalidate();
}

void Manager::send(std::function<void()> emit)
{
    if (outbox_.empty())
        emit();
    else
        outbox_.push_back(std::make_shared<Outgoing>(Outgoing{std::move(emit)}));
}

void Manager::send_ready()
{
    while (!outbox_.empty() && outbox_.front()->ready) {
        const std::shared_ptr<Outgoing> next = std::move(outbox_.front());
        outbox_.pop_front();
        try {
            next->emit();
        } catch (...) {
            // One signal lost (as a failed sd_bus_emit_*); the rest still go, in order.
        }
    }
}

void Manager::patch_changed(std::string_view name)
{
    if (context_.read_patches) {
        // Built whole before it is posted: the read's end only marks it ready (nothing there
        // can fail and leave every later signal waiting).
        auto read = std::make_shared<Result<PatchReads>>(Error{EIO, "not read"});
        auto waiting = std::make_shared<Outgoing>(Outgoing{
            [this, read, name = std::string(name)] { announce_state(name, *read, 0); }, false});
        outbox_.push_back(waiting);
        try {
            context_.read_patches(
                [&operations = context_.operations, read] { *read = operations.read_patches(); },
                [this, alive = alive_, waiting]() noexcept {
                    if (!*alive)
                        return;
                    waiting->ready = true;
                    send_ready();
                });
            ++status_reads_;
            return;
        } catch (const std::bad_alloc&) {
            // Not posted: read here.
            std::erase(outbox_, waiting);
        }
    }
    const std::uint64_t start = monotonic_usec();
    auto read = context_.operations.read_patches();
    ++status_reads_;
    const std::uint64_t read_usec = monotonic_usec() - start;
    send([this, read = std::move(read), read_usec, name = std::string(name)] {
        announce_state(name, read, read_usec);
    });
}

void Manager::announce_state(std::string_view name, const Result<PatchReads>& read,
                             std::uint64_t read_usec)
{
    // A long one says where its time went, for a reader of the dispatch's DISPATCH_USEC line.
    const std::uint64_t start = monotonic_usec();
    const auto log_parts = [&]() noexcept {
        const std::uint64_t took = monotonic_usec() - start + read_usec;
        if (took < 10'000)
            return;
        try {
            journal::log(LogLevel::debug,
                         std::string(name) + ": PatchStateChanged took " +
                             std::to_string(took) + " us on the loop: " +
                             std::to_string(read_usec) +
                             " us the patches' read (the store and sysfs; 0: read off the "
                             "loop), the rest their states and the signals",
                         {{"PATCH", std::string(name)}});
        } catch (...) {
        }
    };
    if (!read) {
        log_parts();
        return; // unknown (the store or sysfs could not be read): not announced as removed
    }
    // Every property sent from this one read: pinned as the snapshot the getters serve.
    const PinnedSnapshot pinned(*this);
    cache_ = Snapshot{MessagePtr(), context_.operations.statuses_from(*read)};
    const auto status = std::find_if(cache_->statuses.begin(), cache_->statuses.end(),
                                     [&](const PatchStatus& s) { return s.name == name; });
    const bool known = status != cache_->statuses.end();
    const std::string_view state = known ? to_string(status->state) : std::string_view("removed");
    const std::string path = patch_object_path(name);
    if (known)
        (void)sd_bus_emit_properties_changed(bus_, path.c_str(), patch_interface, "State",
                                             "SkipReason", "Enabled", "Transition", "Replace",
                                             "StackOrder", "Functions", "AppliedAt", "Forced",
                                             nullptr);
    (void)sd_bus_emit_signal(bus_, manager_path, manager_interface, "PatchStateChanged", "ss",
                             std::string(name).c_str(), std::string(state).c_str());
    log_parts();
}

void Manager::patch_added(std::string_view name)
{
    // Every property of the new object from one snapshot: an Install ends outside the call
    // (its work runs off the loop), where each getter would read all patches again.
    send([this, name = std::string(name)] {
        const PinnedSnapshot pinned(*this);
        const std::string object = patch_object_path(name);
        (void)sd_bus_emit_interfaces_added(bus_, object.c_str(), patch_interface, nullptr);
    });
}

void Manager::patch_removed(std::string_view name)
{
    invalidate();
    send([this, name = std::string(name)] {
        const std::string object = patch_object_path(name);
        (void)sd_bus_emit_interfaces_removed(bus_, object.c_str(), patch_interface, nullptr);
    });
}

// --- methods -----------------------------------------------------------------------------

namespace {

// After the checks: 1 act now, 0 polkit was asked (return 1 without replying), <0 the error.
int authorize(PolkitAuthorizer& authorizer, sd_bus_message* call, std::string_view verb,
              const std::map<std::string, std::string>& details, sd_bus_error* error)
{
    const int r = authorizer.check(call, action_id(verb), details, error);
    return r;
}

int read_name(sd_bus_message* call, const char** name)
{
    return sd_bus_message_read(call, "s", name);
}

} // namespace

int Manager::install(sd_bus_message* call, sd_bus_error* error)
{
    if (int waits = wait_if_busy(call, &Manager::install, false, error); waits != 0)
        return waits;
    int fd = -1;
    int r = sd_bus_message_read(call, "h", &fd);
    if (r < 0)
        return r;
    const std::string source = name_of_fd(fd);
    if (auto valid = context_.operations.check_install(fd, source); !valid)
        return set_error(error, valid.error());

    r = allowed_now(call, "install", {{"path", source}}, &Manager::install, error);
    if (r <= 0)
        return r == 0 ? 1 : r;

    // The message keeps its fd; the store gets its own.
    UniqueFd own(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!own)
        return sd_bus_error_set_errnof(error, errno, "Cannot duplicate the file descriptor: %s",
                                       std::strerror(errno));
    // Answered once the file's copy, hash and checks (off the loop) and the store's commit
    // have ended; the calls that waited for it go on then.
    std::shared_ptr<sd_bus_message> pending(sd_bus_message_ref(call), sd_bus_message_unref);
    context_.operations.install(
        std::move(own), source, [this, pending](const OpResult<InstalledPatch>& installed) {
            // After InterfacesAdded, which may wait behind a read of the patches.
            try {
                send([this, pending, installed] {
                    try {
                        if (installed) {
                            const std::string object = patch_object_path(installed->name);
                            (void)sd_bus_reply_method_return(pending.get(), "so",
                                                             installed->name.c_str(),
                                                             object.c_str());
                        } else {
                            BusError reply_error;
                            (void)set_error(reply_error.get(), installed.error());
                            (void)sd_bus_reply_method_error(pending.get(), reply_error.get());
                        }
                    } catch (...) {
                        (void)sd_bus_reply_method_errno(pending.get(), ENOMEM, nullptr);
                    }
                });
            } catch (...) {
                (void)sd_bus_reply_method_errno(pending.get(), ENOMEM, nullptr);
            }
            resume_waiting();
        });
    return 1;
}

int Manager::apply(sd_bus_message* call, sd_bus_error* error)
{
    if (int waits = wait_if_busy(call, &Manager::apply, false, error); waits != 0)
        return waits;
    const char* name = nullptr;
    int r = read_name(call, &name);
    if (r < 0)
        return r;
    if (auto valid = context_.operations.check_apply(name); !valid)
        return set_error(error, valid.error());
    r = allowed_now(call, "apply", {{"patch", name}}, &Manager::apply, error);
    if (r <= 0)
        return r == 0 ? 1 : r;
    context_.operations.apply(name, answer_later(call));
    return 1;
}

std::function<void(OpResult<void>)> Manager::answer_later(sd_bus_message* call)
{
    // Answered once its blocking work has ended; the calls that waited for it go on then.
    std::shared_ptr<sd_bus_message> pending(sd_bus_message_ref(call), sd_bus_message_unref);
    // The reply after the signals of the operation's end (docs/dbus-api.md: emit, then
    // reply), which may wait for a read of the patches.
    return [this, pending](const OpResult<void>& done) {
        try {
            send([this, pending, done] {
                try {
                    answer(pending.get(), done);
                } catch (...) {
                    (void)sd_bus_reply_method_errno(pending.get(), ENOMEM, nullptr);
                }
            });
        } catch (...) {
            (void)sd_bus_reply_method_errno(pending.get(), ENOMEM, nullptr);
        }
        resume_waiting();
    };
}

int Manager::wait_if_busy(sd_bus_message* call, Body body, bool authorized,
                          sd_bus_error* error)
{
    if (!context_.operations.busy())
        return 0;
    // root's calls wait before they are checked, so that they are checked on the state the
    // operation leaves, as if they had come after it; anyone else's only once polkit has
    // allowed them (nobody fills the queue with calls they may not make).
    if (!authorized && sd_bus_query_sender_privilege(call, -1) <= 0)
        return 0;
    if (waiting_.size() >= max_waiting_calls)
        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                 "%zu calls that change patches wait already for an "
                                 "operation to end; call again once they are answered",
                                 waiting_.size());
    waiting_.push_back({ref_message(call), body});
    return 1;
}

int Manager::allowed_now(sd_bus_message* call, std::string_view verb,
                         const std::map<std::string, std::string>& details, Body body,
                         sd_bus_error* error)
{
    const int r = authorize(authorizer_, call, verb, details, error);
    if (r <= 0)
        return r;
    const int waits = wait_if_busy(call, body, true, error);
    return waits == 0 ? 1 : waits > 0 ? 0 : waits;
}

bool Manager::is_waiting(sd_bus_message* call) const
{
    return std::any_of(waiting_.begin(), waiting_.end(),
                       [call](const WaitingCall& w) { return w.call.get() == call; });
}

void Manager::refuse_waiting()
{
    for (WaitingCall& waiting : std::exchange(waiting_, {})) {
        (void)sd_bus_reply_method_errorf(waiting.call.get(), SD_BUS_ERROR_NO_SERVER,
                                         "livepatchd is stopping; nothing was done; call "
                                         "again once it has started");
        authorizer_.forget(waiting.call.get());
    }
}

void Manager::resume_waiting()
{
    while (!waiting_.empty() && !context_.operations.busy()) {
        WaitingCall next = std::move(waiting_.front());
        waiting_.pop_front();
        sd_bus_message* call = next.call.get();
        BusError error;
        int r = sd_bus_message_rewind(call, true);
        if (r >= 0)
            r = guarded(error.get(), [&] { return (this->*next.body)(call, error.get()); });
        authorizer_.forget(call);
        if (!error.is_set() && r >= 0)
            continue;
        // In the order of the calls: behind the replies that wait for a read of the patches.
        try {
            std::shared_ptr<sd_bus_message> pending(sd_bus_message_ref(call),
                                                    sd_bus_message_unref);
            std::string name = error.is_set() ? error.get()->name : "";
            std::string message =
                error.is_set() && error.get()->message ? error.get()->message : "";
            send([pending, name = std::move(name), message = std::move(message), r] {
                if (name.empty()) {
                    (void)sd_bus_reply_method_errno(pending.get(), r, nullptr);
                    return;
                }
                const sd_bus_error refused{name.c_str(), message.c_str(), 0};
                (void)sd_bus_reply_method_error(pending.get(), &refused);
            });
        } catch (const std::bad_alloc&) {
            (void)sd_bus_reply_method_errno(call, ENOMEM, nullptr);
        }
    }
}

void Manager::answer(sd_bus_message* call, const OpResult<void>& done)
{
    if (done) {
        (void)sd_bus_reply_method_return(call, "");
        return;
    }
    BusError error;
    (void)set_error(error.get(), done.error());
    (void)sd_bus_reply_method_error(call, error.get());
}

int Manager::revert(sd_bus_message* call, sd_bus_error* error)
{
    if (int waits = wait_if_busy(call, &Manager::revert, false, error); waits != 0)
        return waits;
    const char* name = nullptr;
    int r = read_name(call, &name);
    if (r < 0)
        return r;
    if (auto valid = context_.operations.check_revert(name); !valid)
        return set_error(error, valid.error());
    r = allowed_now(call, "revert", {{"patch", name}}, &Manager::revert, error);
    if (r <= 0)
        return r == 0 ? 1 : r;
    context_.operations.revert(name, answer_later(call));
    return 1;
}

int Manager::remove(sd_bus_message* call, sd_bus_error* error)
{
    if (int waits = wait_if_busy(call, &Manager::remove, false, error); waits != 0)
        return waits;
    const char* name = nullptr;
    int r = read_name(call, &name);
    if (r < 0)
        return r;
    if (auto valid = context_.operations.check_remove(name); !valid)
        return set_error(error, valid.error());
    r = allowed_now(call, "remove", {{"patch", name}}, &Manager::remove, error);
    if (r <= 0)
        return r == 0 ? 1 : r;
    if (auto done = context_.operations.remove(name); !done)
        return set_error(error, done.error());
    if (outbox_.empty())
        return sd_bus_reply_method_return(call, "");
    // After InterfacesRemoved, which waits behind a read of the patches (removed: never an
    // error, even when it cannot wait).
    try {
        std::shared_ptr<sd_bus_message> pending(sd_bus_message_ref(call), sd_bus_message_unref);
        send([pending] { (void)sd_bus_reply_method_return(pending.get(), ""); });
        return 1;
    } catch (const std::bad_alloc&) {
        return sd_bus_reply_method_return(call, "");
    }
}

int Manager::list_patches(sd_bus_message* call, sd_bus_error* error)
{
    auto all = statuses();
    if (!all)
        return system_error(error, all.error());
    sd_bus_message* m = nullptr;
    int r = sd_bus_message_new_method_return(call, &m);
    if (r < 0)
        return r;
    MessagePtr reply(m);
    r = sd_bus_message_open_container(m, 'a', "(sosbbbutt)");
    if (r < 0)
        return r;
    for (const PatchStatus& status : *all) {
        r = sd_bus_message_append(m, "(sosbbbutt)", status.name.c_str(),
                                  patch_object_path(status.name).c_str(),
                                  std::string(to_string(status.state)).c_str(),
                                  static_cast<int>(status.enabled),
                                  static_cast<int>(status.transition),
                                  static_cast<int>(status.replace), status.stack_order,
                                  status.installed_at_usec, status.applied_at_usec);
        if (r < 0)
            return r;
    }
    r = sd_bus_message_close_container(m);
    if (r < 0)
        return r;
    return sd_bus_send(nullptr, m, nullptr);
}

int Manager::list_pending_tasks(sd_bus_message* call, sd_bus_error* error)
{
    if (listings_.size() >= max_pending_listings)
        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                 "%zu ListPendingTasks calls are being answered already; call "
                                 "again once one of them is",
                                 listings_.size());
    listings_.push_back({this, MessagePtr(sd_bus_message_ref(call)), nullptr, {}, 0, {},
                         TaskFactsLook{}, nullptr});
    PendingListing& added = listings_.back();
    if (!context_.list_pending) {
        begin_listing(added, context_.control.pending_tasks(), {});
        return 1;
    }
    // Kernel stacks only for root (/proc/<pid>/stack needs CAP_SYS_ADMIN); everyone else asks
    // GetTaskStacks, behind polkit. Asking polkit here would prompt on every listing.
    const bool stacks = sd_bus_query_sender_privilege(call, -1) > 0;
    // The listing stays in listings_ until its reply is sent: the address stays valid.
    try {
        context_.list_pending(stacks, [this, &added](
                                          Result<std::vector<PendingTask>> tasks,
                                          std::map<std::uint32_t, std::vector<std::string>>
                                              stacks) {
            try {
                begin_listing(added, std::move(tasks), std::move(stacks));
            } catch (...) {
                (void)sd_bus_reply_method_errno(added.call.get(), ENOMEM, nullptr);
                end_listing(added);
            }
        });
    } catch (...) {
        // Not asked (list_pending queues last): nothing will answer it but this.
        if (!added.reply)
            end_listing(added);
        throw;
    }
    return 1;
}

void Manager::begin_listing(PendingListing& listing, Result<std::vector<PendingTask>> tasks,
                            std::map<std::uint32_t, std::vector<std::string>> stacks)
{
    int r = 0;
    if (!tasks) {
        reply_system_error(listing.call.get(), tasks.error());
        end_listing(listing);
        return;
    }
    listing.tasks = std::move(*tasks);
    listing.stacks = std::move(stacks);
    sd_bus_message* m = nullptr;
    if ((r = sd_bus_message_new_method_return(listing.call.get(), &m)) >= 0) {
        listing.reply.reset(m);
        r = sd_bus_message_open_container(m, 'a', "(uusssssstasas)");
    }
    if (r < 0) {
        (void)sd_bus_reply_method_errno(listing.call.get(), -r, nullptr);
        end_listing(listing);
        return;
    }
    // A defer source stays pending, ahead of newer events of its priority: at the idle
    // priority it takes the turns nothing else wants.
    sd_event* event = sd_bus_get_event(bus_);
    if (!event || sd_event_add_defer(event, &listing.source, on_listing_turn, &listing) < 0 ||
        sd_event_source_set_priority(listing.source, SD_EVENT_PRIORITY_IDLE) < 0 ||
        sd_event_source_set_enabled(listing.source, SD_EVENT_ON) < 0)
        // Not on a loop (or no room for the source): all of it now.
        (void)continue_listing(listing, true);
}

int Manager::on_listing_turn(sd_event_source*, void* userdata) noexcept
{
    label_dispatch("a ListPendingTasks reply's slice");
    auto* listing = static_cast<PendingListing*>(userdata);
    try {
        (void)listing->manager->continue_listing(*listing, false);
    } catch (...) {
        (void)sd_bus_reply_method_errno(listing->call.get(), ENOMEM, nullptr);
        listing->manager->end_listing(*listing);
    }
    return 0;
}

bool Manager::continue_listing(PendingListing& listing, bool everything)
{
    // A slice: at most 256 tasks, and no more once 10 ms have passed (reading a task's /proc
    // and sd-login facts costs about 0.1-0.3 ms), at least one.
    constexpr std::size_t slice = 256;
    constexpr std::uint64_t budget_usec = 10'000;
    sd_bus_message* m = listing.reply.get();
    const std::uint64_t start = monotonic_usec();
    std::uint64_t read_usec = 0; // of the slice's time, the tasks' facts
    std::size_t n = 0;
    // The slice's parts, for a reader of a long slice's DISPATCH_USEC line: its tasks' facts,
    // their appends (until appended_usec), and at the end the reply's close and send (until
    // sent_usec) and the listing's release. Never throws: the listing may be gone.
    auto log_slice = [&](const auto& read_parts, std::size_t listed, std::uint64_t appended_usec,
                         std::uint64_t sent_usec = 0) noexcept {
        const std::uint64_t now = monotonic_usec();
        if (now - start < 20'000)
            return;
        try {
            std::string text = "a ListPendingTasks reply's slice took " +
                               std::to_string(now - start) + " us: " + std::to_string(n) +
                               " task(s), " + std::to_string(read_usec) +
                               " us their facts (the longest read: " + read_parts() + "), " +
                               std::to_string(appended_usec - start - read_usec) + " us appended";
            if (sent_usec != 0)
                text += "; the reply closed and sent in " +
                        std::to_string(sent_usec - appended_usec) +
                        " us, the listing let go in " + std::to_string(now - sent_usec) + " us";
            text += " (" + std::to_string(listed) + " task(s) of the reply appended)";
            journal::log(LogLevel::debug, text,
                         {{"LISTING_SLICE_USEC", std::to_string(now - start)}});
        } catch (...) {
        }
    };
    int r = 0;
    for (; listing.next < listing.tasks.size(); ++n) {
        if (!everything && n > 0 && (n >= slice || monotonic_usec() - start >= budget_usec)) {
            log_slice([&] { return listing.facts.longest_read_parts(); }, listing.next,
                      monotonic_usec());
            return true;
        }
        // Taken out of the list: its strings are freed in this slice, not all 30,000 tasks'
        // at the reply's end (17 ms of the last slice under emulation).
        PendingTask task = std::move(listing.tasks[listing.next++]);
        BlockingTask blocking;
        const std::uint64_t read_start = monotonic_usec();
        if (context_.blocking_task)
            blocking = context_.blocking_task(task, listing.facts);
        else
            blocking.facts.task = std::move(task);
        read_usec += monotonic_usec() - read_start;
        const TaskFacts& f = blocking.facts;
        const std::string state(1, f.state > ' ' && f.state < 0x7f ? f.state : '?');
        const std::string unit = f.units.empty() ? "" : printable(f.units.back());
        if ((r = sd_bus_message_open_container(m, 'r', "uusssssstasas")) < 0 ||
            (r = sd_bus_message_append(m, "uusssssst", f.task.tid, f.task.tgid,
                                       printable(f.task.comm).c_str(),
                                       printable(f.task.reason).c_str(),
                                       printable(f.task.function).c_str(),
                                       std::string(to_string(f.kind)).c_str(), state.c_str(),
                                       unit.c_str(), blocking.blocked_usec)) < 0 ||
            (r = sd_bus_message_open_container(m, 'a', "s")) < 0)
            break;
        for (const std::string& action : blocking.actions)
            if ((r = sd_bus_message_append(m, "s", printable(action).c_str())) < 0)
                break;
        if (r < 0 || (r = sd_bus_message_close_container(m)) < 0 ||
            (r = sd_bus_message_open_container(m, 'a', "s")) < 0)
            break;
        if (const auto it = listing.stacks.find(f.task.tid); it != listing.stacks.end())
            for (const std::string& frame : it->second)
                if ((r = sd_bus_message_append(m, "s", printable(frame).c_str())) < 0)
                    break;
        if (r < 0 || (r = sd_bus_message_close_container(m)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0)
            break;
    }
    const std::uint64_t appended = monotonic_usec();
    if (r >= 0 && (r = sd_bus_message_close_container(m)) >= 0)
        r = sd_bus_send(nullptr, m, nullptr);
    if (r < 0)
        (void)sd_bus_reply_method_errno(listing.call.get(), -r, nullptr);
    const std::uint64_t sent = monotonic_usec();
    std::string parts; // kept past the listing's end, for the line (once per listing)
    try {
        parts = listing.facts.longest_read_parts();
    } catch (...) {
    }
    const std::size_t listed = listing.next;
    end_listing(listing);
    log_slice([&] { return parts; }, listed, appended, sent);
    return false;
}

void Manager::end_listing(PendingListing& listing)
{
    // Its own source may be the one dispatching: sd-event keeps it until the dispatch returns.
    sd_event_source_disable_unref(listing.source);
    listings_.remove_if([&](const PendingListing& l) { return &l == &listing; });
}

namespace {

int reply_task_stacks(sd_bus_message* call,
                      const std::map<std::uint32_t, std::vector<std::string>>& stacks)
{
    sd_bus_message* m = nullptr;
    int r = sd_bus_message_new_method_return(call, &m);
    if (r < 0)
        return r;
    MessagePtr reply(m);
    if ((r = sd_bus_message_open_container(m, 'a', "(uas)")) < 0)
        return r;
    for (const auto& [tid, frames] : stacks) {
        if ((r = sd_bus_message_open_container(m, 'r', "uas")) < 0 ||
            (r = sd_bus_message_append(m, "u", tid)) < 0 ||
            (r = sd_bus_message_open_container(m, 'a', "s")) < 0)
            return r;
        for (const std::string& frame : frames)
            if ((r = sd_bus_message_append(m, "s", printable(frame).c_str())) < 0)
                return r;
        if ((r = sd_bus_message_close_container(m)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0)
            return r;
    }
    if ((r = sd_bus_message_close_container(m)) < 0)
        return r;
    return sd_bus_send(nullptr, m, nullptr);
}

} // namespace

int Manager::get_task_stacks(sd_bus_message* call, sd_bus_error* error)
{
    int r = authorize(authorizer_, call, "read-stacks", {}, error);
    if (r <= 0)
        return r == 0 ? 1 : r;
    if (!context_.list_pending)
        return reply_task_stacks(call, {});
    // Each call waits for two walks and holds a list meanwhile: as many at once as listings.
    if (stack_calls_ >= max_pending_listings)
        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                 "%zu GetTaskStacks calls are being answered already; call "
                                 "again once one of them is",
                                 stack_calls_);
    // Answered once the tasks are listed, from the loop.
    // (A shared owner: std::function copies what it holds.)
    auto held = std::shared_ptr<sd_bus_message>(sd_bus_message_ref(call), sd_bus_message_unref);
    // Counted until the last copy of the answer goes (answered, or dropped with the lister).
    ++stack_calls_;
    std::shared_ptr<void> answered(nullptr, [this](void*) { --stack_calls_; });
    context_.list_pending(true, [call = std::move(held), answered](
                                    Result<std::vector<PendingTask>> tasks,
                                    std::map<std::uint32_t, std::vector<std::string>> stacks) {
        int failed = 0;
        if (!tasks) {
            reply_system_error(call.get(), tasks.error());
        } else if ((failed = reply_task_stacks(call.get(), stacks)) < 0) {
            (void)sd_bus_reply_method_errno(call.get(), -failed, nullptr);
        }
    });
    return 1;
}

int Manager::kick(sd_bus_message* call, sd_bus_error* error)
{
    if (int waits = wait_if_busy(call, &Manager::kick, false, error); waits != 0)
        return waits;
    if (auto valid = context_.operations.check_kick(); !valid)
        return set_error(error, valid.error());
    int r = allowed_now(call, "kick", {}, &Manager::kick, error);
    if (r <= 0)
        return r == 0 ? 1 : r;
    context_.operations.kick(answer_later(call));
    return 1;
}

int Manager::force(sd_bus_message* call, sd_bus_error* error)
{
    if (int waits = wait_if_busy(call, &Manager::force, false, error); waits != 0)
        return waits;
    const char* name = nullptr;
    int r = read_name(call, &name);
    if (r < 0)
        return r;
    if (auto valid = context_.operations.check_force(name); !valid)
        return set_error(error, valid.error());
    r = allowed_now(call, "force", {{"patch", name}}, &Manager::force, error);
    if (r <= 0)
        return r == 0 ? 1 : r;
    context_.operations.force(name, answer_later(call));
    return 1;
}

// --- properties and objects --------------------------------------------------------------

int Manager::manager_property(const char* property, sd_bus_message* reply, sd_bus_error* error)
{
    const std::string_view p = property;
    if (p == "KernelRelease")
        return sd_bus_message_append(reply, "s", context_.kernel_release.c_str());
    if (p == "ShimVersion")
        return sd_bus_message_append(reply, "s", context_.kernel.shim_version().c_str());
    const TransitionStatus status = transition(p == "PendingTasks");
    if (p == "State")
        return sd_bus_message_append(reply, "s", std::string(to_string(status.state)).c_str());
    if (p == "TransitionPatch")
        return sd_bus_message_append(reply, "s", status.patch.c_str());
    if (p == "TransitionTarget")
        return sd_bus_message_append(reply, "s", status.target.c_str());
    if (p == "TransitionStartedUSec")
        return sd_bus_message_append(reply, "t", status.started_usec);
    if (p == "PendingTasks")
        return sd_bus_message_append(reply, "u", status.pending_tasks);
    return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s",
                             property);
}

int Manager::patch_property(const char* path, const char* property, sd_bus_message* reply,
                            sd_bus_error* error)
{
    const auto name = patch_name_from_path(path);
    if (!name)
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No patch at %s", path);
    auto found = status_of(*name);
    if (!found)
        return system_error(error, found.error());
    if (!*found)
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No patch %s",
                                 name->c_str());
    const PatchStatus& s = **found;
    const std::string_view p = property;
    if (p == "Name")
        return sd_bus_message_append(reply, "s", s.name.c_str());
    if (p == "State")
        return sd_bus_message_append(reply, "s", std::string(to_string(s.state)).c_str());
    if (p == "SkipReason")
        return sd_bus_message_append(reply, "s", s.skip_reason.c_str());
    if (p == "Enabled")
        return sd_bus_message_append(reply, "b", static_cast<int>(s.enabled));
    if (p == "Transition")
        return sd_bus_message_append(reply, "b", static_cast<int>(s.transition));
    if (p == "Replace")
        return sd_bus_message_append(reply, "b", static_cast<int>(s.replace));
    if (p == "StackOrder")
        return sd_bus_message_append(reply, "u", s.stack_order);
    if (p == "InstalledAt")
        return sd_bus_message_append(reply, "t", s.installed_at_usec);
    if (p == "AppliedAt")
        return sd_bus_message_append(reply, "t", s.applied_at_usec);
    if (p == "Forced")
        return sd_bus_message_append(reply, "b", static_cast<int>(s.forced));
    if (p == "BuiltFor")
        return sd_bus_message_append(reply, "s", s.built_for.c_str());
    if (p == "SHA256")
        return sd_bus_message_append(reply, "s", s.sha256.c_str());
    if (p == "LivepatchObjects") {
        int r = sd_bus_message_open_container(reply, 'a', "(su)");
        if (r < 0)
            return r;
        for (const LivepatchObject& o : s.livepatch_objects) {
            r = sd_bus_message_append(reply, "(su)", o.name.c_str(),
                                      static_cast<std::uint32_t>(o.symbols));
            if (r < 0)
                return r;
        }
        return sd_bus_message_close_container(reply);
    }
    if (p == "Functions") {
        int r = sd_bus_message_open_container(reply, 'a', "(ssu)");
        if (r < 0)
            return r;
        for (const PatchFunction& f : s.functions) {
            r = sd_bus_message_append(reply, "(ssu)", f.object.c_str(), f.function.c_str(),
                                      f.sympos);
            if (r < 0)
                return r;
        }
        return sd_bus_message_close_container(reply);
    }
    return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s",
                             property);
}

int Manager::find_patch(const char* path, sd_bus_error* error)
{
    const auto name = patch_name_from_path(path);
    if (!name)
        return 0;
    auto found = status_of(*name);
    if (!found)
        return system_error(error, found.error());
    return *found ? 1 : 0;
}

int Manager::enumerate_patches(char*** nodes, sd_bus_error* error)
{
    auto all = statuses();
    if (!all)
        return system_error(error, all.error());
    // sd-bus frees the list with free(): allocate it with malloc().
    auto** list = static_cast<char**>(std::calloc(all->size() + 1, sizeof(char*)));
    if (!list)
        return -ENOMEM;
    for (std::size_t i = 0; i < all->size(); ++i) {
        list[i] = ::strdup(patch_object_path((*all)[i].name).c_str());
        if (!list[i]) {
            for (std::size_t j = 0; j < i; ++j)
                std::free(list[j]);
            std::free(list);
            return -ENOMEM;
        }
    }
    *nodes = list;
    return 0;
}

} // namespace livepatchd::dbus
