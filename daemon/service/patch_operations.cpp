// SPDX-License-Identifier: GPL-2.0-only
#include "service/patch_operations.hpp"

#include <algorithm>
#include <iterator>

#include "common/clock.hpp"
#include "common/fault.hpp"
#include "common/journal.hpp"
#include "common/text.hpp"
#include "service/reconciler.hpp"
#include "store/patch_file.hpp"

namespace livepatchd {

namespace {

using journal::Field;

std::string transition_text(const KernelPatch& patch)
{
    return patch.name + " is in a transition to " + (patch.enabled ? "patched" : "unpatched");
}

OpError invalid_name(std::string_view name)
{
    return PatchError(PatchErrc::invalid_name, EINVAL,
                      "\"" + printable(name.substr(0, 80)) +
                          "\" is not a patch name; a patch is named after its kernel module: 1 "
                          "to " +
                          std::to_string(patch_name_max) + " letters, digits and underscores");
}

// A refusal of the kernel (PatchControl's errno), named for what a client can do about it, by
// the errno alone (docs/kernel-messages.md): lpshim returns EAGAIN only for "another patch is
// in transition" and EBUSY only for a function it cannot redirect (a pre_patch callback's
// EAGAIN or EBUSY comes back as ECANCELED). A look at sysfs now would race with the kernel: it
// only adds which transition runs to the message, if one still does.
OpError kernel_refusal(const KernelView& kernel, std::string_view verb, std::string_view name,
                       const Error& e)
{
    if (!kernel.shim_loaded())
        return OpError(OpErrc::shim_not_loaded, ENODEV,
                       e.message + "; lpshim.ko is not loaded (it was unloaded since livepatchd "
                                   "started): 'systemctl restart livepatchd' loads it again");
    if (e.errnum == EAGAIN) {
        const auto in_kernel = kernel.patches();
        const KernelPatch* moving = in_kernel ? patch_in_transition(*in_kernel) : nullptr;
        return OpError(OpErrc::transition_in_progress, EAGAIN,
                       e.message + "; " +
                           (moving ? transition_text(*moving)
                                   : std::string("another patch was in transition (it has "
                                                 "ended since)")) +
                           ": one transition at a time: wait for it to end, then try again");
    }
    if (verb != "apply")
        return OpError(e);
    if (e.errnum == EBUSY)
        return OpError(OpErrc::redirect_refused, EBUSY,
                       e.message + "; lpshim cannot redirect a function of " + std::string(name) +
                           ": another ftrace user redirects it (upstream livepatch, or a kprobe "
                           "with a post handler) or ftrace is off (sysctl "
                           "kernel.ftrace_enabled=0); retrying does not help until that changes");
    return OpError(OpErrc::load_refused, e.errnum, e.message);
}

void log_failure(std::string_view patch, const std::string& message)
{
    journal::log(LogLevel::err, message,
                 {{"PATCH", std::string(patch)},
                  {"MESSAGE_ID", std::string(journal::message_id::action_failed)}});
}

// An operation's end, on the loop: an exception in it is its caller's error.
template <typename Finish>
OpResult<void> finished(const std::string& name, std::string_view verb, Finish&& finish)
{
    try {
        return finish();
    } catch (const std::exception& e) {
        return OpError(Error{EIO, (name.empty() ? "" : name + ": ") + "the " + std::string(verb) +
                                      "'s end failed: " + e.what()});
    }
}

std::vector<std::string> names_of(const std::vector<KernelPatch>& in_kernel)
{
    std::vector<std::string> names;
    for (const KernelPatch& p : in_kernel)
        names.push_back(p.name);
    return names;
}

// The names of the kernel's patches, or nothing if they cannot be read.
std::optional<std::vector<std::string>> patch_names(const KernelView& kernel)
{
    try {
        auto in_kernel = kernel.patches();
        if (!in_kernel)
            return std::nullopt;
        return names_of(*in_kernel);
    } catch (const std::bad_alloc&) {
        return std::nullopt;
    }
}

// Whether the kernel's patch name is an atomic replace; nothing if it cannot be read.
std::optional<bool> is_replace(const KernelView& kernel, std::string_view name)
{
    try {
        auto in_kernel = kernel.patches();
        const KernelPatch* loaded = in_kernel ? find_patch(*in_kernel, name) : nullptr;
        if (!loaded)
            return std::nullopt;
        return loaded->replace;
    } catch (const std::bad_alloc&) {
        return std::nullopt;
    }
}

} // namespace

const KernelPatch* find_patch(const std::vector<KernelPatch>& in_kernel, std::string_view name)
{
    const auto it = std::find_if(in_kernel.begin(), in_kernel.end(),
                                 [&](const KernelPatch& p) { return p.name == name; });
    return it == in_kernel.end() ? nullptr : &*it;
}

const KernelPatch* patch_in_transition(const std::vector<KernelPatch>& in_kernel)
{
    const auto it = std::find_if(in_kernel.begin(), in_kernel.end(),
                                 [](const KernelPatch& p) { return p.transition; });
    return it == in_kernel.end() ? nullptr : &*it;
}

PatchOperations::PatchOperations(OperationsContext context)
    : context_(std::move(context)), guard_(context_.crash_guard_window, context_.boot_id)
{
}

std::uint64_t PatchOperations::realtime() const
{
    return context_.realtime ? context_.realtime() : realtime_usec();
}

std::uint64_t PatchOperations::boottime() const
{
    return context_.boottime ? context_.boottime() : boottime_usec();
}

std::optional<Error> PatchOperations::load()
{
    auto loaded = context_.storage.load();
    if (loaded) {
        desired_ = std::move(*loaded);
        desired_available_ = true;
        // What this boot forced before livepatchd restarted: still forced.
        if (desired_.forced_boot_id == context_.boot_id)
            forced_.insert(desired_.forced.begin(), desired_.forced.end());
        return std::nullopt;
    }
    Error error = std::move(loaded).error();
    desired_ = {};
    if (error.errnum == EBADMSG) {
        // Damaged, kept aside by the storage: start from nothing wanted, and say so.
        desired_available_ = true;
        error.message += "; starting with no patch wanted";
        return error;
    }
    // The file may hold what is wanted: never overwrite it with less.
    desired_available_ = false;
    error.message += "; the desired state is unavailable: nothing is applied at boot and no "
                     "change is saved until it can be read (fix it, then restart livepatchd)";
    return error;
}

OpResult<void> PatchOperations::commit(DesiredState next)
{
    if (!desired_available_)
        return OpError(OpErrc::desired_state_unavailable, EIO,
                       "the desired state could not be read at start, so it is not changed; "
                       "see 'journalctl -u livepatchd', fix it, then restart livepatchd");
    if (next == desired_)
        return {};
    if (auto saved = context_.storage.save(next); !saved) {
        save_failed_ = true;
        return OpError(saved.error());
    }
    save_failed_ = false;
    desired_ = std::move(next);
    return {};
}

// --- blocking work -------------------------------------------------------------------------

void PatchOperations::run_blocking(std::function<void()> work, std::function<void()> then)
{
    auto ended = std::make_shared<bool>(false);
    busy_ = true;
    auto end = [this, ended, then = std::move(then)] {
        *ended = true;
        busy_ = false;
        then();
    };
    if (!runner_) {
        work();
        end();
        return;
    }
    try {
        runner_(std::move(work), std::move(end));
    } catch (...) {
        if (*ended)
            return; // ran on this thread, and its caller was answered
        busy_ = false; // nothing runs: nothing holds the others
        throw;
    }
}

void PatchOperations::write_kernel(std::function<Result<void>()> write,
                                   std::function<void(Result<void>)> done)
{
    auto outcome = std::make_shared<Result<void>>(
        Error{ENOMEM, "the write to lpshim could not run; nothing was written"});
    run_blocking(
        [outcome, write = std::move(write)] {
            try {
                *outcome = write();
            } catch (const std::exception& e) {
                try {
                    *outcome = Error{EIO, std::string("the write to lpshim failed: ") + e.what()};
                } catch (...) {
                }
            }
        },
        [outcome, done = std::move(done)] { done(std::move(*outcome)); });
}

template <typename Work>
void PatchOperations::run_later(std::string_view verb, Work prepared,
                                void (PatchOperations::*run)(Work&) const,
                                OpResult<void> (PatchOperations::*finish)(Work&),
                                std::function<void(OpResult<void>)> done)
{
    if (prepared.error) { // refused on the loop: nothing to run
        done(std::move(*prepared.error));
        return;
    }
    auto work = std::make_shared<Work>(std::move(prepared));
    run_blocking([this, work, run] { (this->*run)(*work); },
                 [this, work, finish, verb = std::string(verb), done = std::move(done)] {
                     done(finished(work->name, verb, [&] { return (this->*finish)(*work); }));
                 });
}

PatchOperations::OperationWork PatchOperations::prepare_work(std::string_view name) const
{
    OperationWork work;
    work.name = std::string(name);
    work.before = desired_;
    work.on_disk = desired_;
    return work;
}

Result<void> PatchOperations::OperationWork::save(const DesiredStateStorage& storage,
                                                  const DesiredState& state)
{
    if (state == on_disk)
        return {};
    auto saved = storage.save(state);
    save_failed = !saved;
    if (saved)
        on_disk = state;
    return saved;
}

void PatchOperations::adopt(OperationWork& work, std::string_view verb)
{
    // What the file holds now, as after every commit(). Nothing else changes the desired state
    // while an operation's work runs (busy()): a change would be lost here.
    if (desired_ != work.before)
        journal::log(LogLevel::err, work.name + ": the desired state changed while its " +
                                        std::string(verb) +
                                        "'s work ran; keeping what the file holds",
                     {{"PATCH", work.name}});
    // Whether the patch is wanted: what a failed work can change of its State (a loaded patch
    // shows what the kernel has).
    const bool wanted_changed =
        (work.on_disk.find(work.name) != nullptr) != (work.before.find(work.name) != nullptr);
    desired_ = std::move(work.on_disk);
    if (work.save_failed)
        save_failed_ = *work.save_failed;
    for (const std::string& failure : work.failures)
        log_failure(work.name, failure);
    // A success says so at its end. A failure whose undo could not be saved may leave the
    // patch wanted (a refused apply's pending record: it shows skipped) or not.
    if ((work.error || work.refused) && wanted_changed)
        sink_->patch_changed(work.name);
}

// --- install, remove ---------------------------------------------------------------------

OpResult<void> PatchOperations::check_install(int fd, std::string_view source_name) const
{
    if (auto r = PatchStore::check_source(fd, source_name); !r)
        return OpError(r.error());
    return {};
}

void PatchOperations::install(UniqueFd fd, std::string_view source_name,
                              std::function<void(OpResult<InstalledPatch>)> done)
{
    struct InstallWork {
        UniqueFd fd;
        std::string source;
        std::optional<PatchResult<PatchStore::PreparedInstall>> prepared;
        std::optional<Error> failed; // an exception in the work, as the caller is told
    };
    auto work = std::make_shared<InstallWork>();
    work->fd = std::move(fd);
    work->source = std::string(source_name);
    auto then = [this, work, done = std::move(done)] {
        OpResult<InstalledPatch> result =
            OpError(Error{ENOMEM, work->source + ": the install's work could not run; nothing "
                                                 "was installed"});
        try {
            if (work->failed) {
                result = OpError(*work->failed);
            } else if (work->prepared && !*work->prepared) {
                result = OpError(work->prepared->error());
            } else if (work->prepared) {
                auto installed = context_.store.commit_install(std::move(**work->prepared));
                if (!installed) {
                    result = OpError(installed.error());
                } else {
                    sink_->patch_added(installed->name);
                    result = std::move(installed).value();
                }
            }
        } catch (const std::exception& e) {
            result = OpError(Error{EIO, work->source + ": the install's end failed: " + e.what()});
        }
        done(std::move(result));
    };
    // Only what open() set is read (PatchStore::prepare_install): the loop may read the store
    // meanwhile; nothing changes it (busy()).
    auto run = [this, work] {
        try {
            work->prepared.emplace(context_.store.prepare_install(
                std::move(work->fd), work->source, context_.kernel_release));
        } catch (const std::bad_alloc&) {
            // Nothing prepared: the end says the work could not run (ENOMEM).
        } catch (const std::exception& e) {
            try {
                work->failed = Error{EIO, work->source + ": " + e.what() + "; nothing was "
                                                                         "installed"};
            } catch (...) {
            }
        } catch (...) {
        }
    };
    run_blocking(std::move(run), std::move(then));
}

OpResult<void> PatchOperations::check_remove(std::string_view name) const
{
    auto patch = context_.store.find(name);
    if (!patch)
        return OpError(patch.error());
    auto in_kernel = context_.kernel.patches();
    if (!in_kernel)
        return OpError(in_kernel.error());
    if (find_patch(*in_kernel, name))
        return OpError(OpErrc::still_applied, EBUSY,
                       std::string(name) + " is applied; revert it first, then remove it");
    if (desired_.find(name))
        return OpError(OpErrc::still_applied, EBUSY,
                       std::string(name) +
                           " is wanted (livepatchd applies it at boot); revert it first to "
                           "stop wanting it, then remove it");
    // The end of its revert: lpshim lets go of the module a moment after it no longer lists
    // the patch, and the tick then removes it. The store's copy goes only after the module,
    // which nothing would remove once the patch is no longer installed.
    if (context_.kernel.module_loaded(name))
        return OpError(OpErrc::still_applied, EBUSY,
                       forced_.contains(name)
                           ? std::string(name) + "'s module stays loaded until the next boot "
                                                 "(its transition was forced); remove it then"
                           : std::string(name) + "'s module is still loaded: livepatchd "
                                                 "removes it a moment after the revert's end; "
                                                 "try again in a second");
    return {};
}

OpResult<void> PatchOperations::remove(std::string_view name)
{
    if (auto checked = check_remove(name); !checked)
        return checked;
    if (auto removed = context_.store.remove(name); !removed)
        return OpError(removed.error());
    try { // removed: the caller is told so, whatever fails below
        skip_reasons_.erase(std::string(name));
        sink_->patch_removed(name);
    } catch (const std::exception& e) {
        journal::log(LogLevel::err, std::string(name) + ": removed, but not announced: " +
                                        e.what());
    }
    return {};
}

// --- apply ---------------------------------------------------------------------------------

OpResult<void> PatchOperations::check_apply(std::string_view name) const
{
    auto patch = context_.store.find(name);
    if (!patch)
        return OpError(patch.error());
    auto in_kernel = context_.kernel.patches();
    if (!in_kernel)
        return OpError(in_kernel.error());
    if (const KernelPatch* loaded = find_patch(*in_kernel, name)) {
        if (loaded->applied())
            return OpError(OpErrc::already_applied, EALREADY,
                           std::string(name) + " is already applied");
        return OpError(OpErrc::transition_in_progress, EBUSY,
                       transition_text(*loaded) + "; wait for it to end");
    }
    if (const KernelPatch* moving = patch_in_transition(*in_kernel))
        return OpError(OpErrc::transition_in_progress, EBUSY,
                       transition_text(*moving) +
                           "; one transition at a time: wait for it to end");
    // From the record only: hashing and parsing the file waits for authorization.
    if (!patch->problem.empty())
        return OpError(PatchError(PatchErrc::tampered, EBADMSG, patch->problem));
    if (patch->built_for != context_.kernel_release)
        return OpError(PatchError(
            PatchErrc::kernel_mismatch, ENOEXEC,
            patch->file.native() + ": built for " + patch->built_for + ", but this kernel is " +
                context_.kernel_release + "; rebuild it against linux-headers-" +
                context_.kernel_release + " (the build directory of the running kernel)"));
    if (!desired_available_)
        return OpError(OpErrc::desired_state_unavailable, EIO,
                       "the desired state could not be read at start, so it is not changed; "
                       "see 'journalctl -u livepatchd', fix it, then restart livepatchd");
    return {};
}

OpResult<void> PatchOperations::apply(std::string_view name)
{
    if (auto checked = check_apply(name); !checked)
        return checked;
    return apply_now(name, false);
}

void PatchOperations::apply(std::string_view name, std::function<void(OpResult<void>)> done)
{
    if (auto checked = check_apply(name); !checked) {
        done(std::move(checked));
        return;
    }
    run_later("apply", prepare_apply(name, false), &PatchOperations::run_apply,
              &PatchOperations::finish_apply, std::move(done));
}

OpResult<void> PatchOperations::apply_now(std::string_view name, bool boot,
                                          std::optional<std::vector<std::string>> below)
{
    ApplyWork work = prepare_apply(name, boot);
    if (boot) {
        // It runs on the loop: what the kernel had is the look's, and whether it is a replace
        // the next look tells.
        work.below = std::move(below);
        work.read_replace = false;
    }
    run_apply(work);
    return finish_apply(work);
}

PatchOperations::ApplyWork PatchOperations::prepare_apply(std::string_view name, bool boot)
{
    ApplyWork work;
    static_cast<OperationWork&>(work) = prepare_work(name);
    if (!desired_available_) {
        work.error = OpError(OpErrc::desired_state_unavailable, EIO,
                             "the desired state could not be read at start, so it is not "
                             "changed; see 'journalctl -u livepatchd', fix it, then restart "
                             "livepatchd");
        return work;
    }
    // Recorded before the module is loaded, as pending, so that a crash during the transition
    // counts for the crash-loop guard at the next boot and a crash before the load is undone
    // at the next start. Applying puts the patch on top of the stack: the end of the order.
    work.next = desired_;
    const bool was_wanted = desired_.find(name) != nullptr;
    if (!boot)
        work.next.erase(name);
    DesiredPatch& wanted = work.next.append(name);
    // An oops known already came before the apply too, whatever the read says.
    const auto oops_now = context_.oops_count ? context_.oops_count() : std::nullopt;
    guard_.record_apply(wanted, realtime(), boottime(),
                        std::max(oops_known_, oops_now.value_or(0)));
    // Pending only when the apply is what makes it wanted: a patch wanted already (the boot
    // apply, an Apply of a skipped patch) stays wanted whatever happens next.
    if (!was_wanted)
        wanted.pending = PendingAction::apply;
    return work;
}

void PatchOperations::run_apply(ApplyWork& work) const
{
    if (work.error)
        return;
    try {
        // The file the kernel gets is the file checked here: hashed against the store's record,
        // parsed, and loaded from the same fd.
        auto module = context_.store.open_checked(work.name, context_.kernel_release);
        if (!module) {
            work.error = OpError(module.error());
            return;
        }
        if (auto saved = work.save(context_.storage, work.next); !saved) {
            work.error = OpError(saved.error());
            return;
        }
        fault_point("apply-after-save");
        // What an atomic replace will take the place of, for its end (transition_ended): all
        // the kernel has before the load (busy() orders livepatchd's own loads; a module
        // loaded by hand in between is not wanted). Read here, off the loop, before the load:
        // a transition may complete within it.
        if (work.read_replace)
            work.below = patch_names(context_.kernel);
        if (auto done = context_.control.apply(work.name, module->fd.get()); !done) {
            if (auto restored = work.save(context_.storage, work.before); !restored)
                // The pending record stays: the next start drops it (the module is not loaded).
                work.failures.push_back(restored.error().message);
            work.refused = done.error();
            return;
        }
        fault_point("apply-after-load");
        if (work.read_replace)
            work.replace = is_replace(context_.kernel, work.name);
        DesiredState confirmed = work.next;
        if (DesiredPatch* loaded = confirmed.find(work.name);
            loaded->pending != PendingAction::none) {
            loaded->pending = PendingAction::none;
            if (auto saved = work.save(context_.storage, confirmed); !saved)
                // Loaded, recorded as pending: the next start confirms it from the kernel.
                work.failures.push_back(saved.error().message);
        }
    } catch (const std::exception& e) {
        work.error = OpError(Error{EIO, work.name + ": the apply failed: " + e.what()});
    }
}

OpResult<void> PatchOperations::finish_apply(ApplyWork& work)
{
    adopt(work, "apply");
    if (work.error)
        return std::move(*work.error);
    if (work.refused)
        return kernel_refusal(context_.kernel, "apply", work.name, *work.refused);
    skip_reasons_.erase(work.name);
    if (work.below)
        loads_.insert_or_assign(work.name, LoadRecord{std::move(*work.below), work.replace});
    else
        loads_.erase(work.name);
    sink_->patch_changed(work.name);
    if (transition_started_)
        transition_started_(work.name, "patched");
    return {};
}

// --- revert --------------------------------------------------------------------------------

OpResult<void> PatchOperations::check_revert(std::string_view name) const
{
    if (!is_valid_patch_name(name))
        return invalid_name(name);
    auto in_kernel = context_.kernel.patches();
    if (!in_kernel)
        return OpError(in_kernel.error());
    return check_revert(name, *in_kernel);
}

OpResult<void> PatchOperations::check_revert(std::string_view name,
                                             const std::vector<KernelPatch>& in_kernel) const
{
    if (!desired_available_)
        // Reverting would leave the want on disk: the patch would come back at the next boot.
        return OpError(OpErrc::desired_state_unavailable, EIO,
                       "the desired state could not be read at start, so it is not changed; "
                       "see 'journalctl -u livepatchd', fix it, then restart livepatchd (or "
                       "write 0 to /sys/kernel/lpshim/" +
                           std::string(name) + "/enabled by hand)");
    const KernelPatch* loaded = find_patch(in_kernel, name);
    if (!loaded && !desired_.find(name))
        return OpError(OpErrc::not_applied, ENOENT, std::string(name) + " is not applied");
    if (loaded) {
        const KernelPatch* moving = patch_in_transition(in_kernel);
        if (moving && moving != loaded)
            return OpError(OpErrc::transition_in_progress, EBUSY,
                           transition_text(*moving) + "; wait for it to end");
        if (loaded->transition && !loaded->enabled)
            return OpError(OpErrc::not_applied, ENOENT,
                           std::string(name) + " is already being reverted");
        if (!loaded->transition)
            // The kernel unpatches the top patch only.
            for (const KernelPatch& other : in_kernel)
                if (other.enabled && other.stack_order > loaded->stack_order)
                    return OpError(OpErrc::not_top_patch, EBUSY,
                                   other.name + " is applied above " + std::string(name) +
                                       "; revert " + other.name + " first");
    }
    return {};
}

OpResult<void> PatchOperations::revert(std::string_view name)
{
    RevertWork work = prepare_revert(name);
    run_revert(work);
    return finish_revert(work);
}

void PatchOperations::revert(std::string_view name, std::function<void(OpResult<void>)> done)
{
    run_later("revert", prepare_revert(name), &PatchOperations::run_revert,
              &PatchOperations::finish_revert, std::move(done));
}

PatchOperations::RevertWork PatchOperations::prepare_revert(std::string_view name)
{
    RevertWork work;
    static_cast<OperationWork&>(work) = prepare_work(name);
    if (!is_valid_patch_name(name)) {
        work.error = invalid_name(name);
        return work;
    }
    auto in_kernel = context_.kernel.patches();
    if (!in_kernel) {
        work.error = OpError(in_kernel.error());
        return work;
    }
    if (auto checked = check_revert(name, *in_kernel); !checked) {
        work.error = std::move(checked).error();
        return work;
    }
    const KernelPatch* in_sysfs = find_patch(*in_kernel, name);
    work.loaded = in_sysfs != nullptr;
    // Writing 0 during the patch's own transition to patched turns that one around.
    work.reverses = in_sysfs && in_sysfs->transition;
    // A wanted patch that is not applied (skipped at boot) is only dropped from the wants.
    work.pending = desired_;
    if (DesiredPatch* wanted = work.pending.find(name); wanted && work.loaded)
        wanted->pending = PendingAction::revert;
    work.next = desired_;
    work.next.erase(name);
    return work;
}

void PatchOperations::run_revert(RevertWork& work) const
{
    if (work.error)
        return;
    try {
        if (work.loaded) {
            // Recorded as pending before the write: a crash after it is settled at the next
            // start from what the kernel shows.
            if (auto saved = work.save(context_.storage, work.pending); !saved) {
                work.error = OpError(saved.error());
                return;
            }
            fault_point("revert-after-save");
            fault_point("revert-writes-kernel");
            if (auto done = context_.control.revert(work.name); !done) {
                if (auto restored = work.save(context_.storage, work.before); !restored)
                    work.failures.push_back(restored.error().message);
                work.refused = done.error();
                return;
            }
        }
        if (auto saved = work.save(context_.storage, work.next); !saved) {
            if (!work.loaded) {
                work.error = OpError(saved.error());
                return;
            }
            // The kernel is unpatching it; the pending record says so at the next start.
            work.failures.push_back(saved.error().message);
        }
    } catch (const std::exception& e) {
        work.error = OpError(Error{EIO, work.name + ": the revert failed: " + e.what()});
    }
}

OpResult<void> PatchOperations::finish_revert(RevertWork& work)
{
    adopt(work, "revert");
    if (work.error)
        return std::move(*work.error);
    if (work.refused)
        return kernel_refusal(context_.kernel, "revert", work.name, *work.refused);
    skip_reasons_.erase(work.name);
    sink_->patch_changed(work.name);
    if (work.loaded && work.reverses && transition_reversed_)
        transition_reversed_(work.name, "unpatched");
    else if (work.loaded && transition_started_)
        transition_started_(work.name, "unpatched");
    return {};
}

// --- kick, force ---------------------------------------------------------------------------

OpResult<void> PatchOperations::check_kick() const
{
    auto in_kernel = context_.kernel.patches();
    if (!in_kernel)
        return OpError(in_kernel.error());
    if (!patch_in_transition(*in_kernel))
        return OpError(OpErrc::no_transition, ESRCH, "No transition is under way");
    return {};
}

OpResult<void> PatchOperations::kick()
{
    if (auto checked = check_kick(); !checked)
        return checked;
    OperationWork work = prepare_work({});
    run_kick(work);
    return finish_kick(work);
}

void PatchOperations::kick(std::function<void(OpResult<void>)> done)
{
    if (auto checked = check_kick(); !checked) {
        done(std::move(checked));
        return;
    }
    run_later("kick", prepare_work({}), &PatchOperations::run_kick, &PatchOperations::finish_kick,
              std::move(done));
}

OpResult<void> PatchOperations::finish_kick(OperationWork& work)
{
    if (work.error)
        return std::move(*work.error);
    if (work.refused)
        return kernel_refusal(context_.kernel, "kick", {}, *work.refused);
    return {};
}

void PatchOperations::run_kick(OperationWork& work) const
{
    try {
        fault_point("kick-writes-kernel");
        if (auto done = context_.control.kick(); !done)
            work.refused = done.error();
    } catch (const std::exception& e) {
        work.error = OpError(Error{EIO, std::string("the kick failed: ") + e.what()});
    }
}

OpResult<void> PatchOperations::check_force(std::string_view name) const
{
    if (!is_valid_patch_name(name))
        return invalid_name(name);
    auto in_kernel = context_.kernel.patches();
    if (!in_kernel)
        return OpError(in_kernel.error());
    const KernelPatch* moving = patch_in_transition(*in_kernel);
    if (!moving)
        return OpError(OpErrc::no_transition, ESRCH, "No transition is under way");
    if (moving->name != name)
        return OpError(OpErrc::not_in_transition, ESRCH,
                       "The transition under way is " + moving->name + "'s, not " +
                           std::string(name) + "'s; nothing was forced");
    return {};
}

OpResult<void> PatchOperations::force(std::string_view name)
{
    ForceWork work = prepare_force(name);
    run_force(work);
    return finish_force(work);
}

void PatchOperations::force(std::string_view name, std::function<void(OpResult<void>)> done)
{
    run_later("force", prepare_force(name), &PatchOperations::run_force,
              &PatchOperations::finish_force, std::move(done));
}

PatchOperations::ForceWork PatchOperations::prepare_force(std::string_view name)
{
    ForceWork work;
    static_cast<OperationWork&>(work) = prepare_work(name);
    if (auto checked = check_force(name); !checked) {
        work.error = std::move(checked).error();
        return work;
    }
    if (desired_available_)
        work.next = with_forced(name);
    return work;
}

void PatchOperations::run_force(ForceWork& work) const
{
    if (work.error)
        return;
    try {
        fault_point("force-writes-kernel");
        if (auto done = context_.control.force(work.name); !done) {
            work.refused = done.error();
            return;
        }
        if (work.next)
            if (auto saved = work.save(context_.storage, *work.next); !saved)
                work.failures.push_back(saved.error().message + "; Forced is not kept if "
                                                                "livepatchd restarts in this "
                                                                "boot");
    } catch (const std::exception& e) {
        work.error = OpError(Error{EIO, work.name + ": the force failed: " + e.what()});
    }
}

OpResult<void> PatchOperations::finish_force(ForceWork& work)
{
    adopt(work, "force");
    if (work.error)
        return std::move(*work.error);
    if (work.refused)
        return kernel_refusal(context_.kernel, "force", work.name, *work.refused);
    mark_forced(work.name);
    if (transition_forced_)
        transition_forced_(work.name);
    return {};
}

DesiredState PatchOperations::with_forced(std::string_view name) const
{
    // Kept in the desired state, so that a restart of livepatchd still shows it (this boot).
    DesiredState next = desired_;
    if (next.forced_boot_id != context_.boot_id)
        next.forced.clear();
    next.forced_boot_id = context_.boot_id;
    if (std::find(next.forced.begin(), next.forced.end(), name) == next.forced.end())
        next.forced.emplace_back(name);
    return next;
}

void PatchOperations::mark_forced(std::string_view name)
{
    if (forced_.insert(std::string(name)).second)
        sink_->patch_changed(name);
}

void PatchOperations::record_forced(std::string_view name)
{
    if (desired_available_)
        if (auto saved = commit(with_forced(name)); !saved)
            log_failure(name, saved.error().message +
                                  "; Forced is not kept if livepatchd restarts in this boot");
    mark_forced(name);
}

// --- what the kernel did -------------------------------------------------------------------

void PatchOperations::transition_ended(std::string_view patch, std::string_view state)
{
    DesiredState next = desired_;
    if (state == "unpatched")
        next.erase(patch);
    else if (DesiredPatch* wanted = next.find(patch);
             wanted && wanted->pending == PendingAction::revert)
        wanted->pending = PendingAction::none; // the revert was reversed: still wanted
    // The load's record is used at its first end: a replace replaced at its first patched one.
    std::optional<LoadRecord> load;
    if (const auto it = loads_.find(patch); it != loads_.end()) {
        load = std::move(it->second);
        loads_.erase(it);
    }
    std::vector<std::string> replaced;
    if (state == "patched" && load && load->replace == true)
        replaced = drop_replaced(patch, load->below, next);
    save_after_end(patch, std::move(next));
    announce_replaced(replaced);
    if (state == "patched" && (!load || !load->replace) && ended_unknown_.size() < 64) {
        try {
            ended_unknown_.insert_or_assign(std::string(patch),
                                            load ? std::optional(std::move(load->below))
                                                 : std::nullopt);
        } catch (const std::bad_alloc&) {
            // Lost: what it replaced, if it is a replace, stays wanted (shown skipped).
        }
    }
}

std::vector<std::string> PatchOperations::drop_replaced(std::string_view patch,
                                                       const std::vector<std::string>& names,
                                                       DesiredState& next)
{
    std::vector<std::string> dropped;
    for (const std::string& name : names) {
        if (name == patch || !next.erase(name))
            continue;
        // Replaced, not reverted: the boot apply goes on above it.
        std::erase(boot_applied_, name);
        journal::log(LogLevel::info, name + ": replaced by " + std::string(patch),
                     {{"PATCH", name}});
        dropped.push_back(name);
    }
    return dropped;
}

void PatchOperations::announce_replaced(const std::vector<std::string>& names)
{
    // No transition of their own ends: their State changes with the replace's.
    for (const std::string& name : names)
        sink_->patch_changed(name);
}

void PatchOperations::forget_replaced(const std::vector<KernelPatch>& in_kernel)
{
    if (ended_unknown_.empty())
        return;
    DesiredState next = desired_;
    std::string by;
    std::vector<std::string> dropped;
    // Gone from lpshim's sysfs, or disabled there until lpshim has freed it. One the look
    // shows applied or in transition was put on top of it since.
    const auto gone = [&](const std::string& name) {
        const KernelPatch* there = find_patch(in_kernel, name);
        return !there || (!there->enabled && !there->transition);
    };
    for (const auto& [patch, below] : ended_unknown_) {
        const KernelPatch* ended = find_patch(in_kernel, patch);
        std::vector<std::string> replaced;
        if (ended && ended->replace && below) {
            replaced = *below;
        } else if (!ended && below) {
            // Reverted and freed since its end: if it was a replace, what it had below it is
            // gone from the kernel too, and no longer wanted.
            std::copy_if(below->begin(), below->end(), std::back_inserter(replaced), gone);
        } else if (ended && ended->replace) {
            // Loaded by hand (or by an earlier livepatchd): the wanted patches gone, but for
            // those this boot's apply has not loaded yet.
            for (const DesiredPatch& wanted : desired_.patches)
                if (std::find(boot_queue_.begin(), boot_queue_.end(), wanted.name) ==
                        boot_queue_.end() &&
                    gone(wanted.name))
                    replaced.push_back(wanted.name);
        }
        if (replaced.empty())
            continue;
        by = patch;
        std::ranges::move(drop_replaced(patch, replaced, next), std::back_inserter(dropped));
    }
    ended_unknown_.clear();
    if (next != desired_)
        save_after_end(by, std::move(next));
    announce_replaced(dropped);
}

void PatchOperations::save_after_end(std::string_view patch, DesiredState next)
{
    if (!desired_available_)
        return;
    if (auto saved = commit(std::move(next)); !saved)
        log_failure(patch, saved.error().message + "; the desired state on disk still says the "
                                                   "old wants until a save works");
}

void PatchOperations::settle(const std::vector<KernelPatch>& in_kernel)
{
    if (!desired_available_)
        return;
    DesiredState next = desired_;
    for (const DesiredPatch& wanted : desired_.patches) {
        if (wanted.pending == PendingAction::none)
            continue;
        const KernelPatch* loaded = find_patch(in_kernel, wanted.name);
        const bool this_boot = wanted.applied_boot_id == context_.boot_id;
        if (wanted.pending == PendingAction::apply) {
            if (loaded || !this_boot) {
                // Loaded (or the boot it was loaded in ended: the crash-loop guard decides).
                next.find(wanted.name)->pending = PendingAction::none;
            } else {
                next.erase(wanted.name);
                journal::log(LogLevel::warning,
                             wanted.name + ": an apply was interrupted before its module was "
                                           "loaded (livepatchd stopped); it is not wanted",
                             {{"PATCH", wanted.name}});
            }
        } else if (loaded && loaded->enabled) {
            next.find(wanted.name)->pending = PendingAction::none;
            journal::log(LogLevel::warning,
                         wanted.name + ": a revert was interrupted before it reached the "
                                       "kernel (livepatchd stopped); it is still applied and "
                                       "wanted",
                         {{"PATCH", wanted.name}});
        } else {
            next.erase(wanted.name);
        }
    }
    if (auto saved = commit(std::move(next)); !saved)
        log_failure("", saved.error().message);
}

// --- the boot apply ------------------------------------------------------------------------

void PatchOperations::plan_boot_apply(const BootPlanInput& input)
{
    if (!desired_available_) {
        journal::log(LogLevel::err,
                     "the boot apply does not run: the desired state could not be read",
                     {{"MESSAGE_ID", std::string(journal::message_id::action_failed)}});
        return;
    }
    auto installed = context_.store.list();
    if (!installed) {
        journal::log(LogLevel::err, installed.error().message);
        return;
    }
    auto plan = reconcile({
        .desired = desired_,
        .installed = *installed,
        .kernel = context_.kernel,
        .kernel_release = context_.kernel_release,
        .boot_id = context_.boot_id,
        .config_boot_apply = input.config_boot_apply,
        .crash_guard = context_.crash_guard_window,
        .boot_flags = input.boot_flags,
    });
    if (!plan) {
        journal::log(LogLevel::err, "cannot read the kernel's patches: " + plan.error().message);
        return;
    }
    for (const Action& action : *plan) {
        const std::string kind(to_string(action.kind));
        switch (action.kind) {
        case ActionKind::apply:
            if (action.unload_first)
                if (auto gone = context_.control.unload(action.patch); !gone)
                    journal::log(LogLevel::warning, gone.error().message,
                                 {{"PATCH", action.patch}});
            boot_queue_.push_back(action.patch);
            break;
        case ActionKind::skip:
            skip_reasons_[action.patch] = action.reason;
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
}

std::optional<std::string> PatchOperations::apply_next_queued(
    const std::vector<KernelPatch>& in_kernel)
{
    if (patch_in_transition(in_kernel))
        return std::nullopt;
    // One the boot apply applied was taken out since (a stall's revert, an admin's Revert).
    for (const std::string& applied : boot_applied_) {
        const KernelPatch* loaded = find_patch(in_kernel, applied);
        if (!boot_queue_.empty() && (!loaded || !loaded->enabled)) {
            skip_rest_of_boot_queue(applied, "was reverted during the boot apply");
            return std::nullopt;
        }
    }
    while (!boot_queue_.empty()) {
        const std::string name = boot_queue_.front();
        boot_queue_.pop_front();
        if (!desired_.find(name) || find_patch(in_kernel, name))
            continue; // reverted meanwhile, or applied over the bus
        journal::log(LogLevel::info, name + ": applying (boot apply)",
                     {{"PATCH", name},
                      {"MESSAGE_ID", std::string(journal::message_id::boot_apply)},
                      {"ACTION", "apply"}});
        if (auto done = apply_now(name, true, names_of(in_kernel)); !done) {
            const std::string named =
                std::holds_alternative<PatchErrc>(done.error().code)
                    ? " (" + std::string(to_string(std::get<PatchErrc>(done.error().code))) + ")"
                    : "";
            skip_reasons_[name] = "the boot apply could not apply it" + named + ": " +
                                  done.error().message;
            log_failure(name, name + ": the boot apply could not apply it" + named + ": " +
                                  done.error().message);
            sink_->patch_changed(name);
            skip_rest_of_boot_queue(name, "could not be applied at this boot");
            return std::nullopt;
        }
        boot_applied_.push_back(name);
        return name; // the next one after this transition ends
    }
    return std::nullopt;
}

void PatchOperations::skip_rest_of_boot_queue(const std::string& below,
                                              const std::string& why_not_below)
{
    // Nothing goes on top of a patch that is not there.
    for (const std::string& later : boot_queue_) {
        skip_reasons_[later] = below + ", which comes before it in the desired order, " +
                               why_not_below + "; applying " + later +
                               " would stack it without " + below +
                               " below it: apply them by hand once " + below + " is fixed";
        journal::log(LogLevel::warning, later + " is not applied: " + skip_reasons_[later],
                     {{"PATCH", later},
                      {"MESSAGE_ID", std::string(journal::message_id::boot_apply)},
                      {"ACTION", "skip"}});
        sink_->patch_changed(later);
    }
    boot_queue_.clear();
}

// --- the crash-loop guard, shutdown, modules -----------------------------------------------

namespace {

void say_oopsed(const std::vector<std::string>& names)
{
    for (const std::string& name : names)
        journal::log(LogLevel::err,
                     "the kernel oopsed after " + name +
                         " was applied; it will not be applied at the next boot unless "
                         "applied again",
                     {{"PATCH", name}});
}

} // namespace

void PatchOperations::start_oops_watch(std::optional<std::uint64_t> oops_count)
{
    std::uint64_t seen = oops_count.value_or(0);
    if (!context_.boot_id.empty() && desired_.oops_boot_id == context_.boot_id)
        // Never past the kernel's count now (a hand-edited file): that would hide oopses.
        seen = std::min(desired_.oops_count, oops_count.value_or(desired_.oops_count));
    see_oopses(seen, desired_);
    oops_known_ = std::max(seen, oops_count.value_or(0));
    // Nor a patch's own count, for the same reason: kept from the next save on.
    if (oops_count && !context_.boot_id.empty())
        for (DesiredPatch& p : desired_.patches)
            if (p.applied_boot_id == context_.boot_id)
                p.applied_oops_count = std::min(p.applied_oops_count, *oops_count);
}

void PatchOperations::see_oopses(std::uint64_t count, DesiredState& state)
{
    oops_seen_ = count;
    oops_known_ = std::max(oops_known_, count);
    if (!context_.boot_id.empty()) {
        state.oops_boot_id = context_.boot_id;
        state.oops_count = count;
    }
}

void PatchOperations::keep_crash_guard(const std::vector<KernelPatch>& in_kernel,
                                       std::optional<std::uint64_t> oops_count)
{
    if (!desired_available_)
        return;
    const std::uint64_t seen_before = oops_seen_;
    const std::uint64_t count = std::max(seen_before, oops_count.value_or(0));
    DesiredState next = desired_;
    std::vector<std::string> oopsed;
    if (!guard_.update(next, in_kernel, seen_before, count, boottime(), &oopsed)) {
        // No patch of this boot to mark: seen, and the next save (of anything) keeps it.
        see_oopses(count, desired_);
        return;
    }
    see_oopses(count, next);
    if (auto saved = commit(std::move(next)); !saved) {
        oops_seen_ = seen_before; // the next look marks them again
        log_failure("", saved.error().message);
        return;
    }
    say_oopsed(oopsed);
}

std::optional<std::uint64_t> PatchOperations::crash_guard_deadline() const
{
    return guard_.next_deadline(desired_, boottime());
}

void PatchOperations::record_clean_shutdown(std::optional<std::uint64_t> oops_count)
{
    if (!desired_available_)
        return;
    if (!oops_count) {
        journal::log(LogLevel::warning,
                     "cannot read the kernel's oops count: this clean shutdown does not count "
                     "for the crash-loop guard (the patches applied in this boot are held at "
                     "the next unless boot.crash_guard_seconds passed)");
        return;
    }
    DesiredState next = desired_;
    next.clean_shutdown_boot_id = context_.boot_id;
    // An oops since the last look (an idle service has none for long) counts first: the
    // patches of this boot then did not survive, however cleanly it ends.
    std::vector<std::string> oopsed;
    (void)guard_.update(next, {}, oops_seen_, *oops_count, boottime(), &oopsed);
    see_oopses(std::max(oops_seen_, *oops_count), next);
    say_oopsed(oopsed);
    guard_.shut_down_cleanly(next);
    if (auto saved = commit(std::move(next)); !saved)
        log_failure("", saved.error().message);
}

bool PatchOperations::unload_unpatched(const std::vector<KernelPatch>& in_kernel)
{
    auto installed = context_.store.list();
    if (!installed) {
        postpone_removal_waits(); // the tick comes back in a second, not at once
        return false;
    }
    struct UnloadWork {
        std::vector<std::string> names;
        // Of the modules tried, in order: an error, or none (removed).
        std::vector<std::optional<Error>> outcomes; // the rest: cut short
    };
    auto work = std::make_shared<UnloadWork>();
    const std::uint64_t now = boottime();
    for (const InstalledPatch& patch : *installed) {
        const KernelPatch* listed = find_patch(in_kernel, patch.name);
        if (listed && !listed->enabled && !listed->transition &&
            context_.kernel.module_loaded(patch.name)) {
            // Unpatched, and lpshim lets go of it after its transition's end (its sysfs entry,
            // then its module): no event says when, so a later tick looks again.
            cannot_unload_.erase(patch.name);
            if (wait_for_removal(patch.name, now, true, "lpshim still lists it, unpatched") ==
                RemovalLook::gave_up)
                journal::log(LogLevel::warning,
                             patch.name + ": lpshim still lists it, unpatched, 13 s after it "
                                          "was first seen so (see journalctl -k -g lpshim): "
                                          "its module's removal is tried at a later look, at "
                                          "the next transition or start of livepatchd",
                             {{"PATCH", patch.name}});
            continue;
        }
        if (listed || !context_.kernel.module_loaded(patch.name)) {
            cannot_unload_.erase(patch.name);
            removal_waits_.erase(patch.name);
            continue;
        }
        const auto waiting = removal_waits_.find(patch.name);
        if (cannot_unload_.contains(patch.name) ||
            (waiting != removal_waits_.end() && waiting->second.due_usec > now))
            continue;
        work->names.push_back(patch.name);
    }
    // A wait that is due and not tried now (no longer waited for) would have the next tick
    // come at once, again and again; one for a patch no longer installed is done with.
    std::erase_if(removal_waits_, [&](const auto& entry) {
        const auto& [name, wait] = entry;
        if (wait.due_usec && wait.due_usec <= now)
            return std::ranges::find(work->names, name) == work->names.end();
        return std::ranges::none_of(*installed,
                                    [&name](const InstalledPatch& p) { return p.name == name; });
    });
    if (work->names.empty())
        return false;
    work->outcomes.reserve(work->names.size());
    // delete_module() waits for the kernel (at the end of a transition of 10,000 tasks under
    // emulation: 27-30 ms in the kernel and two sleeps, a 61-65 ms dispatch of the loop), so it
    // runs as an operation's blocking work.
    auto removed = [this, work] {
        for (std::size_t i = 0; i < work->names.size(); ++i) {
            const std::string& name = work->names[i];
            if (i >= work->outcomes.size()) {
                // Not tried, so not again until its state changes: its end ticks, and a
                // candidate left as it was would start the same work again at once.
                journal::log(LogLevel::warning,
                             name + ": its module's removal was cut short (out of memory); it "
                                    "is tried again once the patch is applied, or its module "
                                    "is gone",
                             {{"PATCH", name}});
                cannot_unload_.insert(name);
            } else if (const auto& failed = work->outcomes[i]) {
                // Still in use (EWOULDBLOCK): lpshim lets go of an unpatched patch's module
                // just after its sysfs entry goes, so a removal right then finds it held.
                if (failed->errnum == EWOULDBLOCK && !forced_.contains(name) &&
                    wait_for_removal(name, boottime(), false, failed->message) ==
                        RemovalLook::waiting)
                    continue;
                // Said once: a forced patch's module, for one, can never be removed.
                removal_waits_.erase(name);
                journal::log(LogLevel::warning, failed->message, {{"PATCH", name}});
                cannot_unload_.insert(name);
            } else {
                removal_waits_.erase(name);
                journal::log(LogLevel::info, name + ": module removed", {{"PATCH", name}});
                sink_->patch_changed(name);
            }
        }
    };
    try {
        run_blocking(
            [this, work] {
                try {
                    for (const std::string& name : work->names) {
                        fault_point("unload-writes-kernel");
                        auto gone = context_.control.unload(name);
                        work->outcomes.push_back(gone ? std::nullopt
                                                      : std::optional<Error>(gone.error()));
                    }
                } catch (...) { // a work must not throw: the rest is said to be cut short
                }
            },
            std::move(removed));
    } catch (const std::exception& e) {
        // Not run (no memory to queue it): the next idle tick tries again.
        journal::log(LogLevel::warning,
                     std::string("the removal of unpatched patches' modules could not start: ") +
                         e.what());
        postpone_removal_waits();
        return false;
    }
    return true;
}

PatchOperations::RemovalLook PatchOperations::wait_for_removal(const std::string& name,
                                                               std::uint64_t now, bool listed,
                                                               std::string_view why)
{
    RemovalWait& wait = removal_waits_[name];
    if (wait.listed != listed)
        wait = RemovalWait{.listed = listed};
    if (wait.due_usec > now)
        return RemovalLook::waiting; // already
    if (wait.tries == removal_max_tries) {
        if (!wait.due_usec)
            return RemovalLook::given_up_before;
        wait.due_usec = 0; // given up: no tick for it (the entry says so until it changes)
        return RemovalLook::gave_up;
    }
    const std::uint64_t delay_usec = std::min<std::uint64_t>(100'000ULL << wait.tries, 2'000'000);
    ++wait.tries;
    wait.due_usec = now + delay_usec;
    journal::log(LogLevel::debug,
                 name + ": its module is removed once lpshim lets go of it (" + std::string(why) +
                     "); looking again in " + std::to_string(delay_usec / 1000) + " ms",
                 {{"PATCH", name}});
    return RemovalLook::waiting;
}

void PatchOperations::postpone_removal_waits()
{
    // Each postponed look costs a try: a store that stays unreadable ends the waits too.
    const std::uint64_t now = boottime();
    for (auto& [name, wait] : removal_waits_) {
        if (!wait.due_usec || wait.due_usec > now)
            continue; // given up, or not due yet
        if (wait.tries == removal_max_tries) {
            wait.due_usec = 0;
            continue;
        }
        ++wait.tries;
        wait.due_usec = now + 1'000'000;
    }
}

std::optional<std::uint64_t> PatchOperations::next_removal_usec() const
{
    std::optional<std::uint64_t> next;
    for (const auto& [name, wait] : removal_waits_)
        if (wait.due_usec && (!next || wait.due_usec < *next))
            next = wait.due_usec;
    return next;
}

Result<std::vector<PatchStatus>> PatchOperations::statuses() const
{
    auto read = read_patches();
    if (!read)
        return std::move(read).error();
    return statuses_from(*read);
}

Result<PatchReads> PatchOperations::read_patches() const
{
    auto installed = context_.store.list();
    if (!installed)
        return std::move(installed).error();
    auto in_kernel = context_.kernel.patches();
    if (!in_kernel)
        return std::move(in_kernel).error();
    return PatchReads{std::move(*installed), std::move(*in_kernel)};
}

std::vector<PatchStatus> PatchOperations::statuses_from(const PatchReads& read) const
{
    return collect_patch_status(read.installed, desired_, read.in_kernel, skip_reasons_, forced_);
}

} // namespace livepatchd
