// SPDX-License-Identifier: GPL-2.0-only
//
// ElfObject: a relocatable x86-64 ELF file (a kernel module, .ko) held in memory as sections
// that can be edited and written out again. Reading validates everything the converter later
// indexes with (section, symbol and string offsets, relocation targets), so that no malformed
// input can make it read out of bounds; writing goes through libelf.
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace klpconvert {

using livepatchd::Error;
using livepatchd::Result;

// From include/uapi/linux/elf.h: the marks of livepatch relocation sections and symbols
// (Documentation/livepatch/module-elf-format.rst).
inline constexpr std::uint64_t shf_rela_livepatch = 0x00100000;
inline constexpr std::uint16_t shn_livepatch = 0xff20;

struct Section {
    std::string name;
    Elf64_Shdr header{}; // sh_name and sh_offset are recomputed when the file is written
    std::vector<std::uint8_t> data; // empty for SHT_NOBITS
};

class ElfObject {
public:
    // Parses and validates a relocatable x86-64 ELF file. origin names it in messages.
    static Result<ElfObject> parse(std::span<const std::uint8_t> bytes, const std::string& origin);

    // The file, laid out by libelf: section order kept, offsets recomputed.
    Result<std::vector<std::uint8_t>> serialize() const;

    const std::string& origin() const { return origin_; }
    const Elf64_Ehdr& header() const { return ehdr_; }

    std::vector<Section>& sections() { return sections_; }
    const std::vector<Section>& sections() const { return sections_; }
    std::optional<std::size_t> find_section(std::string_view name) const;

    std::size_t symtab_index() const { return symtab_; }
    std::size_t symbol_count() const { return sections_[symtab_].data.size() / sizeof(Elf64_Sym); }
    Elf64_Sym symbol(std::size_t index) const;
    void set_symbol(std::size_t index, const Elf64_Sym& sym);
    // The symbol's name; validated at parse to lie inside the string table.
    std::string_view symbol_name(const Elf64_Sym& sym) const;
    // Appends a string to the symbol string table; returns its offset.
    std::uint32_t add_symbol_string(std::string_view name);

    std::size_t rela_count(std::size_t section) const
    {
        return sections_[section].data.size() / sizeof(Elf64_Rela);
    }
    Elf64_Rela rela(std::size_t section, std::size_t index) const;
    void set_relas(std::size_t section, const std::vector<Elf64_Rela>& relas);

    // Appends a section; returns its index.
    std::size_t add_section(Section section);
    // Removes a section, renumbering every reference to the sections after it (headers'
    // sh_link and sh_info, symbols' st_shndx, groups). Symbols defined in the removed section
    // become nameless absolute symbols, so that no symbol index changes. The section must not
    // be the symbol table, its string table or a section that another one links to.
    Result<void> remove_section(std::size_t index);

    // Checks the invariants parse() establishes, again, after an edit.
    Result<void> validate() const;

private:
    std::string origin_;
    Elf64_Ehdr ehdr_{};
    std::vector<Section> sections_;
    std::size_t symtab_ = 0;
    std::size_t strtab_ = 0;
};

// The section's name in messages: "'.text' (section 3)".
std::string describe_section(const ElfObject& elf, std::size_t index);

// "R_X86_64_PC32", or "type 42" for a type this table does not know.
std::string relocation_type_name(std::uint32_t type);

} // namespace klpconvert
