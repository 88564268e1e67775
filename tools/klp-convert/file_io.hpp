// SPDX-License-Identifier: GPL-2.0-only
//
// Files in and out: whole files read into memory (an xz-compressed .ko.xz, as Debian ships
// modules since 6.12, decompressed on the way), and files replaced atomically, so that an
// interrupted run never leaves a half-written module behind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace klpconvert {

using livepatchd::Error;
using livepatchd::Result;

// The file's contents; xz-compressed contents are decompressed (up to limit bytes).
Result<std::vector<std::uint8_t>> read_file(const std::string& path,
                                            std::size_t limit = std::size_t(1) << 30);

// Decompresses an xz stream (.ko.xz).
Result<std::vector<std::uint8_t>> xz_decompress(std::span<const std::uint8_t> data,
                                                const std::string& origin, std::size_t limit);

bool is_xz(std::span<const std::uint8_t> data);

// Writes path through a temporary file in the same directory and a rename.
Result<void> write_file_atomic(const std::string& path, std::span<const std::uint8_t> data,
                               mode_t mode);

} // namespace klpconvert
