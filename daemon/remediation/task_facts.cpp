// SPDX-License-Identifier: GPL-2.0-only
#include "task_facts.hpp"

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

namespace livepatchd {

namespace {

constexpr unsigned long pf_kthread = 0x00200000; // PF_KTHREAD, include/linux/sched.h

std::optional<std::string> read_small_file(const std::filesystem::path& path)
{
    std::ifstream in(path);
    if (!in)
        return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

template <typename T>
bool parse_number(std::string_view text, T& value)
{
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size();
}

bool is_unit_name(std::string_view name)
{
    for (std::string_view suffix : {".service", ".scope", ".slice", ".socket", ".mount", ".swap"})
        if (name.size() > suffix.size() && name.ends_with(suffix))
            return true;
    return false;
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
    ProcStat stat;
    if (fields.size() < 20 || fields[0].size() != 1 || !parse_number(fields[6], stat.flags) ||
        !parse_number(fields[19], stat.start_time))
        return std::nullopt;
    stat.state = fields[0][0];
    return stat;
}

std::vector<std::string> parse_cgroup_units(std::string_view text)
{
    std::vector<std::string> units;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("0::/"))
            continue;
        std::string_view path = std::string_view(line).substr(4);
        while (!path.empty()) {
            const auto slash = path.find('/');
            const std::string_view component = path.substr(0, slash);
            if (is_unit_name(component))
                units.emplace_back(component);
            path.remove_prefix(slash == std::string_view::npos ? path.size() : slash + 1);
        }
    }
    return units;
}

Result<TaskFacts> read_task_facts(const PendingTask& task, const std::filesystem::path& proc)
{
    TaskFacts facts;
    facts.task = task;
    if (task.tid == 0) {
        facts.kind = TaskKind::idle;
        return facts;
    }
    const std::filesystem::path dir =
        proc / std::to_string(task.tgid) / "task" / std::to_string(task.tid);
    const auto stat_text = read_small_file(dir / "stat");
    if (!stat_text)
        return Error{ESRCH, "task " + std::to_string(task.tid) + " has exited"};
    const auto stat = parse_proc_stat(*stat_text);
    if (!stat)
        return Error{EBADMSG, "cannot parse " + (dir / "stat").string()};
    facts.state = stat->state;
    facts.start_time = stat->start_time;
    facts.kind = (stat->flags & pf_kthread) ? TaskKind::kthread : TaskKind::user;
    if (const auto status = read_small_file(dir / "status")) {
        const auto at = status->find("\nTracerPid:");
        if (at != std::string::npos) {
            std::istringstream value(status->substr(at + 11));
            long tracer = 0;
            value >> tracer;
            facts.traced = tracer != 0;
        }
    }
    if (const auto cgroup = read_small_file(dir / "cgroup"))
        facts.units = parse_cgroup_units(*cgroup);
    return facts;
}

} // namespace livepatchd
