// SPDX-License-Identifier: GPL-2.0-only
#include "target_symbols.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace klpconvert {

namespace {

bool starts_with(std::string_view s, std::string_view prefix)
{
    return s.substr(0, prefix.size()) == prefix;
}

// Splits on one character; empty fields are kept.
std::vector<std::string_view> split(std::string_view s, char sep)
{
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const auto end = s.find(sep, start);
        out.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos)
            return out;
        start = end + 1;
    }
}

} // namespace

std::string module_name_of_path(std::string_view path)
{
    auto slash = path.rfind('/');
    std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
    for (const char* ext : {".ko.xz", ".ko.zst", ".ko.gz", ".ko"}) {
        const std::string_view e(ext);
        if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
            name.resize(name.size() - e.size());
            break;
        }
    }
    std::replace(name.begin(), name.end(), '-', '_');
    return name;
}

void ObjectSymbols::index()
{
    by_name_.clear();
    for (std::size_t i = 0; i < symbols_.size(); i++)
        by_name_[symbols_[i].name].push_back(i);
}

std::vector<const TargetSymbol*> ObjectSymbols::named(std::string_view name) const
{
    std::vector<const TargetSymbol*> out;
    const auto it = by_name_.find(std::string(name));
    if (it != by_name_.end())
        for (const auto i : it->second)
            out.push_back(&symbols_[i]);
    return out;
}

std::string ObjectSymbols::neighbours(const TargetSymbol& sym) const
{
    const auto i = static_cast<std::size_t>(&sym - symbols_.data());
    if (i >= symbols_.size())
        return {};
    std::string out;
    if (i > 0)
        out += "after " + symbols_[i - 1].name;
    if (i + 1 < symbols_.size())
        out += std::string(out.empty() ? "" : ", ") + "before " + symbols_[i + 1].name;
    return out;
}

Result<ObjectSymbols> ObjectSymbols::from_kallsyms(std::string_view text, const std::string& origin)
{
    ObjectSymbols table;
    table.object_ = "vmlinux";
    table.origin_ = origin;
    bool any_address = false;
    std::size_t line_no = 0;
    for (std::string_view rest = text; !rest.empty();) {
        const auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        line_no++;
        if (line.empty())
            continue;
        if (line[0] == '#') {
            for (auto [key, field] : {std::pair{"# release: ", &table.release_},
                                      std::pair{"# version: ", &table.version_}}) {
                if (starts_with(line, key))
                    *field = std::string(line.substr(std::string_view(key).size()));
            }
            continue;
        }
        const auto bad = [&](const char* why) {
            return Error{EINVAL, origin + ":" + std::to_string(line_no) + ": not a line of "
                                 "/proc/kallsyms (" + why + "): '" +
                                 std::string(line.substr(0, 80)) + "'"};
        };
        // "ADDRESS TYPE NAME" or "ADDRESS TYPE NAME\t[MODULE]"
        const auto sp1 = line.find(' ');
        if (sp1 == std::string_view::npos || sp1 == 0 || sp1 > 16 || line.size() < sp1 + 4 ||
            line[sp1 + 2] != ' ')
            return bad("expected 'ADDRESS TYPE NAME'");
        std::uint64_t address = 0;
        const auto [ptr, ec] = std::from_chars(line.data(), line.data() + sp1, address, 16);
        if (ec != std::errc() || ptr != line.data() + sp1)
            return bad("the address is not hexadecimal");
        const char type = line[sp1 + 1];
        if (!std::isalpha(static_cast<unsigned char>(type)) && type != '?')
            return bad("the type is not a letter");
        std::string_view name = line.substr(sp1 + 3);
        const auto tab = name.find('\t');
        if (tab != std::string_view::npos) {
            if (name.substr(tab + 1).empty() || name[tab + 1] != '[' || name.back() != ']')
                return bad("expected '\\t[MODULE]' after the name");
            continue; // a module's symbol, or a pseudo-module's ([bpf], [__builtin__ftrace])
        }
        if (name.empty() || name.find(' ') != std::string_view::npos)
            return bad("the name is empty or has a space");
        any_address = any_address || address != 0;
        TargetSymbol sym;
        sym.name = std::string(name);
        sym.address = address;
        sym.type = type;
        const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(type)));
        // t: text; w: a weak symbol that nm does not tag as an object, i.e. code.
        sym.function = lower == 't' || lower == 'w';
        table.symbols_.push_back(std::move(sym));
    }
    if (table.symbols_.empty())
        return Error{EINVAL, origin + ": no vmlinux symbols: it is not /proc/kallsyms of a "
                                      "running kernel, or it was cut short"};
    table.addresses_hidden_ = !any_address;
    table.index();

    // __init code and data are freed after boot: a patch must not reference them. kallsyms
    // keeps their names, so they are told apart by address, when the addresses are there.
    if (!table.addresses_hidden_) {
        const auto begin = table.named("__init_begin");
        const auto end = table.named("__init_end");
        if (begin.size() == 1 && end.size() == 1 && begin[0]->address < end[0]->address)
            for (auto& sym : table.symbols_)
                if (sym.address >= begin[0]->address && sym.address < end[0]->address)
                    sym.core = false;
    }
    return table;
}

Result<ObjectSymbols> ObjectSymbols::from_module(const ElfObject& ko, const std::string& object)
{
    ObjectSymbols table;
    table.object_ = object;
    table.origin_ = ko.origin();
    const auto& sections = ko.sections();
    std::string file;
    for (std::size_t i = 1; i < ko.symbol_count(); i++) {
        const Elf64_Sym s = ko.symbol(i);
        const auto type = ELF64_ST_TYPE(s.st_info);
        const bool local = ELF64_ST_BIND(s.st_info) == STB_LOCAL;
        if (type == STT_FILE) {
            file = std::string(ko.symbol_name(s));
        } else if (!local) {
            file.clear(); // globals follow every file's locals: their file is unknown
        }
        if (s.st_shndx == SHN_UNDEF)
            continue;
        TargetSymbol sym;
        sym.name = std::string(ko.symbol_name(s));
        sym.address = s.st_value;
        sym.file = local ? file : std::string();
        if (s.st_shndx < sections.size()) {
            const Section& sec = sections[s.st_shndx];
            sym.section = sec.name;
            const auto flags = sec.header.sh_flags;
            sym.core = (flags & SHF_ALLOC) && !starts_with(sec.name, ".init") && s.st_name != 0;
            sym.function = type == STT_FUNC || (type == STT_NOTYPE && (flags & SHF_EXECINSTR));
            char letter = (flags & SHF_EXECINSTR)            ? 't'
                          : sec.header.sh_type == SHT_NOBITS ? 'b'
                          : (flags & SHF_WRITE)              ? 'd'
                                                             : 'r';
            sym.type = local ? letter : static_cast<char>(std::toupper(letter));
        } else {
            sym.core = false; // absolute or common: not in the module's kallsyms after init
            sym.type = 'a';
        }
        table.symbols_.push_back(std::move(sym));
    }
    table.index();
    return table;
}

Result<void> Exports::add_symvers(std::string_view text, const std::string& origin)
{
    std::size_t line_no = 0;
    for (std::string_view rest = text; !rest.empty();) {
        const auto nl = rest.find('\n');
        const std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        line_no++;
        if (line.empty())
            continue;
        const auto fields = split(line, '\t');
        if (fields.size() < 4 || !starts_with(fields[0], "0x") || fields[1].empty() ||
            fields[2].empty() || !starts_with(fields[3], "EXPORT_SYMBOL"))
            return Error{EINVAL, origin + ":" + std::to_string(line_no) +
                                     ": not a line of Module.symvers (CRC, symbol, module, "
                                     "export type, separated by tabs)"};
        const std::string module =
            fields[2] == "vmlinux" ? std::string("vmlinux") : module_name_of_path(fields[2]);
        by_name_.emplace(std::string(fields[1]), module);
    }
    return {};
}

std::optional<std::string> Exports::exporter(std::string_view symbol) const
{
    const auto it = by_name_.find(std::string(symbol));
    if (it == by_name_.end())
        return std::nullopt;
    return it->second;
}

std::vector<std::pair<std::string, std::string>> modinfo_entries(const ElfObject& ko)
{
    std::vector<std::pair<std::string, std::string>> out;
    const auto index = ko.find_section(".modinfo");
    if (!index)
        return out;
    const auto& data = ko.sections()[*index].data;
    const std::string_view all(reinterpret_cast<const char*>(data.data()), data.size());
    for (const auto entry : split(all, '\0')) {
        if (entry.empty())
            continue;
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos)
            out.emplace_back(std::string(entry), std::string());
        else
            out.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return out;
}

} // namespace klpconvert
