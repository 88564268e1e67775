// SPDX-License-Identifier: GPL-2.0-only
#include "kernel_symbols.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <system_error>

namespace livepatchd {

namespace {

std::string errno_text(int errnum) { return std::generic_category().message(errnum); }

std::string hex(std::uint64_t value)
{
    char buf[2 + 16 + 1];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
    return buf;
}

} // namespace

Result<KernelSymbols> KernelSymbols::load(const std::filesystem::path& path)
{
    KernelSymbols table;
    {
        errno = 0;
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            const int err = errno ? errno : EIO; // libstdc++ leaves open(2)'s errno
            return Error{err, "failed to open " + path.string() + ": " + errno_text(err)};
        }
        // procfs reports size 0: read to EOF rather than by size.
        std::ostringstream content;
        content << in.rdbuf();
        if (in.bad())
            return Error{EIO, "failed to read " + path.string()};
        table.text_ = std::move(content).str();
    }
    if (table.text_.size() > std::numeric_limits<std::uint32_t>::max())
        return Error{EFBIG, path.string() + " is larger than 4 GiB"};

    // Lines: "ffffffff81000000 T _stext" or "ffffffffc0a01000 t name\t[module]".
    const std::string_view text = table.text_;
    bool any_address = false;
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;

        const std::size_t sp1 = line.find(' ');
        const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos)
            continue;
        std::uint64_t address = 0;
        const auto [ptr, ec] = std::from_chars(line.data(), line.data() + sp1, address, 16);
        if (ec != std::errc{} || ptr != line.data() + sp1)
            continue;
        any_address = any_address || address != 0;

        std::string_view rest = line.substr(sp2 + 1);
        std::string_view module;
        if (const std::size_t tab = rest.find('\t'); tab != std::string_view::npos) {
            module = rest.substr(tab + 1);
            rest = rest.substr(0, tab);
            if (module.size() >= 2 && module.front() == '[' && module.back() == ']')
                module = module.substr(1, module.size() - 2);
        }
        const auto offset_of = [&](std::string_view part) {
            return static_cast<std::uint32_t>(part.data() - text.data());
        };
        table.symbols_.push_back({address, offset_of(rest), static_cast<std::uint32_t>(rest.size()),
                                  module.empty() ? 0 : offset_of(module),
                                  static_cast<std::uint32_t>(module.size())});
    }
    if (table.symbols_.empty())
        return Error{ENOENT, path.string() + " lists no symbols"};
    if (!any_address)
        return Error{EPERM, "the addresses in " + path.string() +
                                " are hidden (kernel.kptr_restrict); read it as root"};

    std::stable_sort(table.symbols_.begin(), table.symbols_.end(),
                     [](const Entry& a, const Entry& b) { return a.address < b.address; });
    return table;
}

std::optional<KernelSymbol> KernelSymbols::resolve(std::uint64_t address) const
{
    auto next = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                                 [](std::uint64_t a, const Entry& e) { return a < e.address; });
    if (next == symbols_.begin())
        return std::nullopt;
    auto it = std::prev(next);
    // Of several symbols at one address, the first in the file, as the kernel's lookup does.
    while (it != symbols_.begin() && std::prev(it)->address == it->address)
        --it;

    const std::string_view text = text_;
    KernelSymbol sym;
    sym.name = text.substr(it->name_pos, it->name_len);
    sym.module = it->module_len ? text.substr(it->module_pos, it->module_len) : std::string_view{};
    sym.offset = address - it->address;
    // The size is the distance to the next symbol of the same object (kallsyms has no sizes);
    // the next symbol in address order may belong to another module, or there may be none.
    if (next != symbols_.end()) {
        const std::string_view next_module =
            next->module_len ? text.substr(next->module_pos, next->module_len) : std::string_view{};
        if (next_module == sym.module)
            sym.size = next->address - it->address;
    }
    if (sym.size != 0 && sym.offset >= sym.size)
        return std::nullopt;
    return sym;
}

std::string KernelSymbols::format(std::uint64_t address) const
{
    const std::optional<KernelSymbol> sym = resolve(address);
    if (!sym)
        return hex(address);
    std::string out(sym->name);
    out += '+';
    out += hex(sym->offset);
    if (sym->size != 0) {
        out += '/';
        out += hex(sym->size);
    }
    if (!sym->module.empty()) {
        out += " [";
        out += sym->module;
        out += ']';
    }
    return out;
}

} // namespace livepatchd
