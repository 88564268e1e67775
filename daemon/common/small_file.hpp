// SPDX-License-Identifier: GPL-2.0-only
//
// read_small_file: the whole of a small file (/proc, /sys, a state file), or an Error whose
// errnum is the real cause (ENOENT, EACCES, ESRCH for a /proc entry of a task that exited,
// EFBIG past max_size). The one reader of small files in the daemon.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "common/result.hpp"

namespace livepatchd {

inline constexpr std::size_t small_file_max_size = 1 << 20;

Result<std::string> read_small_file(const std::filesystem::path& path,
                                    std::size_t max_size = small_file_max_size);
// The same, relative to a directory fd (openat, O_NOFOLLOW).
Result<std::string> read_small_file_at(int dir_fd, const std::string& name,
                                       std::string_view origin,
                                       std::size_t max_size = small_file_max_size);

} // namespace livepatchd
