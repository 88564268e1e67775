// SPDX-License-Identifier: GPL-2.0-only
//
// What the target kernel has: the symbols of vmlinux (from /proc/kallsyms of a machine that runs
// it), the symbols of a module object (from its .ko), and the symbols that the kernel and its
// modules export (Module.symvers). A symbol's position (sympos) is counted exactly as the kernel
// counts it when it resolves a livepatch symbol: among the symbols of that name in that object,
// in kallsyms order, from 1 (klp_find_object_symbol(), lpshim's lpshim_resolve_symbol()).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "elf_object.hpp"

namespace klpconvert {

struct TargetSymbol {
    std::string name;
    std::uint64_t address = 0; // vmlinux: from kallsyms (0 when captured without root)
    char type = '?';           // kallsyms' letter: t/T text, d/D data, b/B bss, r/R rodata...
    bool function = false;     // code: a reference to it must stay a direct call (IBT)
    std::string file;          // modules: the source file of a local symbol (STT_FILE)
    std::string section;       // modules: the section that defines it
    // Modules: the symbol stays in the module's kallsyms after its init has run (not in an
    // .init section, allocated). vmlinux: not in the __init range when addresses are known.
    bool core = true;
};

class ObjectSymbols {
public:
    // vmlinux from /proc/kallsyms, or from the output of --dump-symbols (the same lines under
    // a header "# release: R" / "# version: V"). Lines tagged with a module ("\t[mod]") and
    // the kernel's pseudo-modules ([bpf], [__builtin__ftrace]) are not vmlinux's and are left
    // out, as kallsyms_on_each_symbol() leaves them out.
    static Result<ObjectSymbols> from_kallsyms(std::string_view text, const std::string& origin);

    // A module object from its .ko. Counting follows the kernel's walk of the module's kallsyms
    // (module_kallsyms_on_each_symbol(): every symbol of the symbol table in order, undefined
    // ones skipped). Symbols in .init sections or non-allocated sections are marked !core:
    // they leave the module's kallsyms after its init.
    static Result<ObjectSymbols> from_module(const ElfObject& ko, const std::string& object);

    const std::string& object() const { return object_; }
    const std::string& origin() const { return origin_; }
    bool is_vmlinux() const { return object_ == "vmlinux"; }

    // Every symbol of that name, in the kernel's counting order.
    std::vector<const TargetSymbol*> named(std::string_view name) const;
    // The symbols around one (for telling duplicates apart when no source file is known).
    std::string neighbours(const TargetSymbol& sym) const;

    // From the header of a --dump-symbols file, when present.
    const std::optional<std::string>& release() const { return release_; }
    const std::optional<std::string>& version() const { return version_; }
    bool addresses_hidden() const { return addresses_hidden_; }

private:
    std::string object_;
    std::string origin_;
    std::vector<TargetSymbol> symbols_;
    std::unordered_map<std::string, std::vector<std::size_t>> by_name_;
    std::optional<std::string> release_, version_;
    bool addresses_hidden_ = false;

    void index();
};

// Module.symvers: "CRC\tsymbol\tmodule\texport type\tnamespace" per line. The module field is
// "vmlinux" or a module's path without .ko (drivers/block/loop); the exporter is recorded by
// module name (loop).
class Exports {
public:
    Result<void> add_symvers(std::string_view text, const std::string& origin);
    // "vmlinux", a module's name, or nullopt when nothing exports the symbol.
    std::optional<std::string> exporter(std::string_view symbol) const;
    bool empty() const { return by_name_.empty(); }

private:
    std::unordered_map<std::string, std::string> by_name_;
};

// A module's name as the kernel knows it: the file name without .ko[.xz], '-' as '_'.
std::string module_name_of_path(std::string_view path);

// The module's modinfo entries (.modinfo: "key=value\0..."), in order.
std::vector<std::pair<std::string, std::string>> modinfo_entries(const ElfObject& ko);

} // namespace klpconvert
