// SPDX-License-Identifier: GPL-2.0-only
#include "task_signaller.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "atomic_file.hpp"
#include "task_facts.hpp"

namespace livepatchd {

namespace {

constexpr const char* journal_name = "stopped.json";
constexpr std::size_t journal_max_size = 1 << 20;

std::string errno_text(int errnum)
{
    return std::strerror(errnum);
}

// glibc 2.36's <sys/pidfd.h> declares these without C linkage; the system calls are simple.
int pidfd_open(pid_t pid, unsigned flags)
{
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned flags)
{
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

} // namespace

Result<TaskSignaller> TaskSignaller::open(const std::filesystem::path& state_directory,
                                          std::filesystem::path proc)
{
    UniqueFd dir(::open(state_directory.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!dir)
        return Error{errno, state_directory.string() + ": " + errno_text(errno)};
    TaskSignaller signaller(state_directory, std::move(dir), std::move(proc));
    auto text = read_file_at(signaller.directory_fd_.get(), state_directory.string(),
                             journal_name, journal_max_size);
    if (!text) {
        if (text.error().errnum != ENOENT)
            return text.error();
        return signaller;
    }
    try {
        // Named: a range-for over a member of a temporary would outlive the temporary.
        const nlohmann::json document = nlohmann::json::parse(*text);
        for (const auto& entry : document.at("stopped"))
            signaller.stopped_[entry.at("pid").get<pid_t>()] =
                entry.at("start_time").get<std::uint64_t>();
    } catch (const nlohmann::json::exception& e) {
        // Damaged: nobody can be continued from it. Say so rather than guess.
        return Error{EBADMSG, (state_directory / journal_name).string() +
                                  " is damaged (" + e.what() +
                                  "); check for stopped processes with: ps -eo pid,stat,comm | "
                                  "awk '$2 ~ /^T/'"};
    }
    return signaller;
}

TaskSignaller::TaskSignaller(std::filesystem::path directory, UniqueFd directory_fd,
                             std::filesystem::path proc)
    : directory_(std::move(directory)), directory_fd_(std::move(directory_fd)),
      proc_(std::move(proc))
{
}

Result<void> TaskSignaller::save() const
{
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [pid, start] : stopped_)
        list.push_back({{"pid", pid}, {"start_time", start}});
    return write_file_atomically(directory_fd_.get(), directory_.string(), journal_name,
                                 nlohmann::json{{"stopped", list}}.dump() + "\n", 0600);
}

Result<std::uint64_t> TaskSignaller::start_time_of(pid_t pid) const
{
    std::ifstream in(proc_ / std::to_string(pid) / "stat");
    std::ostringstream text;
    if (!(text << in.rdbuf()))
        return Error{ESRCH, "process " + std::to_string(pid) + " has exited"};
    const auto stat = parse_proc_stat(text.str());
    if (!stat)
        return Error{EBADMSG, "cannot parse /proc/" + std::to_string(pid) + "/stat"};
    return stat->start_time;
}

Result<std::vector<pid_t>> TaskSignaller::recover()
{
    std::vector<pid_t> continued;
    for (const auto& [pid, start] : stopped_) {
        UniqueFd pidfd(pidfd_open(pid, 0));
        if (!pidfd)
            continue; // gone
        const auto now = start_time_of(pid);
        if (!now || *now != start)
            continue; // another process has that pid now
        if (pidfd_send_signal(pidfd.get(), SIGCONT, nullptr, 0) == 0)
            continued.push_back(pid);
    }
    stopped_.clear();
    pidfds_.clear();
    if (auto saved = save(); !saved)
        return saved.error();
    return continued;
}

Result<void> TaskSignaller::stop(pid_t pid, std::uint64_t start_time)
{
    if (pid <= 1)
        return Error{EPERM, "refusing to stop pid " + std::to_string(pid)};
    UniqueFd pidfd(pidfd_open(pid, 0));
    if (!pidfd)
        return Error{errno, "process " + std::to_string(pid) + ": " + errno_text(errno)};
    // The pidfd names the process that had pid when it was opened: if that one started when
    // the caller saw it start, it is the process the caller means.
    const auto now = start_time_of(pid);
    if (!now)
        return now.error();
    if (*now != start_time)
        return Error{ESRCH, "process " + std::to_string(pid) + " has exited (its pid is reused)"};
    stopped_[pid] = start_time;
    if (auto saved = save(); !saved) {
        stopped_.erase(pid);
        return saved.error();
    }
    if (pidfd_send_signal(pidfd.get(), SIGSTOP, nullptr, 0) < 0) {
        const int errnum = errno;
        stopped_.erase(pid);
        (void)save();
        return Error{errnum, "SIGSTOP to process " + std::to_string(pid) + " failed: " +
                                 errno_text(errnum)};
    }
    pidfds_[pid] = std::move(pidfd);
    return {};
}

Result<void> TaskSignaller::resume(pid_t pid)
{
    const auto it = pidfds_.find(pid);
    if (it == pidfds_.end())
        return Error{ENOENT, "process " + std::to_string(pid) + " was not stopped by livepatchd"};
    const int r = pidfd_send_signal(it->second.get(), SIGCONT, nullptr, 0);
    const int errnum = errno;
    pidfds_.erase(it);
    stopped_.erase(pid);
    (void)save();
    if (r < 0 && errnum != ESRCH)
        return Error{errnum, "SIGCONT to process " + std::to_string(pid) + " failed: " +
                                 errno_text(errnum)};
    return {};
}

} // namespace livepatchd
