// SPDX-License-Identifier: GPL-2.0-only
#include "common/run_delay.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>

namespace livepatchd {

std::optional<std::uint64_t> run_delay_ns_of(std::string_view schedstat) noexcept
{
    // Three decimal numbers, one space between, a newline at most after the last.
    if (schedstat.ends_with('\n'))
        schedstat.remove_suffix(1);
    const char* at = schedstat.data();
    const char* const last = schedstat.data() + schedstat.size();
    std::uint64_t fields[3] = {};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (at == last || *at != ' ')
                return std::nullopt;
            ++at;
        }
        const auto [end, ec] = std::from_chars(at, last, fields[i]);
        if (ec != std::errc{} || end == at)
            return std::nullopt;
        at = end;
    }
    if (at != last)
        return std::nullopt;
    return fields[1];
}

std::optional<ThreadUsage> ThreadUsage::now() noexcept
{
    struct rusage usage{};
    if (::getrusage(RUSAGE_THREAD, &usage) != 0)
        return std::nullopt;
    auto usec = [](const struct timeval& tv) {
        return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000 +
               static_cast<std::uint64_t>(tv.tv_usec);
    };
    return ThreadUsage{.user_usec = usec(usage.ru_utime),
                       .system_usec = usec(usage.ru_stime),
                       .minor_faults = static_cast<std::uint64_t>(usage.ru_minflt),
                       .major_faults = static_cast<std::uint64_t>(usage.ru_majflt),
                       .sleeps = static_cast<std::uint64_t>(usage.ru_nvcsw)};
}

ThreadUsage ThreadUsage::since(const ThreadUsage& before) const noexcept
{
    // (The kernel keeps each monotonic; a count that went back, which it should not, grew by
    // nothing.)
    auto grew = [](std::uint64_t after, std::uint64_t was) { return after > was ? after - was : 0; };
    return ThreadUsage{.user_usec = grew(user_usec, before.user_usec),
                       .system_usec = grew(system_usec, before.system_usec),
                       .minor_faults = grew(minor_faults, before.minor_faults),
                       .major_faults = grew(major_faults, before.major_faults),
                       .sleeps = grew(sleeps, before.sleeps)};
}

RunDelayClock RunDelayClock::of_this_thread() noexcept
{
    return RunDelayClock(UniqueFd(::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC)));
}

std::optional<std::uint64_t> RunDelayClock::usec() const noexcept
{
    if (!fd_)
        return std::nullopt;
    // Three numbers of at most 20 digits; a read at offset 0 makes the kernel print them anew.
    char text[96];
    const ssize_t n = ::pread(fd_.get(), text, sizeof text, 0);
    if (n <= 0)
        return std::nullopt;
    const auto ns = run_delay_ns_of(std::string_view(text, static_cast<std::size_t>(n)));
    if (!ns)
        return std::nullopt;
    return *ns / 1000;
}

} // namespace livepatchd
