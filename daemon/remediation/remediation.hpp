// SPDX-License-Identifier: GPL-2.0-only
//
// The remediation ladder (docs/remediation.md): what livepatchd does about the tasks that keep a
// transition open, decided from the configuration, the time since the transition started and
// what is known about each pending task. Pure: RemediationPolicy decides, the Service acts
// (PatchControl::kick, TaskSignaller) and reports.
//
//   rung 1  grace:          nothing before remediation.grace_ms;
//   rung 2  kick:           then every kick.interval_ms, lpshim's kick of the pending tasks;
//   rung 3  stop/continue:  from stop_continue.after_ms (never inside the grace), SIGSTOP and,
//                           hold_ms later, SIGCONT to each user process with a task asleep in a
//                           patched function, once per process and transition, if it may be
//                           signalled at all (may_stop).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "kernel/patch_control.hpp"

namespace livepatchd {

enum class TaskKind { user, kthread, idle };
std::string_view to_string(TaskKind kind);

// A pending task as lpshim lists it, with what /proc says about it.
struct TaskFacts {
    PendingTask task;
    TaskKind kind = TaskKind::user;
    char state = '?';              // /proc/<tid>/stat: R, S, D, T (stopped), t (traced), ...
    bool traced = false;           // TracerPid != 0
    // /proc/<tgid>/task/<tid>/stat field 22: the *thread's* start time, which tells a reused
    // tid apart (TaskSignaller::stop compares it with the same thread's, never the leader's).
    std::uint64_t start_time = 0;
    // The systemd units it runs in, outermost first: the slices (system.slice, ...), its
    // unit, and its user unit when it has one (sd_pid_get_slice/unit/user_unit).
    std::vector<std::string> units;
    // Real and effective uid of the process (/proc/<tid>/status); unset when not known.
    std::optional<std::uint32_t> uid;
    std::optional<std::uint32_t> euid;
    // In a pid namespace other than livepatchd's (a container).
    bool other_pid_namespace = false;

    bool operator==(const TaskFacts&) const = default;
};

// What ListPendingTasks and `livepatchctl blocking` report about a task that keeps the
// transition open.
struct BlockingTask {
    TaskFacts facts;
    std::uint64_t blocked_usec = 0;   // since livepatchd first saw it pending in this transition
    std::vector<std::string> actions; // what livepatchd did or decided, oldest first
    std::vector<std::string> stack;   // kernel frames, innermost first, for people only

    bool operator==(const BlockingTask&) const = default;
};

// The processes livepatchd never stops whatever the configuration says, because its own event
// loop (which holds the SIGCONT timer) waits on them, or the system cannot do without them for
// a moment: the journal, the bus, polkit, logind. By unit and by command name.
std::span<const std::string_view> never_stopped_units();
std::span<const std::string_view> never_stopped_commands();

// Whether livepatchd may SIGSTOP the process of this task: nullopt if it may, otherwise why
// not, in words for the journal. self is livepatchd's pid.
std::optional<std::string> why_not_stop(const TaskFacts& facts, const StopContinueConfig& config,
                                        pid_t self);

// What to do about a transition that ran past transition.stall_timeout_ms, going to target
// (the direction it goes now): the configured transition.on_stall, with these exceptions.
// A transition to patched is never reverted while a
// task that an unprivileged user may have put there blocks it, so that no user can take a
// (security) patch out by parking a task in a patched function:
//  - a task of a process whose real or effective uid is not 0, or not known;
//  - a task in uninterruptible sleep (D), whoever owns it: a root process can be held in D by
//    a user's FUSE file system.
// Nor, in either direction, when no task blocks it any more (the last one left between two of
// lpshim's passes), nor
// while a blocker is exiting (a zombie, or gone from /proc before the kernel's next pass
// has let go of it): its leaving may be what completes the transition, and reverting on a
// stale view would undo a patch with nothing left to block it.
// It waits instead (action wait) and says why; the decision is made again at every look, so
// the revert happens once only root's interruptible tasks and kernel threads are left.
// force stays force: the admin chose to break the consistency model for every task.
struct StallDecision {
    StallAction action = StallAction::wait;
    std::string reason; // why not the configured action; "" when it is that
    bool operator==(const StallDecision&) const = default;
};
StallDecision decide_stall(StallAction configured, std::string_view target,
                           const std::vector<const TaskFacts*>& blockers);
StallDecision decide_stall(StallAction configured, std::string_view target,
                           const std::vector<TaskFacts>& blockers);

enum class RemedyKind { kick, stop_continue };
std::string_view to_string(RemedyKind kind);

struct Remedy {
    RemedyKind kind;
    TaskFacts target; // stop_continue: the task whose process is stopped; kick: unused
    bool operator==(const Remedy&) const = default;
};

// The tasks whose kernel stacks one round of decide() logs: those whose process it stops and
// those it refuses to stop (reported once each). Stacks are walked once per round for these
// only, never per stopped process nor for every pending task: at thousands of pending tasks a
// walk of all of them takes seconds, during which no hold's SIGCONT can fire.
std::set<std::uint32_t> tasks_to_show(
    const std::vector<Remedy>& remedies,
    const std::vector<std::pair<std::uint32_t, std::string>>& refused);

class RemediationPolicy {
public:
    explicit RemediationPolicy(RemediationConfig config, pid_t self);

    // A new transition: forget what was done in the last one.
    void reset();

    // Whether decide() at this time looks at more than the task list: the stop rung reads each
    // task's TaskFacts; before it, and for processes already stopped, /proc need not be read.
    bool needs_facts(std::chrono::milliseconds elapsed) const;
    bool already_stopped(const PendingTask& task) const; // its process, in this transition

    // What to do now, elapsed after the transition started, about `pending` pending tasks, of
    // which the stop rung looks at those in `facts` (read from /proc, or not all yet: see
    // needs_facts; a task of a process stopped already need not be there). Tasks that may not
    // be stopped are reported once each through `refused` (tid, why).
    std::vector<Remedy> decide(std::chrono::milliseconds elapsed, std::size_t pending,
                               const std::vector<TaskFacts>& facts,
                               std::vector<std::pair<std::uint32_t, std::string>>* refused);
    // Every pending task with its facts.
    std::vector<Remedy> decide(std::chrono::milliseconds elapsed,
                               const std::vector<TaskFacts>& pending,
                               std::vector<std::pair<std::uint32_t, std::string>>* refused)
    {
        return decide(elapsed, pending.size(), pending, refused);
    }

private:
    RemediationConfig config_;
    pid_t self_;
    std::optional<std::chrono::milliseconds> last_kick_;
    std::set<std::uint32_t> stopped_;  // tgids stopped in this transition
    std::set<std::uint32_t> refused_;  // tids already reported as not to be stopped
};

} // namespace livepatchd
