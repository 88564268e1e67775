// SPDX-License-Identifier: GPL-2.0-only
#include "remediation/remediation.hpp"

#include <algorithm>

namespace livepatchd {

std::string_view to_string(TaskKind kind)
{
    switch (kind) {
    case TaskKind::user: return "user";
    case TaskKind::kthread: return "kthread";
    case TaskKind::idle: return "idle";
    }
    return "user";
}

std::string_view to_string(RemedyKind kind)
{
    switch (kind) {
    case RemedyKind::kick: return "kick";
    case RemedyKind::stop_continue: return "stop-continue";
    }
    return "kick";
}

std::set<std::uint32_t> tasks_to_show(
    const std::vector<Remedy>& remedies,
    const std::vector<std::pair<std::uint32_t, std::string>>& refused)
{
    std::set<std::uint32_t> tids;
    for (const Remedy& remedy : remedies)
        if (remedy.kind == RemedyKind::stop_continue)
            tids.insert(remedy.target.task.tid);
    for (const auto& [tid, why] : refused)
        tids.insert(tid);
    return tids;
}

std::span<const std::string_view> never_stopped_units()
{
    static constexpr std::string_view units[] = {
        "init.scope",          "systemd-journald.service", "dbus.service",
        "dbus-broker.service", "polkit.service",           "systemd-logind.service",
        "livepatchd.service",
    };
    return units;
}

std::span<const std::string_view> never_stopped_commands()
{
    // comm as the kernel keeps it: at most 15 bytes ("systemd-journald" is "systemd-journal").
    static constexpr std::string_view commands[] = {
        "systemd",       "systemd-journal", "dbus-daemon",    "dbus-broker",
        "dbus-broker-lau", "polkitd",       "systemd-logind", "livepatchd",
    };
    return commands;
}

std::optional<std::string> why_not_stop(const TaskFacts& facts, const StopContinueConfig& config,
                                        pid_t self)
{
    const PendingTask& t = facts.task;
    if (facts.kind != TaskKind::user)
        return "it is a kernel thread; signals do not move it";
    if (t.tgid == 1)
        return "it is PID 1";
    if (static_cast<pid_t>(t.tgid) == self)
        return "it is livepatchd itself";
    if (facts.state == 'T' || facts.state == 't')
        return "it is stopped already; livepatchd never continues a process it did not stop";
    if (facts.traced)
        return "it is being traced";
    if (facts.state == 'D')
        return "it is in uninterruptible sleep; a signal does not wake it";
    if (t.reason != "sleeping-in-function")
        return "it is not asleep in a patched function (" + t.reason + ")";
    if (facts.other_pid_namespace && !config.other_pid_namespaces)
        return "it is in another pid namespace (a container); "
               "stop_continue.other_pid_namespaces is false";
    for (const std::string& unit : facts.units)
        for (std::string_view never : never_stopped_units())
            if (unit == never)
                return "its unit " + unit + " is one livepatchd never stops";
    for (std::string_view never : never_stopped_commands())
        if (t.comm == never)
            return "its command " + t.comm + " is one livepatchd never stops";
    for (const std::string& unit : facts.units)
        if (std::find(config.exclude_units.begin(), config.exclude_units.end(), unit) !=
            config.exclude_units.end())
            return "its unit " + unit + " is in stop_continue.exclude_units";
    for (const std::string& entry : config.exclude_commands)
        if (command_matches(t.comm, entry))
            return "its command " + t.comm + " is in stop_continue.exclude_commands";
    return std::nullopt;
}

StallDecision decide_stall(StallAction configured, std::string_view target,
                           const std::vector<TaskFacts>& blockers)
{
    std::vector<const TaskFacts*> each;
    each.reserve(blockers.size());
    for (const TaskFacts& f : blockers)
        each.push_back(&f);
    return decide_stall(configured, target, each);
}

StallDecision decide_stall(StallAction configured, std::string_view target,
                           const std::vector<const TaskFacts*>& blockers)
{
    if (configured != StallAction::revert)
        return {configured, {}};
    // The last blocker left between lpshim's passes (it exited: BPF saw it go before lpshim's
    // next pass let go of the transition): nothing to revert for.
    if (blockers.empty())
        return {StallAction::wait,
                "no task blocks it any more; it completes at lpshim's next pass: looking again"};
    for (const TaskFacts* f : blockers)
        if (f->state == 'Z' || f->state == 'X')
            return {StallAction::wait,
                    "task " + std::to_string(f->task.tid) + " (" + f->task.comm +
                        ") is exiting; the transition may complete once it is gone: looking "
                        "again"};
    // Reversing an unpatching transition keeps the patch: whoever blocks it, that is safe.
    if (target != "patched")
        return {configured, {}};
    auto who = [](const TaskFacts& f) {
        return "task " + std::to_string(f.task.tid) + " (" + f.task.comm + ")";
    };
    for (const TaskFacts* b : blockers) {
        const TaskFacts& f = *b;
        if (f.state == 'D')
            return {StallAction::wait,
                    who(f) + " is in uninterruptible sleep, which an unprivileged user can cause; "
                          "a patch is never reverted for that: waiting (Revert or Force it "
                          "by hand)"};
        if (f.kind != TaskKind::user)
            continue;
        if (!f.uid || !f.euid || *f.uid != 0 || *f.euid != 0)
            return {StallAction::wait,
                    who(f) + " belongs to " +
                        (f.uid ? "uid " + std::to_string(*f.uid) : std::string("an unknown user")) +
                        "; a patch is never reverted because of an unprivileged user's task: "
                        "waiting (Revert or Force it by hand)"};
    }
    return {configured, {}};
}

RemediationPolicy::RemediationPolicy(RemediationConfig config, pid_t self)
    : config_(std::move(config)), self_(self)
{
}

void RemediationPolicy::reset()
{
    last_kick_.reset();
    stopped_.clear();
    refused_.clear();
}

bool RemediationPolicy::needs_facts(std::chrono::milliseconds elapsed) const
{
    return config_.enabled && config_.stop_continue.enabled && elapsed >= config_.grace_ms &&
           elapsed >= config_.stop_continue.after_ms;
}

bool RemediationPolicy::already_stopped(const PendingTask& task) const
{
    return stopped_.contains(task.tgid);
}

std::vector<Remedy> RemediationPolicy::decide(
    std::chrono::milliseconds elapsed, std::size_t pending, const std::vector<TaskFacts>& facts,
    std::vector<std::pair<std::uint32_t, std::string>>* refused)
{
    std::vector<Remedy> remedies;
    if (!config_.enabled || pending == 0 || elapsed < config_.grace_ms)
        return remedies;

    if (config_.kick.enabled &&
        (!last_kick_ || elapsed - *last_kick_ >= config_.kick.interval_ms)) {
        last_kick_ = elapsed;
        remedies.push_back({RemedyKind::kick, {}});
    }

    const StopContinueConfig& sc = config_.stop_continue;
    if (!sc.enabled || elapsed < sc.after_ms)
        return remedies;
    for (const TaskFacts& f : facts) {
        if (already_stopped(f.task))
            continue;
        if (auto why = why_not_stop(f, sc, self_)) {
            if (refused && refused_.insert(f.task.tid).second)
                refused->emplace_back(f.task.tid, *why);
            continue;
        }
        stopped_.insert(f.task.tgid);
        remedies.push_back({RemedyKind::stop_continue, f});
    }
    return remedies;
}

} // namespace livepatchd
