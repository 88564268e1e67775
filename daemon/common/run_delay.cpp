// SPDX-License-Identifier: GPL-2.0-only
#include "common/run_delay.hpp"

#include <fcntl.h>
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
