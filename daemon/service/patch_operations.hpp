// SPDX-License-Identifier: GPL-2.0-only
//
// PatchOperations: everything that changes which patches are applied or wanted, in one place,
// for both the D-Bus adapter (Install, Apply, Revert, Remove, Kick, Force) and the boot apply.
// It owns the desired state: every change is made on a copy, saved (DesiredStateStorage), and
// only then adopted; a failed save changes nothing and is reported. An apply or revert is
// recorded as pending before the kernel is asked and confirmed after, so that a crash in
// between is settled at the next start from what the kernel shows (settle()): an apply whose
// module never loaded is dropped (its caller got an error), a revert whose write never reached
// sysfs is undone.
//
// Each verb comes in two steps: check_X() validates against the state of the moment without
// changing anything and without reading much (the D-Bus adapter calls it before polkit), X()
// validates again and acts (after polkit, or for the boot apply).
//
// When the desired state cannot be read (a newer format, an I/O error: anything but a damaged
// file, which DesiredStateFile keeps aside), nothing that would save it is allowed
// (desired_state_unavailable) and the boot apply does not run: the file still holds what is
// wanted and must not be overwritten with less.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.hpp"
#include "config/config.hpp"
#include "kernel/boot_info.hpp"
#include "kernel/kernel_view.hpp"
#include "kernel/patch_control.hpp"
#include "service/crash_guard.hpp"
#include "service/event_sink.hpp"
#include "service/op_error.hpp"
#include "service/status.hpp"
#include "store/desired_state.hpp"
#include "store/patch_store.hpp"

namespace livepatchd {

struct OperationsContext {
    PatchStore& store;
    DesiredStateStorage& storage;
    const KernelView& kernel;
    PatchControl& control;
    std::string kernel_release;
    std::string boot_id;
    std::chrono::seconds crash_guard_window{300};
    std::function<std::uint64_t()> realtime = nullptr; // default: the real clocks
    std::function<std::uint64_t()> boottime = nullptr;
    // The kernel's oops count now (read_oops_count; nullopt: unreadable), taken at each apply
    // for the crash-loop guard. nullptr: not known.
    std::function<std::optional<std::uint64_t>()> oops_count = nullptr;
};

class PatchOperations {
public:
    explicit PatchOperations(OperationsContext context);

    // Reads the desired state. Returns the error to report, if any: EBADMSG (a damaged file,
    // kept aside) starts from nothing wanted; any other makes the desired state unavailable.
    std::optional<Error> load();
    void set_sink(EventSink* sink) { sink_ = sink ? sink : &null_sink_; }
    // Where blocking work runs: work on a thread, then `then` on the loop (OffLoopWork::run).
    // Without one, both run at once on the caller's thread.
    using WorkRunner =
        std::function<void(std::function<void()> work, std::function<void()> then)>;
    void set_work_runner(WorkRunner runner) { runner_ = std::move(runner); }
    // An operation's blocking work runs. Until it has ended, nothing else may change the
    // patches or the desired state: the adapter makes such calls wait their turn, the service
    // holds its tick and lpshim's transition events (the operation's own start is matched off
    // once it has ended).
    bool busy() const { return busy_; }
    // Told when an apply or revert started a transition (the kernel may have completed it
    // already): the watcher follows it even then.
    void set_transition_started(std::function<void(std::string_view, std::string_view)> f)
    {
        transition_started_ = std::move(f);
    }
    // Told when a Revert turned a patch's transition to patched around (to "unpatched").
    void set_transition_reversed(std::function<void(std::string_view, std::string_view)> f)
    {
        transition_reversed_ = std::move(f);
    }
    // Told when Force switched the tasks of a patch's transition: it ends "forced".
    void set_transition_forced(std::function<void(std::string_view)> f)
    {
        transition_forced_ = std::move(f);
    }

    OpResult<void> check_install(int fd, std::string_view source_name) const;
    // Installs the patch read from fd (PatchStore::install), answered through done, on the
    // loop: the file's copy, hash and checks run as blocking work (set_work_runner, busy()
    // meanwhile), the store's commit after it.
    void install(UniqueFd fd, std::string_view source_name,
                 std::function<void(OpResult<InstalledPatch>)> done);
    OpResult<void> check_apply(std::string_view name) const;
    OpResult<void> apply(std::string_view name);
    // apply(), answered through done, on the loop: the file's checks, the saves and the
    // module's load (finit_module() starts the transition: tens of milliseconds, more with many
    // tasks) run as blocking work (set_work_runner), the announcements after it.
    void apply(std::string_view name, std::function<void(OpResult<void>)> done);
    OpResult<void> check_revert(std::string_view name) const;
    OpResult<void> revert(std::string_view name);
    // revert(), answered through done, on the loop: the saves of the desired state and the
    // write to lpshim's enabled (which starts the transition: it walks every task) run as
    // blocking work, the announcements after it.
    void revert(std::string_view name, std::function<void(OpResult<void>)> done);
    OpResult<void> check_remove(std::string_view name) const;
    OpResult<void> remove(std::string_view name);
    OpResult<void> check_kick() const;
    OpResult<void> kick();
    OpResult<void> check_force(std::string_view name) const;
    OpResult<void> force(std::string_view name);
    // kick() and force(), answered through done, on the loop: the write to lpshim (each walks
    // the pending tasks) and Force's save of Forced run as blocking work.
    void kick(std::function<void(OpResult<void>)> done);
    void force(std::string_view name, std::function<void(OpResult<void>)> done);
    // A write to lpshim the service decided (the ladder's kick, a stall's reversal), as
    // blocking work, its outcome told through done on the loop: busy() meanwhile, as for an
    // operation of a caller's. Not while busy().
    void write_kernel(std::function<Result<void>()> write, std::function<void(Result<void>)> done);
    // The kernel forced tasks of name's transition (Force, on_stall: force, or echo 1 > force
    // by hand, seen in lpshim's end event): its Forced is true for the rest of this boot, kept
    // in the desired state across restarts of livepatchd.
    void record_forced(std::string_view name);

    // A transition the watcher saw end, with the patch now in `state` ("patched" or
    // "unpatched"): a patch that ended unpatched is no longer wanted (a reversed apply, a
    // revert). When an atomic replace applied here ends patched, the wanted patches the kernel
    // had when it was loaded (all below it) are no longer wanted either: read before the load,
    // off the event loop (the boot apply takes them from the look it runs in), so that the end
    // reads nothing. Whether it is a replace is read after an Apply's load; of the boot
    // apply's, and of a replace loaded by hand, forget_replaced() learns it at the next look.
    void transition_ended(std::string_view patch, std::string_view state);
    // At each look at the kernel (read off the loop), for the patches that ended patched not
    // known to be replaces or not: a replace among them replaced the patches the kernel had
    // at its load; one loaded by hand, the wanted patches the look shows gone, or disabled
    // until lpshim frees them (not those the boot apply has yet to load).
    void forget_replaced(const std::vector<KernelPatch>& in_kernel);
    // At start: settles what a crash left pending (above).
    void settle(const std::vector<KernelPatch>& in_kernel);

    struct BootPlanInput {
        bool config_boot_apply = true;
        BootFlags boot_flags;
    };
    // The boot apply's plan (Reconciler), logged; the patches to apply queue up.
    void plan_boot_apply(const BootPlanInput& input);
    // Applies the next queued patch unless a transition is under way; the name of the patch
    // whose transition started, if one did. A patch that cannot be applied ends the boot
    // apply: nothing is stacked above a patch that is not there (the rest are skipped, and
    // say why).
    std::optional<std::string> apply_next_queued(const std::vector<KernelPatch>& in_kernel);
    std::size_t boot_queue_size() const { return boot_queue_.size(); }

    // The crash-loop guard's oopses: those of this boot past oops_seen_ are new. Called once
    // after load() with the kernel's oops count now (read_oops_count(); nullopt: unreadable):
    // the count the desired state says this boot's guard already accounted for (livepatchd
    // stopped or crashed in this boot and started again: an oops meanwhile is still new), else
    // (another boot) the count now.
    void start_oops_watch(std::optional<std::uint64_t> oops_count);
    // The crash-loop guard's records, with the kernel's oops count now (nullopt: unreadable,
    // nothing new); saved when they change. An oops that marks a patch counts as seen only
    // once saved; one with no patch to mark is seen at once (the next save keeps it).
    void keep_crash_guard(const std::vector<KernelPatch>& in_kernel,
                          std::optional<std::uint64_t> oops_count);
    std::optional<std::uint64_t> crash_guard_deadline() const; // CLOCK_BOOTTIME
    // The boot is being shut down cleanly (the crash-loop guard's record): the patches applied
    // in it survived, unless the kernel oopsed (oops_count past the oopses seen). An unreadable
    // count records nothing: the shutdown is then not counted.
    void record_clean_shutdown(std::optional<std::uint64_t> oops_count);
    // Removes the modules of store patches that lpshim no longer lists (unpatched, replaced),
    // as blocking work (busy() until its end, which says what was removed): true if it started
    // one.
    bool unload_unpatched(const std::vector<KernelPatch>& in_kernel);
    // When a removal waits for lpshim to let go of a module (CLOCK_BOOTTIME): a tick then.
    std::optional<std::uint64_t> next_removal_usec() const;

    // What the adapter reports: read_patches() (the store and sysfs; from any thread) made into
    // states by statuses_from() (on the loop).
    Result<std::vector<PatchStatus>> statuses() const;
    Result<PatchReads> read_patches() const;
    std::vector<PatchStatus> statuses_from(const PatchReads& read) const;
    const DesiredState& desired() const { return desired_; }
    bool desired_available() const { return desired_available_; }
    // A save of the desired state failed since the last one that worked (State "error").
    bool save_failed() const { return save_failed_; }
    const std::map<std::string, std::string, std::less<>>& skip_reasons() const
    {
        return skip_reasons_;
    }

private:
    // The one place the desired state changes: saved, then adopted; on failure nothing
    // changes and the error is returned.
    OpResult<void> commit(DesiredState next);
    // commit() after a transition's end, which has no caller to answer: a failure is logged.
    void save_after_end(std::string_view patch, DesiredState next);
    // The boot apply's: below, the patches of the look it runs in.
    OpResult<void> apply_now(std::string_view name, bool boot,
                             std::optional<std::vector<std::string>> below = std::nullopt);
    // Runs work as blocking work (runner_, or at once without one), then `then` on the loop;
    // busy() from now until `then` starts.
    void run_blocking(std::function<void()> work, std::function<void()> then);
    // An operation in three steps: prepared on the loop, run as blocking work on copies
    // (nothing of this object but the context's store, storage and control, which nothing else
    // uses while busy()), finished on the loop, where the desired state it saved is adopted.
    struct OperationWork {
        std::string name;
        DesiredState before;          // as it was
        std::optional<OpError> error; // failed before the kernel was asked, or could not ask
        std::optional<Error> refused; // the kernel refused
        DesiredState on_disk;         // what the file holds once the work is done
        std::optional<bool> save_failed;   // the last save's outcome, if one was made
        std::vector<std::string> failures; // saves that failed after the point of no return
        // Saves state unless the file holds it already (as commit()).
        Result<void> save(const DesiredStateStorage& storage, const DesiredState& state);
    };
    OperationWork prepare_work(std::string_view name) const;
    // An operation's work, prepared on the loop: refused at once (its error), or run as
    // blocking work and finished on the loop, done told the outcome there.
    template <typename Work>
    void run_later(std::string_view verb, Work prepared,
                   void (PatchOperations::*run)(Work&) const,
                   OpResult<void> (PatchOperations::*finish)(Work&),
                   std::function<void(OpResult<void>)> done);
    // At a work's end, on the loop: what the file holds becomes the desired state; the saves
    // that failed are logged; a failed work that changed whether the patch is wanted says so.
    void adopt(OperationWork& work, std::string_view verb);
    struct ApplyWork : OperationWork {
        DesiredState next; // with the patch on top (pending, if the apply makes it wanted)
        // What the kernel had before the load (the boot apply: its look's), if known; whether
        // it is an atomic replace, read after the load (off the loop only).
        std::optional<std::vector<std::string>> below;
        bool read_replace = true;
        std::optional<bool> replace;
    };
    ApplyWork prepare_apply(std::string_view name, bool boot);
    void run_apply(ApplyWork& work) const;
    OpResult<void> finish_apply(ApplyWork& work);
    struct RevertWork : OperationWork {
        bool loaded = false;    // lpshim has it: its enabled is written
        bool reverses = false;  // its transition to patched is under way: the write turns it
        DesiredState pending;   // wanted, as being reverted (if it was wanted)
        DesiredState next;      // not wanted
    };
    OpResult<void> check_revert(std::string_view name,
                                const std::vector<KernelPatch>& in_kernel) const;
    RevertWork prepare_revert(std::string_view name);
    void run_revert(RevertWork& work) const;
    OpResult<void> finish_revert(RevertWork& work);
    struct ForceWork : OperationWork {
        std::optional<DesiredState> next; // with the patch's Forced, if it can be saved
    };
    ForceWork prepare_force(std::string_view name);
    void run_force(ForceWork& work) const;
    OpResult<void> finish_force(ForceWork& work);
    // The desired state with name's Forced recorded (of this boot).
    DesiredState with_forced(std::string_view name) const;
    // Forced is true for the rest of this boot; announced when it was not.
    void mark_forced(std::string_view name);
    void run_kick(OperationWork& work) const;
    OpResult<void> finish_kick(OperationWork& work);
    std::uint64_t realtime() const;
    std::uint64_t boottime() const;

    OperationsContext context_;
    CrashGuard guard_;
    NullEventSink null_sink_;
    EventSink* sink_ = &null_sink_;
    DesiredState desired_;
    // The kernel's oopses of this boot the crash-loop guard has accounted for, kept in the
    // desired state too (oops_boot_id, oops_count; see_oopses()), so that every save, an
    // operation's work's too, keeps it for a later start in this boot.
    std::uint64_t oops_seen_ = 0;
    // The highest oops count of this boot known (read at the start or by a look; never rolled
    // back, as oops_seen_ is after a failed save): every oops up to it came before an apply
    // now, whether the kernel's count can be read then or not.
    std::uint64_t oops_known_ = 0;
    void see_oopses(std::uint64_t count, DesiredState& state);
    bool desired_available_ = true;
    bool save_failed_ = false;
    std::map<std::string, std::string, std::less<>> skip_reasons_;
    std::set<std::string, std::less<>> forced_;
    std::set<std::string, std::less<>> cannot_unload_;
    // Unpatched patches whose modules lpshim has not let go of yet (still listed, or the
    // removal found the module in use: two phases, each with its own tries): looked at again
    // at due_usec (CLOCK_BOOTTIME; 0: given up after `tries`), until the module is gone, the
    // patch is applied again or no longer installed.
    struct RemovalWait {
        bool listed = false;
        unsigned tries = 0;
        std::uint64_t due_usec = 0;
    };
    std::map<std::string, RemovalWait, std::less<>> removal_waits_;
    // 0.1 s, doubling to 2 s: 13 s in all (and the loop timer's slack, up to 0.25 s a look),
    // for a kernel whose work queue waits its turn; each phase its own.
    static constexpr unsigned removal_max_tries = 10;
    // A look at a patch whose module is not removed yet: waiting (a later tick looks again),
    // or out of tries, just now (to be said) or earlier (said then, or given up unsaid by
    // postpone_removal_waits when no look could be taken).
    enum class RemovalLook { waiting, gave_up, given_up_before };
    RemovalLook wait_for_removal(const std::string& name, std::uint64_t now, bool listed,
                                 std::string_view why);
    void postpone_removal_waits(); // the due ones a second later, a try each: none could be tried
    // What an apply's load knew, from the load until its transition ends: the patches the
    // kernel had before it, and whether it is an atomic replace, if read.
    struct LoadRecord {
        std::vector<std::string> below;
        std::optional<bool> replace;
    };
    std::map<std::string, LoadRecord, std::less<>> loads_;
    // Patches that ended patched not known to be replaces or not, with what the kernel had
    // below them if known (loaded by hand: not): the next look tells (forget_replaced). At
    // most 64.
    std::map<std::string, std::optional<std::vector<std::string>>, std::less<>> ended_unknown_;
    // Drops the wanted patches named from next, as replaced by patch; returns those dropped,
    // to announce (announce_replaced) once next is saved.
    std::vector<std::string> drop_replaced(std::string_view patch,
                                           const std::vector<std::string>& names,
                                           DesiredState& next);
    void announce_replaced(const std::vector<std::string>& names);
    std::deque<std::string> boot_queue_;
    // What the boot apply applied so far, in order: a later one goes only on top of all of them.
    std::vector<std::string> boot_applied_;
    // Skips every patch left in the boot queue, because `below` is not under them.
    void skip_rest_of_boot_queue(const std::string& below, const std::string& why_not_below);
    WorkRunner runner_;
    bool busy_ = false;
    std::function<void(std::string_view, std::string_view)> transition_started_;
    std::function<void(std::string_view, std::string_view)> transition_reversed_;
    std::function<void(std::string_view)> transition_forced_;
};

// A patch in a snapshot of the kernel, by name (nullptr: not there); the one in transition.
const KernelPatch* find_patch(const std::vector<KernelPatch>& in_kernel, std::string_view name);
const KernelPatch* patch_in_transition(const std::vector<KernelPatch>& in_kernel);

} // namespace livepatchd
