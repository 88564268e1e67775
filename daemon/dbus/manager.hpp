// SPDX-License-Identifier: GPL-2.0-only
//
// Manager: livepatchd on the bus (org.livepatchd.LivePatch1, docs/dbus-api.md).
//  - /org/livepatchd/LivePatch1: org.livepatchd.LivePatch1.Manager and the
//    org.freedesktop.DBus.ObjectManager of the patch objects;
//  - /org/livepatchd/LivePatch1/patch/<escaped name>: org.livepatchd.LivePatch1.Patch, one per
//    patch in the store or in the kernel (a fallback vtable with an enumerator: the objects are
//    computed on demand, never kept in step by hand).
// Every mutating method runs: parse -> validate -> authorize (PolkitAuthorizer) -> act ->
// emit -> reply. Validation reads the state of the moment; since polkit's answer re-dispatches
// the call, it runs again after authorization, against the state of that moment.
//
// The Manager owns nothing but its bus slots: the store, the desired state, the kernel view
// and the kernel actions are the daemon's, passed in.
#pragma once

#include <systemd/sd-bus.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bus_ptr.hpp"
#include "desired_state.hpp"
#include "kernel_view.hpp"
#include "patch_control.hpp"
#include "patch_store.hpp"
#include "polkit.hpp"
#include "remediation.hpp"
#include "result.hpp"
#include "status.hpp"

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
    PatchStore& store;
    const DesiredStateFile& desired_file;
    DesiredState& desired; // kept equal to what desired_file holds
    const KernelView& kernel;
    PatchControl& control;
    std::string kernel_release;
    std::string boot_id;
    std::function<std::uint64_t()> clock = realtime_usec;
    // Called after an action started a transition (Apply: "patched", Revert: "unpatched"; the
    // kernel may have completed it already): the transition watcher reports it even then.
    std::function<void(std::string_view patch, std::string_view target)> transition_started =
        [](std::string_view, std::string_view) {};
    // ListPendingTasks: the service's view (facts, time blocked, actions). Unset: lpshim's list
    // as it is.
    std::function<Result<std::vector<BlockingTask>>()> blocking_tasks = nullptr;
};

class Manager {
public:
    Manager(sd_bus* bus, ManagerContext context);
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    // Registers the objects on the bus. Call before requesting the bus name, so that no call
    // arrives before they exist.
    Result<void> attach();

    // For the transition watcher: from the first call on, the transition properties report
    // what it says instead of what sysfs shows. Emits PropertiesChanged.
    void set_transition(const TransitionStatus& status);
    TransitionStatus transition() const;

    // For the reconciler's caller: why each wanted patch was not applied (Patch.SkipReason).
    void set_skip_reasons(std::map<std::string, std::string, std::less<>> reasons);

    void emit_transition_started(std::string_view patch, std::string_view target);
    void emit_transition_finished(std::string_view patch, std::string_view target,
                                  std::string_view outcome, std::uint64_t duration_usec);
    // For the remediation ladder: a task that blocks the transition (note: what livepatchd
    // will or will not do about it), an action taken on one, a stall and its outcome.
    void emit_task_blocked(const PendingTask& task, std::string_view kind, std::string_view note);
    void emit_task_remediated(const PendingTask& task, std::string_view action);
    void emit_transition_stalled(std::string_view patch, std::string_view action,
                                 std::uint64_t elapsed_usec);
    // PatchStateChanged and the patch object's PropertiesChanged.
    void emit_patch_changed(std::string_view name);

    const PolkitAuthorizer& authorizer() const { return authorizer_; }

private:
    friend struct ManagerVtable;

    // Method bodies; the vtable's noexcept trampolines call them.
    int install(sd_bus_message* call, sd_bus_error* error);
    int apply(sd_bus_message* call, sd_bus_error* error);
    int revert(sd_bus_message* call, sd_bus_error* error);
    int remove(sd_bus_message* call, sd_bus_error* error);
    int list_patches(sd_bus_message* call, sd_bus_error* error);
    int list_pending_tasks(sd_bus_message* call, sd_bus_error* error);
    int kick(sd_bus_message* call, sd_bus_error* error);
    int force(sd_bus_message* call, sd_bus_error* error);

    int manager_property(const char* property, sd_bus_message* reply, sd_bus_error* error);
    int patch_property(const char* path, const char* property, sd_bus_message* reply,
                       sd_bus_error* error);
    int find_patch(const char* path, sd_bus_error* error);
    int enumerate_patches(char*** nodes, sd_bus_error* error);

    // All patches (store and kernel), or an error for the caller.
    Result<std::vector<PatchStatus>> statuses() const;
    Result<std::optional<PatchStatus>> status_of(std::string_view name) const;
    // The desired state changed in memory: write it, or put back `before` and fail.
    Result<void> save_desired(const DesiredState& before);

    sd_bus* bus_;
    ManagerContext context_;
    PolkitAuthorizer authorizer_;
    std::map<std::string, std::string, std::less<>> skip_reasons_;
    std::set<std::string, std::less<>> forced_;
    std::optional<TransitionStatus> watched_transition_;
    std::vector<SlotPtr> slots_;
};

} // namespace livepatchd::dbus
