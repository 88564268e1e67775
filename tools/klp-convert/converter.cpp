// SPDX-License-Identifier: GPL-2.0-only
#include "converter.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

namespace klpconvert {

namespace {

// The kernel parses livepatch names with sscanf(".klp.sym.%55[^.].%511[^,],%lu") and
// sscanf(".klp.rela.%55[^.]") (kernel/livepatch/core.c): an object name of at most 55
// characters without '.', a symbol name of at most 511 without ','.
constexpr std::size_t max_object_name = 55;
constexpr std::size_t max_symbol_name = 511;
constexpr std::string_view klp_sym_prefix = ".klp.sym.";
constexpr std::string_view klp_rela_prefix = ".klp.rela.";

// The relocation types the converter moves into livepatch sections: what the compiler emits
// for kernel code (-mcmodel=kernel, no PIC) and what the kernel's apply_relocate_add() and
// lpshim both apply.
const std::set<std::uint32_t> handled_types = {R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32S,
                                               R_X86_64_64};

bool starts_with(std::string_view s, std::string_view prefix)
{
    return s.substr(0, prefix.size()) == prefix;
}

std::string hex(std::uint64_t v, bool padded = false)
{
    char buf[24];
    std::snprintf(buf, sizeof(buf), padded ? "%016llx" : "0x%llx",
                  static_cast<unsigned long long>(v));
    return buf;
}

std::string handled_types_text()
{
    return "R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32S and R_X86_64_64";
}

struct Annotation {
    std::string symbol;
    std::string object;
    unsigned long pos = 0;
    std::string where; // file:line of the LPSHIM_SYMPOS()
    bool used = false;
};

std::string annotation_text(const Annotation& a)
{
    return "LPSHIM_SYMPOS(" + a.symbol + ", \"" + a.object + "\", " + std::to_string(a.pos) + ")";
}

bool valid_object_name(std::string_view name)
{
    return !name.empty() && name.size() <= max_object_name &&
           name.find('.') == std::string_view::npos && name.find(',') == std::string_view::npos;
}

bool valid_symbol_name(std::string_view name)
{
    return !name.empty() && name.size() <= max_symbol_name &&
           name.find(',') == std::string_view::npos;
}

// The records of LPSHIM_SYMPOS(): four strings each (symbol, object, position, file:line).
Result<std::vector<Annotation>> read_annotations(const ElfObject& ko, std::vector<std::string>& errors)
{
    std::vector<Annotation> out;
    const auto index = ko.find_section(sympos_section);
    if (!index)
        return out;
    const auto& data = ko.sections()[*index].data;
    std::vector<std::string> fields;
    std::string current;
    for (const auto byte : data) {
        if (byte) {
            current.push_back(static_cast<char>(byte));
        } else if (!current.empty()) {
            fields.push_back(std::move(current));
            current.clear();
        }
    }
    if (!current.empty() || fields.size() % 4)
        return Error{EINVAL, "the section " + std::string(sympos_section) +
                                 " is not a list of LPSHIM_SYMPOS() records "
                                 "(<lpshim/klp-convert.h>)"};
    std::map<std::string, const Annotation*> seen;
    for (std::size_t i = 0; i < fields.size(); i += 4) {
        Annotation a;
        a.symbol = fields[i];
        a.object = fields[i + 1];
        a.where = fields[i + 3];
        const auto& pos = fields[i + 2];
        const auto [ptr, ec] = std::from_chars(pos.data(), pos.data() + pos.size(), a.pos);
        if (ec != std::errc() || ptr != pos.data() + pos.size()) {
            errors.push_back(a.where + ": LPSHIM_SYMPOS(" + a.symbol + ", \"" + a.object + "\", " +
                             pos + "): the position is not a number (0 for a unique symbol, or "
                             "1, 2, ... in kallsyms order)");
            continue;
        }
        if (!valid_object_name(a.object)) {
            errors.push_back(a.where + ": " + annotation_text(a) + ": '" + a.object +
                             "' is not an object name: \"vmlinux\" or a module's name as lsmod "
                             "shows it");
            continue;
        }
        if (!valid_symbol_name(a.symbol)) {
            errors.push_back(a.where + ": " + annotation_text(a) + ": not a symbol name");
            continue;
        }
        out.push_back(std::move(a));
    }
    for (const auto& a : out) {
        const auto [it, added] = seen.emplace(a.symbol, &a);
        if (!added && (it->second->object != a.object || it->second->pos != a.pos))
            errors.push_back(a.where + ": " + annotation_text(a) + " contradicts " +
                             annotation_text(*it->second) + " at " + it->second->where);
    }
    return out;
}

std::string describe_candidate(const ObjectSymbols& table, const TargetSymbol& s, std::size_t n)
{
    std::string line = "    " + std::to_string(n) + ": ";
    if (table.is_vmlinux()) {
        if (!table.addresses_hidden())
            line += hex(s.address, true) + " ";
        line += std::string(1, s.type) + " " + s.name;
        const auto around = table.neighbours(s);
        if (!around.empty())
            line += " (" + around + ")";
    } else {
        line += std::string(1, s.type) + " " + s.name + " in " + s.section;
        if (!s.file.empty())
            line += ", from " + s.file;
        else if (const auto around = table.neighbours(s); !around.empty())
            line += " (" + around + ")";
    }
    return line;
}

std::string candidates_text(const ObjectSymbols& table,
                            const std::vector<const TargetSymbol*>& candidates)
{
    std::string out;
    for (std::size_t i = 0; i < candidates.size(); i++)
        out += "\n" + describe_candidate(table, *candidates[i], i + 1);
    return out;
}

std::string source_hint(const ObjectSymbols& table)
{
    if (table.is_vmlinux())
        return "\n  (the source file is not in kallsyms: the neighbours tell it; "
               "docs/writing-patches.md, 'Duplicate names')";
    return "";
}

// Resolves name among the symbols of one object; pos from an annotation, if any. Returns the
// position and whether the symbol is code, or records why not.
std::optional<unsigned long> resolve_in(const ObjectSymbols& table, const std::string& name,
                                        const Annotation* annotation, bool& function,
                                        std::vector<std::string>& errors)
{
    const auto candidates = table.named(name);
    const std::string obj = table.object();
    if (candidates.empty()) {
        if (annotation)
            errors.push_back(annotation->where + ": " + annotation_text(*annotation) + ": " + obj +
                             " has no symbol '" + name + "' (" + table.origin() + ")");
        else
            errors.push_back("symbol '" + name + "' is not in " + obj + " (" + table.origin() +
                             ")");
        return std::nullopt;
    }
    unsigned long pos = 0;
    const TargetSymbol* chosen = candidates[0];
    if (annotation && annotation->pos > 0) {
        pos = annotation->pos;
        if (pos > candidates.size()) {
            errors.push_back(annotation->where + ": " + annotation_text(*annotation) +
                             ": bad position: " + obj + " has " +
                             std::to_string(candidates.size()) + " symbol" +
                             (candidates.size() > 1 ? "s" : "") + " named '" + name + "':" +
                             candidates_text(table, candidates) + source_hint(table));
            return std::nullopt;
        }
        chosen = candidates[pos - 1];
    } else if (candidates.size() > 1) {
        errors.push_back("symbol '" + name + "' is ambiguous in " + obj + ": " +
                         std::to_string(candidates.size()) + " symbols have that name:" +
                         candidates_text(table, candidates) + source_hint(table) +
                         "\n  say which with LPSHIM_SYMPOS(" + name + ", \"" + obj +
                         "\", POSITION) from <lpshim/klp-convert.h>" +
                         (annotation ? " instead of " + annotation_text(*annotation) : ""));
        return std::nullopt;
    }
    if (!chosen->core) {
        errors.push_back("symbol '" + name + "' of " + obj + " is in " +
                         (table.is_vmlinux() ? std::string("the kernel's __init memory")
                                             : "section " + chosen->section) +
                         ", which the kernel frees after initialisation: a patch cannot "
                         "reference it");
        return std::nullopt;
    }
    if (!table.is_vmlinux()) {
        // While a module initialises, its kallsyms hold every symbol; afterwards, only those
        // that stay (chosen->core). The position must name the same symbol in both.
        std::vector<const TargetSymbol*> kept;
        for (const auto* c : candidates)
            if (c->core)
                kept.push_back(c);
        const auto at = static_cast<unsigned long>(
            std::find(kept.begin(), kept.end(), chosen) - kept.begin() + 1);
        if (pos == 0 ? kept.size() != 1 : at != pos) {
            errors.push_back("symbol '" + name + "' of " + obj + " has a different position "
                             "while " + obj + " initialises (" +
                             std::to_string(candidates.size()) + " symbols of that name) than "
                             "after (" + std::to_string(kept.size()) + "): lpshim cannot "
                             "resolve it both ways; reference another symbol" +
                             candidates_text(table, candidates));
            return std::nullopt;
        }
    }
    function = chosen->function;
    return pos;
}

struct Resolution {
    std::string object;
    unsigned long pos = 0;
    bool function = false;
    bool exported = false; // a module object's export: its address may be taken
};

// "my_show+0x1a (.text+0x5a)": where a relocation applies, for messages.
std::string location(const ElfObject& ko, std::size_t section, std::uint64_t offset)
{
    const std::string at = ko.sections()[section].name + "+" + hex(offset);
    for (std::size_t i = 1; i < ko.symbol_count(); i++) {
        const Elf64_Sym s = ko.symbol(i);
        if (s.st_shndx == section && ELF64_ST_TYPE(s.st_info) == STT_FUNC &&
            offset >= s.st_value && offset - s.st_value < s.st_size)
            return std::string(ko.symbol_name(s)) + "+" + hex(offset - s.st_value) + " (" + at + ")";
    }
    return at;
}

// A direct call or jump whose 32-bit displacement is at offset: call (E8), jmp (E9), or a
// conditional jump (0F 80..8F). A byte E8/E9 or 80..8F just before a displacement cannot be a
// ModRM byte of a RIP-relative operand (those have mod 00, r/m 101).
bool is_direct_branch(const Section& text, std::uint64_t offset)
{
    if (!(text.header.sh_flags & SHF_EXECINSTR) || offset < 1 || offset > text.data.size())
        return false;
    const auto op = text.data[offset - 1];
    if (op == 0xe8 || op == 0xe9)
        return true;
    return offset >= 2 && text.data[offset - 2] == 0x0f && (op & 0xf0) == 0x80;
}

// Why a module object's relocation cannot go into this section, if it cannot. A module's
// sections are applied when that module loads, long after the kernel has read the patch
// module's special sections (jump labels, static calls, alternatives, exception tables...)
// and run its init: only plain code and data can wait.
std::optional<std::string> late_section_refusal(std::string_view name)
{
    const auto under = [&](std::string_view base) {
        return name == base || starts_with(name, std::string(base) + ".");
    };
    if (starts_with(name, ".data..percpu"))
        return "per-CPU data is copied for each CPU when the patch module loads";
    if (under(".text") || under(".data") || under(".rodata"))
        return std::nullopt;
    if (starts_with(name, ".init") || starts_with(name, ".exit"))
        return "it runs when the patch module loads or unloads, whether the module is there "
               "or not";
    return "the kernel reads it when the patch module loads, before the module's symbols can "
           "be resolved";
}

std::string klp_symbol_name(const std::string& object, const std::string& name, unsigned long pos)
{
    return std::string(klp_sym_prefix) + object + "." + name + "," + std::to_string(pos);
}

std::string klp_section_name(const std::string& object, const std::string& target)
{
    return std::string(klp_rela_prefix) + object + (starts_with(target, ".") ? "" : ".") + target;
}

// Removes the module objects from modinfo's depends= in place, padding with NULs, so that
// nothing else in .modinfo moves (the kernel and modinfo skip the padding).
void drop_dependencies(ElfObject& ko, const std::set<std::string>& objects)
{
    const auto index = ko.find_section(".modinfo");
    if (!index)
        return;
    auto& data = ko.sections()[*index].data;
    const std::string_view all(reinterpret_cast<const char*>(data.data()), data.size());
    const std::string key = "depends=";
    for (std::size_t at = 0; at < all.size();) {
        const auto end = std::min(all.find('\0', at), all.size());
        const auto entry = all.substr(at, end - at);
        if (starts_with(entry, key) && (at == 0 || all[at - 1] == '\0')) {
            std::string kept;
            std::string_view list = entry.substr(key.size());
            while (!list.empty()) {
                const auto comma = list.find(',');
                const auto dep = list.substr(0, comma);
                if (!dep.empty() && !objects.count(std::string(dep)))
                    kept += (kept.empty() ? "" : ",") + std::string(dep);
                list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
            }
            const std::string replacement = key + kept;
            std::fill(data.begin() + static_cast<std::ptrdiff_t>(at),
                      data.begin() + static_cast<std::ptrdiff_t>(end), 0);
            std::copy(replacement.begin(), replacement.end(),
                      data.begin() + static_cast<std::ptrdiff_t>(at));
            return;
        }
        at = end + 1;
    }
}

} // namespace

std::optional<std::string> module_release(const ElfObject& ko)
{
    for (const auto& [key, value] : modinfo_entries(ko)) {
        if (key == "vermagic") {
            const auto space = value.find(' ');
            return value.substr(0, space);
        }
    }
    return std::nullopt;
}

Needs needs(const ElfObject& ko, const Exports& exports, const std::vector<std::string>& modules)
{
    Needs out;
    for (std::size_t i = 1; i < ko.symbol_count(); i++) {
        const Elf64_Sym s = ko.symbol(i);
        const auto name = ko.symbol_name(s);
        if (s.st_shndx != SHN_UNDEF || name.empty())
            continue;
        const auto exporter = exports.exporter(name);
        if (!exporter || std::find(modules.begin(), modules.end(), *exporter) != modules.end())
            out.symbols.emplace_back(name);
    }
    out.annotations = ko.find_section(sympos_section).has_value();
    return out;
}

Report convert(ElfObject& ko, const ConvertInputs& in)
{
    Report report;
    auto& errors = report.errors;
    const Exports empty_exports;
    const Exports& exports = in.exports ? *in.exports : empty_exports;

    auto annotations_read = read_annotations(ko, errors);
    if (!annotations_read) {
        errors.push_back(annotations_read.error().message);
        return report;
    }
    auto& annotations = annotations_read.value();
    const auto annotation_of = [&](std::string_view name) -> Annotation* {
        for (auto& a : annotations)
            if (a.symbol == name)
                return &a;
        return nullptr;
    };
    const auto module_table = [&](std::string_view object) -> const ObjectSymbols* {
        for (const auto* m : in.modules)
            if (m->object() == object)
                return m;
        return nullptr;
    };

    // 1. Resolve every undefined symbol that is not left to the module loader.
    std::map<std::size_t, Resolution> resolved; // symbol index → where it is
    std::set<std::string> late_modules;         // module objects whose exports were converted
    for (std::size_t i = 1; i < ko.symbol_count(); i++) {
        const Elf64_Sym s = ko.symbol(i);
        const std::string name(ko.symbol_name(s));
        if (s.st_shndx != SHN_UNDEF || name.empty())
            continue;
        if (name == "_GLOBAL_OFFSET_TABLE_") {
            errors.push_back("the module is position-independent code (it references "
                             "_GLOBAL_OFFSET_TABLE_): build it with Kbuild, which builds "
                             "modules with -fno-pic -mcmodel=kernel");
            continue;
        }
        if (starts_with(name, klp_sym_prefix)) {
            errors.push_back("symbol '" + name + "' is named like a livepatch symbol but is "
                             "undefined: the module is damaged");
            continue;
        }
        Annotation* annotation = annotation_of(name);
        const auto exporter = exports.exporter(name);
        Resolution r;
        const ObjectSymbols* table = nullptr;
        if (annotation) {
            annotation->used = true;
            r.object = annotation->object;
            table = r.object == "vmlinux" ? in.vmlinux : module_table(r.object);
            if (!table) {
                errors.push_back(annotation->where + ": " + annotation_text(*annotation) + ": " +
                                 (r.object == "vmlinux"
                                      ? std::string("no symbol table of vmlinux (--kallsyms)")
                                      : "'" + r.object + "' is not a module object of this "
                                        "conversion: name it with --module " + r.object));
                continue;
            }
            r.exported = exporter.has_value();
        } else if (exporter) {
            table = module_table(*exporter);
            if (!table)
                continue; // exported by vmlinux or a module the patch may depend on: linked
            // A module object's export: converted too, so that the patch does not pin the
            // module, and can load before it (module-elf-format.rst, late module patching).
            r.object = *exporter;
            r.exported = true;
            late_modules.insert(r.object);
        } else {
            std::vector<const ObjectSymbols*> found;
            if (in.vmlinux && !in.vmlinux->named(name).empty())
                found.push_back(in.vmlinux);
            for (const auto* m : in.modules)
                if (!m->named(name).empty())
                    found.push_back(m);
            if (found.empty()) {
                std::string modules;
                for (const auto* m : in.modules)
                    modules += (modules.empty() ? "" : ", ") + m->object();
                errors.push_back(
                    "unknown symbol '" + name + "': the target kernel does not export it" +
                    (in.vmlinux ? ", and vmlinux has no symbol of that name (" +
                                      in.vmlinux->origin() + ")"
                                : ", and no symbol table of vmlinux was given (--kallsyms)") +
                    (modules.empty() ? "" : ", nor do the module objects (" + modules + ")") +
                    ". Is it misspelt, or did the compiler inline it or rename it "
                    "(name.constprop.0, name.isra.0) in the target kernel? "
                    "(docs/writing-patches.md, 'Symbols that exist'). A symbol of a module "
                    "needs --module NAME.");
                continue;
            }
            if (found.size() > 1) {
                std::string where;
                for (const auto* t : found)
                    where += "\n    " + t->object() + ": " +
                             std::to_string(t->named(name).size()) + " symbol(s)";
                errors.push_back("symbol '" + name + "' is in more than one object:" + where +
                                 "\n  say which with LPSHIM_SYMPOS(" + name +
                                 ", \"OBJECT\", POSITION) from <lpshim/klp-convert.h>");
                continue;
            }
            table = found[0];
            r.object = table->object();
        }
        if (r.object != "vmlinux" && !valid_object_name(r.object)) {
            errors.push_back("module '" + r.object + "' has a name the kernel cannot parse in a "
                             "livepatch symbol (at most 55 characters, no '.')");
            continue;
        }
        if (!valid_symbol_name(name)) {
            errors.push_back("symbol '" + name + "' has a name the kernel cannot parse in a "
                             "livepatch symbol (at most 511 characters, no ',')");
            continue;
        }
        bool function = false;
        const auto pos = resolve_in(*table, name, annotation, function, errors);
        if (!pos)
            continue;
        r.pos = *pos;
        r.function = function;
        resolved[i] = r;
    }
    for (const auto& a : annotations)
        if (!a.used)
            report.warnings.push_back(a.where + ": " + annotation_text(a) +
                                      ": the module does not reference '" + a.symbol +
                                      "' (or it is defined in the module); ignored");
    const bool has_annotations = ko.find_section(sympos_section).has_value();
    if (errors.empty() && resolved.empty() && !has_annotations)
        return report; // nothing to do: the module stays byte for byte as it is

    ElfObject out = ko;

    // 2. Move the relocations against resolved symbols.
    std::map<std::pair<std::size_t, std::string>, std::vector<Elf64_Rela>> moved;
    std::map<std::size_t, std::size_t> relocation_count; // symbol index → relocations moved
    for (std::size_t rs = 1; rs < out.sections().size(); rs++) {
        const Section& rsec = out.sections()[rs];
        const auto type = rsec.header.sh_type;
        if (type != SHT_RELA && type != SHT_REL)
            continue;
        const std::size_t target = rsec.header.sh_info;
        const Section& tsec = out.sections()[target];
        if (!(tsec.header.sh_flags & SHF_ALLOC) || (rsec.header.sh_flags & shf_rela_livepatch))
            continue; // the loader ignores the former; the latter is already a livepatch section
        if (type == SHT_REL) {
            for (std::size_t k = 0; k < rsec.data.size() / sizeof(Elf64_Rel); k++) {
                Elf64_Rel r;
                std::memcpy(&r, rsec.data.data() + k * sizeof(r), sizeof(r));
                if (resolved.count(ELF64_R_SYM(r.r_info)))
                    errors.push_back(location(out, target, r.r_offset) + ": a relocation in " +
                                     rsec.name + " (SHT_REL) against '" +
                                     std::string(out.symbol_name(out.symbol(ELF64_R_SYM(r.r_info)))) +
                                     "': only SHT_RELA sections can be converted");
            }
            continue;
        }
        std::vector<Elf64_Rela> kept;
        bool changed = false;
        for (std::size_t k = 0; k < out.rela_count(rs); k++) {
            const Elf64_Rela r = out.rela(rs, k);
            const auto sym_index = ELF64_R_SYM(r.r_info);
            const auto it = resolved.find(sym_index);
            if (it == resolved.end()) {
                kept.push_back(r);
                continue;
            }
            changed = true;
            const Resolution& res = it->second;
            const std::string name(out.symbol_name(out.symbol(sym_index)));
            const auto rtype = static_cast<std::uint32_t>(ELF64_R_TYPE(r.r_info));
            const std::string where = location(out, target, r.r_offset);
            const std::string what = "'" + name + "' (" + res.object + ")";
            if (!handled_types.count(rtype)) {
                errors.push_back(where + ": relocation " + relocation_type_name(rtype) +
                                 " against " + what + ": the converter handles only " +
                                 handled_types_text() +
                                 "; build the patch as Kbuild builds modules (no -fpic, "
                                 "-mcmodel=kernel)");
                continue;
            }
            if (res.function && !res.exported &&
                !((rtype == R_X86_64_PC32 || rtype == R_X86_64_PLT32) && r.r_addend == -4 &&
                  is_direct_branch(tsec, r.r_offset))) {
                errors.push_back(
                    where + ": takes the address of function " + what + ", which is not "
                    "exported (" + relocation_type_name(rtype) + "). Only a direct call or "
                    "jump to it can be converted: with IBT (CONFIG_X86_KERNEL_IBT) the kernel "
                    "seals the functions whose address it never takes, and an indirect call "
                    "to one faults. Call it directly, or patch its caller "
                    "(docs/writing-patches.md, 'IBT')");
                continue;
            }
            if (res.object != "vmlinux")
                if (const auto why = late_section_refusal(tsec.name)) {
                    errors.push_back(where + ": a reference to " + what + " in section " +
                                     tsec.name + ": it can only be resolved when " + res.object +
                                     " loads, and " + *why + ". Reference it from code");
                    continue;
                }
            moved[{target, res.object}].push_back(r);
            relocation_count[sym_index]++;
        }
        if (changed)
            out.set_relas(rs, kept);
    }
    if (!errors.empty())
        return report;

    // 3. The symbols become livepatch symbols, in place: their indices are what the moved
    // relocations refer to, and the kernel keeps a livepatch module's symbol table as it is.
    for (const auto& [index, res] : resolved) {
        Elf64_Sym s = out.symbol(index);
        const std::string name(out.symbol_name(s));
        s.st_name = out.add_symbol_string(klp_symbol_name(res.object, name, res.pos));
        s.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_NOTYPE);
        s.st_shndx = shn_livepatch;
        s.st_value = 0;
        s.st_size = 0;
        out.set_symbol(index, s);
        report.converted.push_back({name, res.object, res.pos, relocation_count[index]});
    }

    // 4. One livepatch relocation section per object and section.
    for (auto& [key, relas] : moved) {
        const auto& [target, object] = key;
        Section s;
        s.name = klp_section_name(object, out.sections()[target].name);
        s.header.sh_type = SHT_RELA;
        s.header.sh_flags = SHF_ALLOC | SHF_INFO_LINK | shf_rela_livepatch;
        s.header.sh_link = static_cast<Elf64_Word>(out.symtab_index());
        s.header.sh_info = static_cast<Elf64_Word>(target);
        s.header.sh_addralign = 8;
        s.header.sh_entsize = sizeof(Elf64_Rela);
        s.data.resize(relas.size() * sizeof(Elf64_Rela));
        std::memcpy(s.data.data(), relas.data(), s.data.size());
        out.add_section(std::move(s));
    }

    // 5. The annotations have been read: they are no part of the module.
    if (const auto index = out.find_section(sympos_section)) {
        for (std::size_t i = 1; i < out.sections().size(); i++) {
            const auto& h = out.sections()[i].header;
            if ((h.sh_type == SHT_RELA || h.sh_type == SHT_REL) && h.sh_info == *index) {
                errors.push_back("the section " + std::string(sympos_section) +
                                 " has relocations: it was not written by LPSHIM_SYMPOS()");
                return report;
            }
        }
        if (auto removed = out.remove_section(*index); !removed) {
            errors.push_back(removed.error().message);
            return report;
        }
    }

    // 6. modinfo: the module loader keeps the ELF information that lpshim needs only for a
    // module that says livepatch=Y; and the module objects are no longer dependencies.
    if (!report.converted.empty()) {
        bool livepatch = false;
        for (const auto& [k, v] : modinfo_entries(out))
            livepatch = livepatch || (k == "livepatch" && v == "Y");
        if (!livepatch) {
            errors.push_back("the module's modinfo lacks livepatch=Y, without "
                             "which the kernel neither applies nor keeps its livepatch "
                             "relocations: mark it with LPSHIM_PATCH_MODULE() (or "
                             "MODULE_INFO(livepatch, \"Y\"))");
            return report;
        }
        drop_dependencies(out, late_modules);
    }

    if (auto valid = out.validate(); !valid) {
        errors.push_back("internal error: the converted module is malformed: " +
                         valid.error().message);
        return report;
    }
    if (auto valid = verify_livepatch_elf(out); !valid) {
        errors.push_back("internal error: " + valid.error().message);
        return report;
    }
    report.changed = true;
    ko = std::move(out);
    return report;
}

Result<void> verify_livepatch_elf(const ElfObject& ko)
{
    const auto fail = [&](const std::string& what) {
        return Error{EINVAL, ko.origin() + ": " + what};
    };
    // symbol index → its object, for livepatch symbols
    std::map<std::size_t, std::string> object_of;
    for (std::size_t i = 1; i < ko.symbol_count(); i++) {
        const Elf64_Sym s = ko.symbol(i);
        const std::string_view name = ko.symbol_name(s);
        const bool marked = s.st_shndx == shn_livepatch;
        if (!marked && !starts_with(name, klp_sym_prefix))
            continue;
        if (!marked)
            return fail("symbol '" + std::string(name) + "' is named like a livepatch symbol "
                        "but is not in SHN_LIVEPATCH");
        // .klp.sym.OBJECT.NAME,POS
        std::string_view rest = name.substr(std::min(name.size(), klp_sym_prefix.size()));
        const auto dot = rest.find('.');
        const auto comma = rest.rfind(',');
        if (!starts_with(name, klp_sym_prefix) || dot == std::string_view::npos ||
            comma == std::string_view::npos || comma < dot)
            return fail("livepatch symbol '" + std::string(name) + "' is not "
                        ".klp.sym.OBJECT.NAME,POSITION");
        const auto object = rest.substr(0, dot);
        const auto symbol = rest.substr(dot + 1, comma - dot - 1);
        const auto pos = rest.substr(comma + 1);
        unsigned long value = 0;
        const auto [ptr, ec] = std::from_chars(pos.data(), pos.data() + pos.size(), value);
        if (!valid_object_name(object) || !valid_symbol_name(symbol) || pos.empty() ||
            ec != std::errc() || ptr != pos.data() + pos.size())
            return fail("livepatch symbol '" + std::string(name) + "' has a name the kernel "
                        "cannot parse");
        object_of[i] = std::string(object);
    }
    for (std::size_t i = 1; i < ko.sections().size(); i++) {
        const Section& s = ko.sections()[i];
        const bool marked = s.header.sh_flags & shf_rela_livepatch;
        if (!marked && starts_with(s.name, klp_rela_prefix))
            return fail("section '" + s.name + "' is named like a livepatch relocation section "
                        "but lacks SHF_RELA_LIVEPATCH");
        if (!marked) {
            if (s.header.sh_type != SHT_RELA && s.header.sh_type != SHT_REL)
                continue;
            if (!(ko.sections()[s.header.sh_info].header.sh_flags & SHF_ALLOC))
                continue;
            const std::size_t entsize = s.header.sh_type == SHT_RELA ? sizeof(Elf64_Rela)
                                                                     : sizeof(Elf64_Rel);
            for (std::size_t off = 0; off < s.data.size(); off += entsize) {
                Elf64_Rel r;
                std::memcpy(&r, s.data.data() + off, sizeof(r));
                if (object_of.count(ELF64_R_SYM(r.r_info)))
                    return fail("section '" + s.name + "' relocates against livepatch symbol '" +
                                std::string(ko.symbol_name(ko.symbol(ELF64_R_SYM(r.r_info)))) +
                                "', which the module loader cannot resolve");
            }
            continue;
        }
        if (s.header.sh_type != SHT_RELA || !(s.header.sh_flags & SHF_ALLOC))
            return fail("livepatch relocation section '" + s.name + "' is not an allocated "
                        "SHT_RELA section");
        if (!starts_with(s.name, klp_rela_prefix))
            return fail("livepatch relocation section '" + s.name + "' is not named "
                        ".klp.rela.OBJECT.SECTION");
        const std::string_view rest = std::string_view(s.name).substr(klp_rela_prefix.size());
        const auto dot = rest.find('.');
        if (dot == std::string_view::npos || dot + 1 == rest.size() ||
            !valid_object_name(rest.substr(0, dot)))
            return fail("livepatch relocation section '" + s.name + "' is not named "
                        ".klp.rela.OBJECT.SECTION");
        const std::string object(rest.substr(0, dot));
        if (!(ko.sections()[s.header.sh_info].header.sh_flags & SHF_ALLOC))
            return fail("livepatch relocation section '" + s.name + "' applies to a section "
                        "the kernel does not load");
        for (std::size_t k = 0; k < ko.rela_count(i); k++) {
            const Elf64_Rela r = ko.rela(i, k);
            const auto sym = ELF64_R_SYM(r.r_info);
            const auto it = object_of.find(sym);
            if (it == object_of.end())
                return fail("livepatch relocation section '" + s.name + "' refers to '" +
                            std::string(ko.symbol_name(ko.symbol(sym))) +
                            "', which is not a livepatch symbol");
            if (it->second != object)
                return fail("livepatch relocation section '" + s.name + "' refers to '" +
                            std::string(ko.symbol_name(ko.symbol(sym))) +
                            "' of another object");
            if (!handled_types.count(static_cast<std::uint32_t>(ELF64_R_TYPE(r.r_info))))
                return fail("livepatch relocation section '" + s.name + "' has a relocation " +
                            relocation_type_name(static_cast<std::uint32_t>(ELF64_R_TYPE(r.r_info))) +
                            ", which lpshim does not apply");
        }
    }
    return {};
}

} // namespace klpconvert
