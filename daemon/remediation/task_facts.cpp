// SPDX-License-Identifier: GPL-2.0-only
#include "remediation/task_facts.hpp"

#include <systemd/sd-login.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "common/c_string.hpp"
#include "common/clock.hpp"
#include "common/decimal.hpp"
#include "common/small_file.hpp"

namespace livepatchd {

namespace {

constexpr unsigned long pf_kthread = 0x00200000; // PF_KTHREAD, include/linux/sched.h

std::optional<std::string> take(int r, char* value)
{
    CString owned(value);
    if (r < 0 || !value)
        return std::nullopt;
    return std::string(value);
}

} // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text)
{
    const auto close = text.rfind(')');
    if (close == std::string_view::npos)
        return std::nullopt;
    std::string_view rest = text.substr(close + 1);
    std::vector<std::string_view> fields;
    while (!rest.empty()) {
        while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n'))
            rest.remove_prefix(1);
        const auto end = rest.find_first_of(" \n");
        if (!rest.empty())
            fields.push_back(rest.substr(0, end));
        rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    }
    // fields[0] is field 3 (state); flags is field 9, starttime field 22.
    if (fields.size() < 20 || fields[0].size() != 1)
        return std::nullopt;
    ProcStat stat;
    const auto flags = parse_decimal<decltype(stat.flags)>(fields[6]);
    const auto start_time = parse_decimal<decltype(stat.start_time)>(fields[19]);
    if (!flags || !start_time)
        return std::nullopt;
    stat.state = fields[0][0];
    stat.flags = *flags;
    stat.start_time = *start_time;
    return stat;
}

std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_status_uids(std::string_view text)
{
    const auto at = text.find("\nUid:");
    if (at == std::string_view::npos)
        return std::nullopt;
    std::string_view line = text.substr(at + 5);
    line = line.substr(0, line.find('\n'));
    std::uint32_t ids[2] = {};
    for (std::uint32_t& id : ids) {
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string_view::npos)
            return std::nullopt;
        line.remove_prefix(start);
        const auto end = std::min(line.find_first_of(" \t"), line.size());
        const auto number = parse_decimal<std::uint32_t>(line.substr(0, end));
        if (!number)
            return std::nullopt;
        id = *number;
        line.remove_prefix(end);
    }
    return std::pair{ids[0], ids[1]};
}

std::optional<std::uint32_t> parse_tracer_pid(std::string_view text)
{
    const auto at = text.find("\nTracerPid:");
    if (at == std::string_view::npos)
        return std::nullopt;
    std::string_view value = text.substr(at + 11);
    value = value.substr(0, value.find('\n'));
    value.remove_prefix(std::min(value.find_first_not_of(" \t"), value.size()));
    return parse_decimal<std::uint32_t>(value);
}

std::optional<unsigned> parse_nspid_depth(std::string_view text)
{
    const auto at = text.find("\nNSpid:");
    if (at == std::string_view::npos)
        return std::nullopt;
    std::string_view line = text.substr(at + 7);
    line = line.substr(0, line.find('\n'));
    unsigned depth = 0;
    for (bool in_number = false; char c : line) {
        const bool digit = c >= '0' && c <= '9';
        if (digit && !in_number)
            ++depth;
        in_number = digit;
    }
    return depth ? std::optional<unsigned>(depth) : std::nullopt;
}

std::vector<std::string> slice_chain(std::string_view innermost)
{
    // systemd names a slice after its place in the tree: a-b-c.slice is in a-b.slice, which is
    // in a.slice (systemd.slice(5)); -.slice is the root and is not named.
    std::vector<std::string> chain;
    constexpr std::string_view suffix = ".slice";
    if (!innermost.ends_with(suffix) || innermost == "-.slice")
        return chain;
    const std::string_view stem = innermost.substr(0, innermost.size() - suffix.size());
    for (std::size_t dash = stem.find('-'); dash != std::string_view::npos;
         dash = stem.find('-', dash + 1))
        chain.push_back(std::string(stem.substr(0, dash)) + std::string(suffix));
    chain.emplace_back(innermost);
    return chain;
}

namespace {

// This process's depth in the pid namespaces, which never changes: read once per proc root
// (a look at thousands of tasks read it once per task). A failed read is not kept. Looks run
// on the loop and on the stall's reader thread.
std::optional<unsigned> own_nspid_depth(const std::filesystem::path& proc)
{
    static std::mutex mutex; // protects read_from and depth
    static std::filesystem::path read_from;
    static std::optional<unsigned> depth;
    std::lock_guard lock(mutex);
    if (!depth || read_from != proc) {
        const auto self = read_small_file(proc / "self" / "status");
        depth = self ? parse_nspid_depth(*self) : std::nullopt;
        read_from = proc;
    }
    return depth;
}

} // namespace

Result<TaskFacts> read_task_facts(const PendingTask& task, const std::filesystem::path& proc)
{
    TaskFactsLook look(TaskFactsLook::Units::read, proc);
    return look.read(task);
}

namespace {

// The units sd-login says the task is in, and whether each question was answered: a unit, or
// ENXIO/ENODATA (in no such unit). Not when the task went away meanwhile (ESRCH) or the read
// failed (out of memory or descriptors).
std::pair<std::vector<std::string>, bool> read_units(pid_t pid)
{
    std::vector<std::string> units;
    bool complete = true;
    // Each call before its take(): the order in which arguments are evaluated is not.
    const auto asked = [&complete](int r) {
        complete = complete && (r >= 0 || r == -ENXIO || r == -ENODATA);
        return r;
    };
    char* value = nullptr;
    int r = asked(sd_pid_get_slice(pid, &value));
    if (auto slice = take(r, value))
        units = slice_chain(*slice);
    value = nullptr;
    r = asked(sd_pid_get_unit(pid, &value));
    if (auto unit = take(r, value))
        units.push_back(std::move(*unit));
    value = nullptr;
    r = asked(sd_pid_get_user_unit(pid, &value));
    if (auto user_unit = take(r, value))
        units.push_back(std::move(*user_unit));
    return {std::move(units), complete};
}

// /proc/<pid>/stat's clock for start times: ticks of USER_HZ since boot.
std::uint64_t ticks_per_second()
{
    static const auto per_second = static_cast<std::uint64_t>(std::max(1L, sysconf(_SC_CLK_TCK)));
    return per_second;
}

std::uint64_t boot_ticks()
{
    return boottime_usec() / 1000 * ticks_per_second() / 1000;
}

} // namespace

TaskFactsLook::TaskFactsLook(Units units, std::filesystem::path proc)
    : read_units_(units == Units::read), proc_(std::move(proc))
{
}

Result<TaskFacts> TaskFactsLook::read(const PendingTask& task)
{
    TaskFacts facts;
    facts.task = task;
    if (task.tid == 0) {
        facts.kind = TaskKind::idle;
        return facts;
    }
    ++reads_;
    ReadTimes times;
    std::uint64_t mark = monotonic_usec();
    const auto lap = [&mark](std::uint64_t& part) {
        const std::uint64_t now = monotonic_usec();
        part = now - mark;
        mark = now;
    };
    const std::filesystem::path dir =
        proc_ / std::to_string(task.tgid) / "task" / std::to_string(task.tid);
    const auto stat_text = read_small_file(dir / "stat");
    lap(times.stat);
    if (times.total() > longest_.total())
        longest_ = times; // (a read that ends here, and again below with all its parts)
    if (!stat_text)
        return Error{ESRCH, "task " + std::to_string(task.tid) + " has exited"};
    const auto stat = parse_proc_stat(*stat_text);
    if (!stat)
        return Error{EBADMSG, "cannot parse " + (dir / "stat").string()};
    facts.state = stat->state;
    facts.start_time = stat->start_time;
    facts.kind = (stat->flags & pf_kthread) ? TaskKind::kthread : TaskKind::user;
    if (const auto status = read_small_file(dir / "status")) {
        if (const auto tracer = parse_tracer_pid(*status))
            facts.traced = *tracer != 0;
        if (const auto uids = parse_status_uids(*status)) {
            facts.uid = uids->first;
            facts.euid = uids->second;
        }
        // NSpid: its pid in each pid namespace from ours down to its own. More levels than
        // ours: a namespace below ours (a container). /proc/<pid>/ns/pid would need ptrace
        // access, which the service's reduced capabilities do not give over root processes.
        const auto depth = parse_nspid_depth(*status);
        const auto own = own_nspid_depth(proc_);
        if (depth && own)
            facts.other_pid_namespace = *depth > *own;
    }
    lap(times.status);
    if (read_units_ && facts.kind == TaskKind::user && proc_ == "/proc") {
        // A thread started before its process's units were read was in that process then;
        // a read is used for a second at most (a listing lasts longer: a process may move).
        const std::uint64_t now_ticks = boot_ticks();
        const auto known = units_.find(task.tgid);
        if (known != units_.end() && facts.start_time < known->second.read_ticks &&
            now_ticks - known->second.read_ticks < ticks_per_second()) {
            facts.units = known->second.units;
        } else {
            ++unit_reads_;
            auto [units, complete] = read_units(static_cast<pid_t>(task.tid));
            if (complete)
                units_[task.tgid] = ProcessUnits{units, now_ticks};
            facts.units = std::move(units);
        }
        lap(times.units);
    }
    if (times.total() > longest_.total())
        longest_ = times;
    return facts;
}

std::string TaskFactsLook::longest_read_parts() const
{
    return "stat " + std::to_string(longest_.stat) + " us, status " +
           std::to_string(longest_.status) + " us, units " + std::to_string(longest_.units) +
           " us";
}

} // namespace livepatchd
