// SPDX-License-Identifier: GPL-2.0-only
//
// The conversion: every reference of a patch module to a symbol that the target kernel does not
// export becomes a livepatch relocation (Documentation/livepatch/module-elf-format.rst):
//
//   - the undefined symbol S becomes ".klp.sym.<object>.S,<sympos>" in SHN_LIVEPATCH, where
//     <object> is vmlinux or the module that defines S, and <sympos> its position among the
//     symbols named S there (0 when S is unique);
//   - its relocations move from .rela<section> into ".klp.rela.<object><section>" (SHT_RELA,
//     SHF_ALLOC | SHF_RELA_LIVEPATCH), one per object and section, since the kernel resolves a
//     module-specific section only against that module's symbols.
//
// The kernel's module loader applies the vmlinux sections when the patch module loads (it needs
// modinfo livepatch=Y to keep the ELF information for the others); lpshim applies a module's
// sections when that module is there and clears them when it goes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "elf_object.hpp"
#include "target_symbols.hpp"

namespace klpconvert {

// The section LPSHIM_SYMPOS() (<lpshim/klp-convert.h>) writes its records to.
inline constexpr const char* sympos_section = ".lpshim.klp.sympos";

struct ConvertInputs {
    const Exports* exports = nullptr;           // the target kernel's and its modules' exports
    const ObjectSymbols* vmlinux = nullptr;     // nullptr: not known (no kallsyms)
    std::vector<const ObjectSymbols*> modules;  // the module objects the patch may reference
};

struct ConvertedSymbol {
    std::string name;    // as the patch module named it
    std::string object;  // vmlinux or a module's name
    unsigned long sympos = 0;
    std::size_t relocations = 0;
};

struct Report {
    // Non-empty: the module is refused and left as it was.
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
    std::vector<ConvertedSymbol> converted;
    bool changed = false;
};

// The undefined symbols of ko that need a symbol table of the target to resolve (not exported,
// or exported by one of the module objects), and whether ko carries LPSHIM_SYMPOS() records.
// An empty list and no records: the module needs no conversion and stays as it is.
struct Needs {
    std::vector<std::string> symbols;
    bool annotations = false;
};
Needs needs(const ElfObject& ko, const Exports& exports, const std::vector<std::string>& modules);

// Converts ko in place. On errors, ko is unchanged.
Report convert(ElfObject& ko, const ConvertInputs& inputs);

// Checks that every livepatch section and symbol of ko is what the kernel accepts: names that
// its sscanf() formats parse, flags, links, and relocations that reference only livepatch
// symbols of their own object. The converter runs it on what it wrote, read back.
Result<void> verify_livepatch_elf(const ElfObject& ko);

// The release a module was built for: the first word of its modinfo vermagic.
std::optional<std::string> module_release(const ElfObject& ko);

} // namespace klpconvert
