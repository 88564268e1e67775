// SPDX-License-Identifier: GPL-2.0-only
//
// What livepatchd needs to know about the running boot: the kernel release (which patches can
// apply), the boot id and the kernel's oops count (which boot applied a patch, and whether the
// kernel oopsed after it, for the crash-loop guard), and the livepatchd.* parameters of the
// kernel command line (the admin's override at the boot prompt).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace livepatchd {

struct BootFlags {
    // livepatchd.apply=: whether to apply the desired patches at this boot. Unset: the
    // configuration's boot.apply decides.
    std::optional<bool> apply;
    // Parameters that were recognised but not understood, as complete sentences, to be logged
    // (", ignoring"); the rest of the command line still counts.
    std::vector<std::string> warnings;

    bool operator==(const BootFlags&) const = default;
};

// Reads livepatchd.* from a kernel command line (/proc/cmdline), the way the kernel and
// systemd split it: words separated by spaces, double quotes group (and are removed), '-' and
// '_' are the same in a parameter's name, the last occurrence wins. Values are systemd's
// booleans (1 yes y true t on / 0 no n false f off, any case); a bare "livepatchd.apply"
// means yes.
BootFlags parse_kernel_command_line(std::string_view command_line);

// A boot id as livepatchd stores it and journalctl -b accepts it: 32 lowercase hex digits.
bool is_boot_id(std::string_view id);

// The running boot's id and command line, and uname's release. The paths are parameters so
// that tests can give their own files.
// The boot id from sd_id128_get_boot(), as livepatchd stores it (is_boot_id()).
Result<std::string> read_boot_id();
// How many times the kernel oopsed in this boot: /sys/kernel/oops_count (Linux 6.2, and
// backported: both kernels Debian 12 ships, 6.1 and 6.12, have it). A kernel without it:
// TAINT_DIE of /proc/sys/kernel/tainted, 0 or 1, which never clears (only the first oops of a
// boot can be told then).
Result<std::uint64_t> read_oops_count(
    const std::filesystem::path& count_path = "/sys/kernel/oops_count",
    const std::filesystem::path& tainted_path = "/proc/sys/kernel/tainted");
Result<std::string> read_kernel_command_line(const std::filesystem::path& path = "/proc/cmdline");
std::string running_kernel_release();

} // namespace livepatchd
