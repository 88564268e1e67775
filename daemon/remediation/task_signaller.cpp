// SPDX-License-Identifier: GPL-2.0-only
#include "remediation/task_signaller.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "common/clock.hpp"
#include "common/decimal.hpp"
#include "common/small_file.hpp"
#include "remediation/task_facts.hpp"

namespace livepatchd {

namespace {

constexpr const char* records_directory = "stopped";
constexpr const char* legacy_file = "stopped.json";

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

std::optional<ProcStat> proc_stat(const std::filesystem::path& file)
{
    const auto text = read_small_file(file);
    if (!text)
        return std::nullopt;
    return parse_proc_stat(*text);
}

enum class Continued {
    sent,   // SIGCONT went to the process of record
    gone,   // it has exited, or another process has its pid: nothing left to undo
    failed, // it may still be there, stopped: keep the record for the next start
};

// SIGCONT to the process of record if it is still that process, whatever state its leader
// shows: a leader that is a zombie (its other threads are the ones stopped) or in D (the
// SIGSTOP still pending, to take effect when it wakes) shows no T, and SIGCONT also discards
// a pending SIGSTOP.
Continued continue_recorded(const StopRecord& record, const std::filesystem::path& proc)
{
    UniqueFd pidfd(pidfd_open(record.pid, 0));
    if (!pidfd)
        return errno == ESRCH ? Continued::gone : Continued::failed;
    const auto stat = proc_stat(proc / std::to_string(record.pid) / "stat");
    if (!stat)
        return Continued::failed;
    if (stat->start_time != record.start_time)
        return Continued::gone; // another process has that pid now
    if (pidfd_send_signal(pidfd.get(), SIGCONT, nullptr, 0) == 0)
        return Continued::sent;
    return errno == ESRCH ? Continued::gone : Continued::failed;
}

// The records of stopped.json as older livepatchd versions wrote it, read leniently: every
// {"pid": N, "start_time": M} that can be made out, even in a damaged file.
std::vector<StopRecord> legacy_records(std::string_view text, bool& damaged)
{
    std::vector<StopRecord> records;
    try {
        const nlohmann::json document = nlohmann::json::parse(text);
        for (const auto& entry : document.at("stopped"))
            records.push_back({entry.at("pid").get<pid_t>(),
                               entry.at("start_time").get<std::uint64_t>()});
        damaged = false;
        return records;
    } catch (const std::exception&) {
        damaged = true;
    }
    // A plain scan, not std::regex (whose recursion a long damaged file could exhaust): every
    // "pid": N followed by "start_time": M.
    const auto number_after = [&text](std::string_view key, std::size_t from, std::size_t& end,
                                      auto& value) {
        const std::size_t at = text.find(key, from);
        if (at == std::string_view::npos)
            return false;
        std::size_t i = at + key.size();
        while (i < text.size() && (text[i] == ' ' || text[i] == ':' || text[i] == '\n' ||
                                   text[i] == '\t'))
            ++i;
        const auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), value);
        end = static_cast<std::size_t>(ptr - text.data());
        return ec == std::errc() && end > i;
    };
    std::size_t from = 0;
    for (;;) {
        StopRecord r;
        std::size_t after_pid = 0, after_start = 0;
        if (!number_after("\"pid\"", from, after_pid, r.pid))
            break;
        from = after_pid;
        const std::size_t next_pid = text.find("\"pid\"", after_pid);
        if (number_after("\"start_time\"", after_pid, after_start, r.start_time) &&
            after_start <= next_pid && r.pid > 1) {
            records.push_back(r);
            from = after_start;
        }
    }
    return records;
}

} // namespace

std::string stop_record_name(const StopRecord& record)
{
    return std::to_string(record.pid) + "." + std::to_string(record.start_time);
}

std::optional<StopRecord> parse_stop_record_name(std::string_view name)
{
    const auto dot = name.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size())
        return std::nullopt;
    const auto pid = parse_decimal<pid_t>(name.substr(0, dot));
    const auto start_time = parse_decimal<std::uint64_t>(name.substr(dot + 1));
    if (!pid || !start_time || *pid <= 1)
        return std::nullopt;
    return StopRecord{*pid, *start_time};
}

Result<std::unique_ptr<DirStopRecords>> DirStopRecords::open(
    const std::filesystem::path& state_directory)
{
    const std::filesystem::path directory = state_directory / records_directory;
    if (::mkdir(state_directory.c_str(), 0700) < 0 && errno != EEXIST)
        return Error{errno, state_directory.native() + ": cannot create the state directory: " +
                                errno_text(errno)};
    if (::mkdir(directory.c_str(), 0700) < 0 && errno != EEXIST)
        return Error{errno, directory.native() + ": cannot create: " + errno_text(errno)};
    UniqueFd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
        return Error{errno, directory.native() + ": cannot open: " + errno_text(errno)};
    return std::unique_ptr<DirStopRecords>(new DirStopRecords(directory, std::move(fd)));
}

Result<void> DirStopRecords::add(const StopRecord& record)
{
    const std::string name = stop_record_name(record);
    UniqueFd file(::openat(fd_.get(), name.c_str(),
                           O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600));
    if (!file)
        return Error{errno, (directory_ / name).native() + ": cannot record the stop: " +
                                errno_text(errno)};
    file.reset();
    return sync_directory(fd_.get(), directory_.native());
}

Result<void> DirStopRecords::remove(const StopRecord& record)
{
    return remove_name(stop_record_name(record));
}

Result<void> DirStopRecords::remove_name(const std::string& name)
{
    if (::unlinkat(fd_.get(), name.c_str(), 0) < 0 && errno != ENOENT)
        return Error{errno, (directory_ / name).native() + ": cannot remove the record: " +
                                errno_text(errno)};
    return sync_directory(fd_.get(), directory_.native());
}

Result<std::vector<StopRecord>> DirStopRecords::list(std::vector<std::string>* damaged) const
{
    const int fd = ::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return Error{errno, directory_.native() + ": cannot read: " + errno_text(errno)};
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd), ::closedir);
    if (!dir) {
        ::close(fd);
        return Error{ENOMEM, directory_.native() + ": cannot read"};
    }
    std::vector<StopRecord> records;
    while (const dirent* entry = ::readdir(dir.get())) {
        const std::string_view name = entry->d_name;
        if (name == "." || name == "..")
            continue;
        if (auto record = parse_stop_record_name(name))
            records.push_back(*record);
        else if (damaged)
            damaged->emplace_back(name);
    }
    return records;
}

Recovery recover_stopped(const std::filesystem::path& state_directory,
                         const std::filesystem::path& proc)
{
    Recovery recovery;
    std::vector<StopRecord> records;

    // stopped.json of older versions.
    const std::filesystem::path legacy = state_directory / legacy_file;
    if (auto text = read_small_file(legacy)) {
        bool damaged = false;
        records = legacy_records(*text, damaged);
        if (damaged) {
            const std::filesystem::path aside = legacy.native() + ".corrupt";
            recovery.warnings.push_back(
                legacy.native() + " is damaged; continuing the " +
                std::to_string(records.size()) +
                " process(es) that can be made out of it, and keeping it as " + aside.native() +
                "; check for stopped processes with: ps -eo pid,stat,comm | awk '$2 ~ /^T/'");
            if (::rename(legacy.c_str(), aside.c_str()) < 0)
                recovery.warnings.push_back(legacy.native() + ": cannot move it aside: " +
                                            errno_text(errno));
        } else if (::unlink(legacy.c_str()) < 0) {
            recovery.warnings.push_back(legacy.native() + ": cannot remove it: " +
                                        errno_text(errno));
        }
    } else if (text.error().errnum != ENOENT) {
        recovery.warnings.push_back(text.error().message);
    }

    auto dir = DirStopRecords::open(state_directory);
    std::vector<std::string> damaged;
    if (!dir) {
        recovery.warnings.push_back(dir.error().message);
    } else if (auto listed = (*dir)->list(&damaged); !listed) {
        recovery.warnings.push_back(listed.error().message);
    } else {
        records.insert(records.end(), listed->begin(), listed->end());
    }
    std::vector<StopRecord> done;
    for (const StopRecord& record : records) {
        switch (continue_recorded(record, proc)) {
        case Continued::sent:
            recovery.continued.push_back(record.pid);
            done.push_back(record);
            break;
        case Continued::gone:
            done.push_back(record);
            break;
        case Continued::failed:
            recovery.warnings.push_back(
                "process " + std::to_string(record.pid) +
                " that livepatchd stopped could not be continued now; its record is kept for "
                "the next start: continue it with kill -CONT " + std::to_string(record.pid));
            break;
        }
    }
    if (dir) {
        for (const StopRecord& record : done)
            if (auto removed = (*dir)->remove(record); !removed)
                recovery.warnings.push_back(removed.error().message);
        for (const std::string& name : damaged) {
            recovery.warnings.push_back((state_directory / records_directory / name).native() +
                                        " is not a record of a stopped process; removed");
            (void)(*dir)->remove_name(name);
        }
    }
    return recovery;
}

TaskSignaller::TaskSignaller(std::unique_ptr<StopRecords> records, std::filesystem::path proc)
    : records_(std::move(records)), proc_(std::move(proc))
{
}

Result<std::uint64_t> TaskSignaller::start_time_of(const std::filesystem::path& stat) const
{
    const auto parsed = proc_stat(stat);
    if (!parsed)
        return Error{ESRCH, stat.native() + " cannot be read: the task has exited"};
    return parsed->start_time;
}

Result<std::uint64_t> TaskSignaller::stop(pid_t pid, pid_t tid, std::uint64_t thread_start_time)
{
    if (pid <= 1)
        return Error{EPERM, "refusing to stop pid " + std::to_string(pid)};
    if (held_.contains(pid))
        return Error{EALREADY, "process " + std::to_string(pid) + " is stopped already"};
    UniqueFd pidfd(pidfd_open(pid, 0));
    if (!pidfd)
        return Error{errno, "process " + std::to_string(pid) + ": " + errno_text(errno)};
    // The pidfd names the process that had pid when it was opened. If its thread tid started
    // when the caller saw it start, it is the process the caller means: a tid belongs to one
    // process for its whole life.
    const auto thread = start_time_of(proc_ / std::to_string(pid) / "task" / std::to_string(tid) /
                                      "stat");
    if (!thread || *thread != thread_start_time)
        return Error{ESRCH, "task " + std::to_string(tid) + " of process " + std::to_string(pid) +
                                " has exited (its tid is reused or gone)"};
    // The leader thread's own stat: /proc/<pid>/stat sums over every thread (milliseconds for
    // a process of thousands), for the same start time.
    const auto leader = start_time_of(proc_ / std::to_string(pid) / "task" / std::to_string(pid) /
                                      "stat");
    if (!leader)
        return leader.error();
    const StopRecord record{pid, *leader};
    if (auto saved = records_->add(record); !saved)
        return Error{saved.error().errnum,
                     saved.error().message + "; process " + std::to_string(pid) +
                         " is not stopped"};
    const std::uint64_t sent = monotonic_usec();
    if (pidfd_send_signal(pidfd.get(), SIGSTOP, nullptr, 0) < 0) {
        const int errnum = errno;
        if (auto removed = records_->remove(record); !removed)
            unforgotten_.push_back(record);
        return Error{errnum, "SIGSTOP to process " + std::to_string(pid) + " failed: " +
                                 errno_text(errnum)};
    }
    held_.emplace(pid, Held{record, std::move(pidfd)});
    return sent;
}

Result<void> TaskSignaller::resume(pid_t pid)
{
    const auto it = held_.find(pid);
    if (it == held_.end())
        return Error{ENOENT, "process " + std::to_string(pid) + " was not stopped by livepatchd"};
    const int r = pidfd_send_signal(it->second.pidfd.get(), SIGCONT, nullptr, 0);
    const int errnum = errno;
    const StopRecord record = it->second.record;
    held_.erase(it);
    if (r < 0 && errnum != ESRCH)
        // Still recorded: the next start tries again.
        return Error{errnum, "SIGCONT to process " + std::to_string(pid) + " failed: " +
                                 errno_text(errnum)};
    if (auto removed = records_->remove(record); !removed) {
        unforgotten_.push_back(record);
        return Error{removed.error().errnum,
                     "process " + std::to_string(pid) + " is continued, but " +
                         removed.error().message + "; trying again later"};
    }
    return {};
}

bool TaskSignaller::forget_resumed()
{
    std::erase_if(unforgotten_,
                  [this](const StopRecord& record) { return bool(records_->remove(record)); });
    return unforgotten_.empty();
}

std::vector<pid_t> TaskSignaller::stopped() const
{
    std::vector<pid_t> pids;
    for (const auto& [pid, held] : held_)
        pids.push_back(pid);
    return pids;
}

} // namespace livepatchd
