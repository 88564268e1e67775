// SPDX-License-Identifier: GPL-2.0-only
//
// Manager: livepatchd on the bus (org.livepatchd.LivePatch1, docs/dbus-api.md), the adapter
// between D-Bus and the service:
//  - /org/livepatchd/LivePatch1: org.livepatchd.LivePatch1.Manager and the
//    org.freedesktop.DBus.ObjectManager of the patch objects;
//  - /org/livepatchd/LivePatch1/patch/<escaped name>: org.livepatchd.LivePatch1.Patch, one per
//    patch in the store or in the kernel (a fallback vtable with an enumerator: the objects are
//    computed on demand, never kept in step by hand).
// Every mutating method runs: parse -> validate (PatchOperations::check_X) -> authorize
// (PolkitAuthorizer) -> act (PatchOperations::X) -> emit -> reply. Since polkit's answer
// re-dispatches the call, validation runs again after authorization, against the state of
// that moment.
//
// The status of the patches is computed once per incoming message and kept for the rest of
// it: GetManagedObjects reads the store and the kernel once, not once per property.
//
// It implements EventSink: what the service reports becomes signals and PropertiesChanged.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <functional>
#include <deque>
#include <list>
#include <memory>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dbus/bus_ptr.hpp"
#include "dbus/polkit.hpp"
#include "kernel/kernel_view.hpp"
#include "kernel/patch_control.hpp"
#include "remediation/remediation.hpp"
#include "remediation/task_facts.hpp"
#include "service/event_sink.hpp"
#include "service/patch_operations.hpp"
#include "service/status.hpp"

namespace livepatchd::dbus {

inline constexpr const char* bus_name = "org.livepatchd.LivePatch1";
inline constexpr const char* manager_path = "/org/livepatchd/LivePatch1";
inline constexpr const char* manager_interface = "org.livepatchd.LivePatch1.Manager";
inline constexpr const char* patch_interface = "org.livepatchd.LivePatch1.Patch";
inline constexpr const char* patch_path_prefix = "/org/livepatchd/LivePatch1/patch";

// "/org/livepatchd/LivePatch1/patch/lp_5ffix" for "lp_fix": sd_bus_path_encode(), the escaping
// systemd uses for unit objects. nullopt for a path that is not a patch object's.
std::string patch_object_path(std::string_view name);
std::optional<std::string> patch_name_from_path(const char* path);

struct ManagerContext {
    PatchOperations& operations;
    const KernelView& kernel;
    const PatchControl& control;
    std::string kernel_release;
    // ListPendingTasks and GetTaskStacks: the pending tasks and, when stacks is true, the kernel
    // stacks of the first max_listed_stacks of them by tid, to done, from the loop (at 30,000
    // pending tasks, reading them takes the kernel seconds: it is not done in the call's turn).
    // Unset: lpshim's list, without stacks, at once.
    using PendingListed = std::function<void(
        Result<std::vector<PendingTask>> tasks,
        std::map<std::uint32_t, std::vector<std::string>> stacks)>;
    std::function<void(bool stacks, PendingListed done)> list_pending = nullptr;
    // The service's view of a pending task (facts, time blocked, actions; unset: the task as
    // listed), asked for a slice of the tasks per turn of the loop, with one look per listing
    // (a process's units asked of sd-login once for all its threads).
    std::function<BlockingTask(const PendingTask&, TaskFactsLook&)> blocking_task = nullptr;
    // Where PatchStateChanged's read of the patches (PatchOperations::read_patches(): the store
    // and lpshim's sysfs, 40 ms of an Apply's end under emulation at 30,000 pending tasks)
    // runs: work on a thread, then `then` on the loop, in the order posted. Unset: at once.
    std::function<void(std::function<void()> work, std::function<void()> then)> read_patches =
        nullptr;
};

// ListPendingTasks and GetTaskStacks carry the kernel stacks of the first this many tasks of
// the list only: walking and naming every frame of 30,000 stacks takes the kernel seconds.
inline constexpr std::size_t max_listed_stacks = 100;
// ListPendingTasks calls answered at once; one more is refused (LimitsExceeded): each holds
// its list and its reply until it is sent.
inline constexpr std::size_t max_pending_listings = 4;
// Calls that change patches waiting for an operation's blocking work to end; one more is
// refused (LimitsExceeded).
inline constexpr std::size_t max_waiting_calls = 64;

class Manager final : public EventSink {
public:
    Manager(sd_bus* bus, ManagerContext context);
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;
    ~Manager(); // unanswered ListPendingTasks calls are dropped: the caller sees the service go

    // Registers the objects on the bus. Call before requesting the bus name, so that no call
    // arrives before they exist.
    Result<void> attach();
    // Handles the calls that wait for an operation's work, until one starts blocking work
    // again: at the end of each (those of the adapter's calls and the service's own writes).
    void resume_waiting();

    // EventSink
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

    // livepatchd stops: the calls that wait for an operation to end are answered with an error
    // (nothing of theirs was done), before the operation under way is finished.
    void refuse_waiting();

    // lpshim.ko's version changed (it was loaded or unloaded): PropertiesChanged of ShimVersion.
    void shim_version_changed();

    // The service's last TransitionStatus; before its first, what sysfs shows, with the pending
    // tasks counted from lpshim's list only when count_pending.
    TransitionStatus transition(bool count_pending = false) const;
    const PolkitAuthorizer& authorizer() const { return authorizer_; }
    // Times the store and kernel were read for a status (for the bus tests).
    std::uint64_t status_reads() const { return status_reads_; }
    // Calls waiting for an operation's blocking work to end (for the bus tests).
    std::size_t waiting_calls() const { return waiting_.size(); }

private:
    friend struct ManagerVtable;

    // Method bodies; the vtable's noexcept trampolines call them.
    int install(sd_bus_message* call, sd_bus_error* error);
    int apply(sd_bus_message* call, sd_bus_error* error);
    int revert(sd_bus_message* call, sd_bus_error* error);
    int remove(sd_bus_message* call, sd_bus_error* error);
    int list_patches(sd_bus_message* call, sd_bus_error* error);
    int list_pending_tasks(sd_bus_message* call, sd_bus_error* error);
    int get_task_stacks(sd_bus_message* call, sd_bus_error* error);
    int kick(sd_bus_message* call, sd_bus_error* error);
    int force(sd_bus_message* call, sd_bus_error* error);

    // A call that changes patches while an operation's blocking work runs waits its turn
    // (PatchOperations::busy()): in the order they came, each is handled, from its start, once
    // the work before it has ended. 0: go on; 1: the call waits (the handler returns 1);
    // < 0: refused (too many wait). Called before the checks (root's calls wait there) and
    // after polkit allowed the call (authorized: everyone else's).
    using Body = int (Manager::*)(sd_bus_message*, sd_bus_error*);
    int wait_if_busy(sd_bus_message* call, Body body, bool authorized, sd_bus_error* error);
    // polkit, then the turn: 1 act now; 0 asked polkit, or waits (the handler returns 1);
    // < 0 refused.
    int allowed_now(sd_bus_message* call, std::string_view verb,
                    const std::map<std::string, std::string>& details, Body body,
                    sd_bus_error* error);
    struct WaitingCall {
        MessagePtr call;
        Body body;
    };
    std::deque<WaitingCall> waiting_;
    bool is_waiting(sd_bus_message* call) const;
    // Replies to a call answered once its operation has ended.
    void answer(sd_bus_message* call, const OpResult<void>& done);
    // What an operation that ends later calls with its outcome: answers call (kept until
    // then), and handles the calls that waited for it.
    std::function<void(OpResult<void>)> answer_later(sd_bus_message* call);

    int manager_property(const char* property, sd_bus_message* reply, sd_bus_error* error);
    int patch_property(const char* path, const char* property, sd_bus_message* reply,
                       sd_bus_error* error);
    int find_patch(const char* path, sd_bus_error* error);
    int enumerate_patches(char*** nodes, sd_bus_error* error);

    // All patches (store and kernel), computed once per incoming message, or once for all a
    // patch_changed() or patch_added() sends while pinned_.
    Result<std::vector<PatchStatus>> statuses();
    Result<std::optional<PatchStatus>> status_of(std::string_view name);
    void invalidate() { cache_.reset(); }

    sd_bus* bus_;
    ManagerContext context_;
    PolkitAuthorizer authorizer_;
    std::optional<TransitionStatus> watched_transition_;
    struct Snapshot {
        MessagePtr message; // a reference: its address cannot be another message's meanwhile
        std::vector<PatchStatus> statuses;
    };
    std::optional<Snapshot> cache_;
    // While patch_changed() or patch_added() sends its signals: the snapshot it read serves
    // every getter, also when no message is being handled (a tick, lpshim's events, the boot
    // apply queue, an operation's end); dropped afterwards, so that nothing later sees it once
    // something else has changed.
    bool pinned_ = false;
    class PinnedSnapshot {
    public:
        explicit PinnedSnapshot(Manager& manager);
        PinnedSnapshot(const PinnedSnapshot&) = delete;
        PinnedSnapshot& operator=(const PinnedSnapshot&) = delete;
        ~PinnedSnapshot();

    private:
        Manager& manager_;
    };
    std::uint64_t status_reads_ = 0;
    std::vector<SlotPtr> slots_;

    // The signals and the operations' replies, in the order of their events: while a
    // PatchStateChanged waits for its read of the patches (ManagerContext::read_patches),
    // every signal and reply after it waits behind it, so that a client that sees
    // TransitionStarted or TransitionFinished has seen the state it follows.
    struct Outgoing {
        std::function<void()> emit;
        bool ready = true; // false: its read of the patches is under way
    };
    std::deque<std::shared_ptr<Outgoing>> outbox_;
    // Sends now, or behind what waits.
    void send(std::function<void()> emit);
    // Sends, from the front, every signal and reply no longer waiting for a read.
    void send_ready();
    // PropertiesChanged and PatchStateChanged of name from the patches read (read_usec: how
    // long that took on the loop, 0 off it).
    void announce_state(std::string_view name, const Result<PatchReads>& read,
                        std::uint64_t read_usec);
    // False once the Manager is gone: a read's end that comes later does nothing.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

    // A ListPendingTasks reply being built: each turn of the loop appends a slice of the tasks
    // (their facts are read then), so that thousands of them never keep the loop, and what
    // waits on it (a hold's SIGCONT, other calls, the watchdog), for long.
    struct PendingListing {
        Manager* manager;
        MessagePtr call;
        MessagePtr reply;
        std::vector<PendingTask> tasks;
        std::size_t next = 0;
        std::map<std::uint32_t, std::vector<std::string>> stacks;
        TaskFactsLook facts; // the tasks' /proc and sd-login facts, read slice by slice
        sd_event_source* source = nullptr; // owned; the defer source that builds it
    };
    std::list<PendingListing> listings_;
    std::size_t stack_calls_ = 0; // GetTaskStacks calls waiting for their walk
    static int on_listing_turn(sd_event_source* source, void* userdata) noexcept;
    // The tasks are listed: the reply is built from the next turn on.
    void begin_listing(PendingListing& listing, Result<std::vector<PendingTask>> tasks,
                       std::map<std::uint32_t, std::vector<std::string>> stacks);
    // Appends a slice (all of it: everything); false once the reply is sent or failed.
    bool continue_listing(PendingListing& listing, bool everything);
    void end_listing(PendingListing& listing);
};

} // namespace livepatchd::dbus
