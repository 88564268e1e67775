// SPDX-License-Identifier: GPL-2.0-only
//
// Kernel addresses → "name+0xoff/0xsize [module]", from /proc/kallsyms, for stack frames shown
// to people. Loading reads the whole file (a few MB on a distribution kernel), so it is done only
// when frames are about to be printed, and the table is a snapshot: a module loaded later is
// unknown to it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "result.hpp"

namespace livepatchd {

struct KernelSymbol {
    std::string_view name;   // views into the KernelSymbols that resolved it
    std::string_view module; // empty for vmlinux
    std::uint64_t offset = 0;
    std::uint64_t size = 0;  // 0 when unknown (the last symbol of vmlinux or of a module)
};

class KernelSymbols {
public:
    // EPERM when the addresses are hidden (kptr_restrict, or not root): all of them read as 0.
    static Result<KernelSymbols> load(const std::filesystem::path& path = "/proc/kallsyms");

    // The symbol covering address: the nearest one at or below it, provided the address is
    // within that symbol's size when the size is known.
    std::optional<KernelSymbol> resolve(std::uint64_t address) const;

    // "name+0xoff/0xsize [module]" like the kernel's %pS (without "/0xsize" when the size is
    // unknown, without " [module]" for vmlinux), or "0x<address>" when no symbol covers it.
    std::string format(std::uint64_t address) const;

    std::size_t size() const noexcept { return symbols_.size(); }

private:
    // Offsets into text_, not views: they survive moving the object.
    struct Entry {
        std::uint64_t address;
        std::uint32_t name_pos, name_len;
        std::uint32_t module_pos, module_len;
    };

    std::string text_;
    std::vector<Entry> symbols_; // by address; aliases keep the order of the file
};

} // namespace livepatchd
