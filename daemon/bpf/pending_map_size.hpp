// SPDX-License-Identifier: GPL-2.0-only
//
// The size of the BPF map of pending tasks (bpf/pending_tasks.bpf.c): one entry per task that
// blocks a transition, so as many as the system may have tasks (kernel.threads-max), within a
// bound on the kernel memory it pins (a preallocated hash map: about 100 bytes an entry, so
// 25 MB at the bound). Past the bound, or when threads-max is raised after livepatchd started,
// an insert that finds the map full is counted and the daemon lists lpshim's own debugfs list
// instead: the view is exact, or says it is not.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/decimal.hpp"

namespace livepatchd {

inline constexpr std::uint32_t pending_map_min_entries = 1024;
inline constexpr std::uint32_t pending_map_max_entries = 262144; // 2^18, ~25 MB pinned

// Entries for a system whose /proc/sys/kernel/threads-max reads threads_max_text; the bound
// when it cannot be read (nullopt) or is not a number.
inline std::uint32_t pending_map_entries(std::optional<std::string_view> threads_max_text)
{
    if (!threads_max_text)
        return pending_map_max_entries;
    std::string_view text = *threads_max_text;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.remove_suffix(1);
    const auto n = parse_decimal<std::uint64_t>(text);
    if (!n)
        return pending_map_max_entries;
    if (*n < pending_map_min_entries)
        return pending_map_min_entries;
    if (*n > pending_map_max_entries)
        return pending_map_max_entries;
    return static_cast<std::uint32_t>(*n);
}

} // namespace livepatchd
