// SPDX-License-Identifier: GPL-2.0-only
//
// lpshim-klp-convert on fixture objects (fixtures/, built by meson.build): resolution,
// ambiguity, annotations, positions, unknown symbols, relocation types, IBT, module objects,
// modules left alone, and malformed input that must never crash or yield a broken module.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "converter.hpp"
#include "file_io.hpp"

using namespace klpconvert;

namespace {

std::string fixture_path(const std::string& name)
{
    const char* dir = std::getenv("KLP_FIXTURES");
    REQUIRE_MESSAGE(dir, "KLP_FIXTURES is not set: run the test through meson");
    return std::string(dir) + "/" + name;
}

std::string source_path(const std::string& name)
{
    const char* dir = std::getenv("KLP_FIXTURE_SRC");
    REQUIRE_MESSAGE(dir, "KLP_FIXTURE_SRC is not set: run the test through meson");
    return std::string(dir) + "/" + name;
}

std::vector<std::uint8_t> bytes_of(const std::string& path)
{
    auto data = read_file(path);
    REQUIRE_MESSAGE(data.ok(), (data.ok() ? "" : data.error().message));
    return data.value();
}

std::string text_of(const std::string& path)
{
    const auto data = bytes_of(path);
    return std::string(data.begin(), data.end());
}

ElfObject load(const std::string& name)
{
    const auto data = bytes_of(fixture_path(name));
    auto elf = ElfObject::parse(data, name);
    REQUIRE_MESSAGE(elf.ok(), (elf.ok() ? "" : elf.error().message));
    return std::move(elf).value();
}

// The fixture kernel: its exports, vmlinux, and the module object "mytarget".
struct Kernel {
    Exports exports;
    ObjectSymbols vmlinux;
    ObjectSymbols mytarget;

    static Kernel make()
    {
        Exports e;
        const auto symvers = text_of(source_path("Module.symvers"));
        REQUIRE(e.add_symvers(symvers, "Module.symvers").ok());
        auto v = ObjectSymbols::from_kallsyms(text_of(source_path("kallsyms")), "kallsyms");
        REQUIRE(v.ok());
        const ElfObject target = load("target.o");
        auto m = ObjectSymbols::from_module(target, "mytarget");
        REQUIRE(m.ok());
        return Kernel{std::move(e), std::move(v).value(), std::move(m).value()};
    }

    ConvertInputs inputs(bool with_module = true) const
    {
        ConvertInputs in;
        in.exports = &exports;
        in.vmlinux = &vmlinux;
        if (with_module)
            in.modules.push_back(&mytarget);
        return in;
    }
};

std::string all(const std::vector<std::string>& lines)
{
    std::string out;
    for (const auto& l : lines)
        out += l + "\n";
    return out;
}

std::optional<Elf64_Sym> symbol_named(const ElfObject& elf, std::string_view name)
{
    for (std::size_t i = 1; i < elf.symbol_count(); i++)
        if (elf.symbol_name(elf.symbol(i)) == name)
            return elf.symbol(i);
    return std::nullopt;
}

// The names of the symbols that the relocations of a section refer to, in order.
std::vector<std::string> relocation_symbols(const ElfObject& elf, const std::string& section)
{
    std::vector<std::string> out;
    const auto index = elf.find_section(section);
    if (!index)
        return out;
    for (std::size_t k = 0; k < elf.rela_count(*index); k++)
        out.emplace_back(elf.symbol_name(elf.symbol(ELF64_R_SYM(elf.rela(*index, k).r_info))));
    return out;
}

// Converts, writes, reads back: what the tool does with a module it accepts.
ElfObject convert_and_reread(ElfObject elf, const ConvertInputs& in, Report& report)
{
    report = convert(elf, in);
    REQUIRE_MESSAGE(report.errors.empty(), all(report.errors));
    auto bytes = elf.serialize();
    REQUIRE_MESSAGE(bytes.ok(), (bytes.ok() ? "" : bytes.error().message));
    auto reread = ElfObject::parse(bytes.value(), "converted");
    REQUIRE_MESSAGE(reread.ok(), (reread.ok() ? "" : reread.error().message));
    const auto verified = verify_livepatch_elf(reread.value());
    REQUIRE_MESSAGE(verified.ok(), (verified.ok() ? "" : verified.error().message));
    return std::move(reread).value();
}

Report refused(const std::string& fixture, bool with_module = false)
{
    const Kernel k = Kernel::make();
    ElfObject elf = load(fixture);
    const auto before = elf.serialize();
    Report report = convert(elf, k.inputs(with_module));
    CHECK_FALSE(report.errors.empty());
    CHECK_FALSE(report.changed);
    CHECK(elf.serialize().value() == before.value()); // left as it was
    return report;
}

} // namespace

TEST_CASE("kallsyms: vmlinux's lines in order; modules' and pseudo-modules' are left out")
{
    auto t = ObjectSymbols::from_kallsyms(text_of(source_path("kallsyms")), "kallsyms");
    REQUIRE(t.ok());
    CHECK(t->release() == "6.1.0-test");
    CHECK(t->version() == "#1 SMP fixture");
    CHECK_FALSE(t->addresses_hidden());
    const auto dups = t->named("dup_fn");
    REQUIRE(dups.size() == 2);
    CHECK(dups[0]->address == 0xffffffff81001100);
    CHECK(dups[1]->address == 0xffffffff81001400);
    CHECK(dups[0]->function);
    CHECK(t->named("mod_fn").empty());
    CHECK(t->named("bpf_prog_abc").empty());
    CHECK_FALSE(t->named("static_var")[0]->function);
    CHECK_FALSE(t->named("init_only_fn")[0]->core);
    CHECK(t->named("static_fn")[0]->core);
}

TEST_CASE("kallsyms: a line that is not /proc/kallsyms's is refused with its number")
{
    auto t = ObjectSymbols::from_kallsyms("ffffffff81000000 T _text\nnonsense\n", "k");
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().message.find("k:2: not a line of /proc/kallsyms") == 0);
    CHECK_FALSE(ObjectSymbols::from_kallsyms("", "k").ok());
    CHECK_FALSE(ObjectSymbols::from_kallsyms("zz T name\n", "k").ok());
    CHECK_FALSE(ObjectSymbols::from_kallsyms("ffff T name\t[mod\n", "k").ok());
    // Captured without root: every address 0; the order is what counts.
    auto hidden = ObjectSymbols::from_kallsyms(
        "0000000000000000 t a\n0000000000000000 t a\n", "k");
    REQUIRE(hidden.ok());
    CHECK(hidden->addresses_hidden());
    CHECK(hidden->named("a").size() == 2);
}

TEST_CASE("Module.symvers: each export's module by name")
{
    Exports e;
    REQUIRE(e.add_symvers(text_of(source_path("Module.symvers")), "Module.symvers").ok());
    CHECK(e.exporter("exported_fn") == "vmlinux");
    CHECK(e.exporter("target_exported") == "mytarget");
    CHECK_FALSE(e.exporter("static_fn"));
    CHECK_FALSE(e.add_symvers("not\ta symvers line\n", "x").ok());
}

TEST_CASE("a module that references only exported symbols is left as it is")
{
    const Kernel k = Kernel::make();
    ElfObject elf = load("exported.o");
    const auto before = elf.serialize().value();
    CHECK(needs(elf, k.exports, {"mytarget"}).symbols.empty());
    CHECK_FALSE(needs(elf, k.exports, {}).annotations);
    const Report report = convert(elf, k.inputs());
    CHECK(report.errors.empty());
    CHECK_FALSE(report.changed);
    CHECK(report.converted.empty());
    CHECK(elf.serialize().value() == before);
}

TEST_CASE("resolution: unexported vmlinux symbols become livepatch symbols and relocations")
{
    const Kernel k = Kernel::make();
    Report report;
    const ElfObject out = convert_and_reread(load("convert.o"), k.inputs(), report);
    CHECK(report.changed);
    REQUIRE(report.converted.size() == 3);

    for (const char* name : {".klp.sym.vmlinux.static_fn,0", ".klp.sym.vmlinux.static_var,0",
                             ".klp.sym.vmlinux.static_array,0"}) {
        const auto sym = symbol_named(out, name);
        REQUIRE_MESSAGE(sym, name);
        CHECK(sym->st_shndx == shn_livepatch);
        CHECK(ELF64_ST_BIND(sym->st_info) == STB_GLOBAL);
    }
    CHECK_FALSE(symbol_named(out, "static_fn"));
    // The exported function stays a plain undefined symbol, linked by the module loader.
    const auto exported = symbol_named(out, "exported_fn");
    REQUIRE(exported);
    CHECK(exported->st_shndx == SHN_UNDEF);
    CHECK(relocation_symbols(out, ".rela.text") == std::vector<std::string>{"exported_fn"});
    CHECK(relocation_symbols(out, ".rela.data").empty());

    const auto text = out.find_section(".klp.rela.vmlinux.text");
    REQUIRE(text);
    const auto& h = out.sections()[*text].header;
    CHECK(h.sh_type == SHT_RELA);
    CHECK((h.sh_flags & (SHF_ALLOC | shf_rela_livepatch)) == (SHF_ALLOC | shf_rela_livepatch));
    CHECK(h.sh_link == out.symtab_index());
    CHECK(out.sections()[h.sh_info].name == ".text");
    CHECK(out.rela_count(*text) == 4);
    const auto data = out.find_section(".klp.rela.vmlinux.data");
    REQUIRE(data);
    CHECK(relocation_symbols(out, ".klp.rela.vmlinux.data") ==
          std::vector<std::string>{".klp.sym.vmlinux.static_var,0"});
}

TEST_CASE("relocation types: PC32, PLT32 (call and jump), 32S and 64 are moved as they are")
{
    const Kernel k = Kernel::make();
    ElfObject before = load("convert.o");
    Report report;
    const ElfObject out = convert_and_reread(before, k.inputs(), report);
    std::multiset<std::uint32_t> types;
    for (const char* s : {".klp.rela.vmlinux.text", ".klp.rela.vmlinux.data"}) {
        const auto index = out.find_section(s);
        REQUIRE(index);
        for (std::size_t i = 0; i < out.rela_count(*index); i++)
            types.insert(static_cast<std::uint32_t>(ELF64_R_TYPE(out.rela(*index, i).r_info)));
    }
    CHECK(types == std::multiset<std::uint32_t>{R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_PLT32,
                                                 R_X86_64_32S, R_X86_64_64});
    // Offsets and addends are the compiler's: only the section changed.
    const auto orig = *before.find_section(".rela.text");
    const auto moved = *out.find_section(".klp.rela.vmlinux.text");
    for (std::size_t i = 0, j = 0; i < before.rela_count(orig); i++) {
        const auto r = before.rela(orig, i);
        if (before.symbol_name(before.symbol(ELF64_R_SYM(r.r_info))) == "exported_fn")
            continue;
        const auto m = out.rela(moved, j++);
        CHECK(m.r_offset == r.r_offset);
        CHECK(m.r_addend == r.r_addend);
        CHECK(ELF64_R_TYPE(m.r_info) == ELF64_R_TYPE(r.r_info));
    }
}

TEST_CASE("debug information, compressed or not, is kept as it is")
{
    const Kernel k = Kernel::make();
    const ElfObject in = load("convert_debug.o");
    Report report;
    const ElfObject out = convert_and_reread(in, k.inputs(), report);
    for (const auto& s : in.sections()) {
        if (s.name.rfind(".debug_", 0) != 0)
            continue;
        const auto index = out.find_section(s.name);
        REQUIRE_MESSAGE(index, s.name);
        CHECK(out.sections()[*index].data == s.data);
        CHECK(out.sections()[*index].header.sh_flags == s.header.sh_flags);
    }
}

TEST_CASE("relocation types: anything else is refused by name")
{
    const Report r = refused("badtype.o");
    CHECK(all(r.errors).find("relocation R_X86_64_REX_GOTPCRELX against 'static_var' (vmlinux)") !=
          std::string::npos);
    CHECK(all(r.errors).find("position-independent") != std::string::npos);
}

TEST_CASE("ambiguity: refused, with every candidate")
{
    const Report r = refused("ambiguous.o");
    REQUIRE(r.errors.size() == 1);
    const auto& e = r.errors[0];
    CHECK(e.find("symbol 'dup_fn' is ambiguous in vmlinux: 2 symbols have that name") == 0);
    CHECK(e.find("1: ffffffff81001100 t dup_fn (after static_fn, before dup_data_neighbour)") !=
          std::string::npos);
    CHECK(e.find("2: ffffffff81001400 t dup_fn (after other_fn, before both_fn)") !=
          std::string::npos);
    CHECK(e.find("LPSHIM_SYMPOS(dup_fn, \"vmlinux\", POSITION)") != std::string::npos);
}

TEST_CASE("annotation: LPSHIM_SYMPOS() names the position, and its section goes")
{
    const Kernel k = Kernel::make();
    ElfObject in = load("annotated.o");
    CHECK(needs(in, k.exports, {}).annotations);
    Report report;
    const ElfObject out = convert_and_reread(in, k.inputs(false), report);
    CHECK(symbol_named(out, ".klp.sym.vmlinux.dup_fn,2"));
    CHECK_FALSE(out.find_section(sympos_section));
    CHECK(report.warnings.empty());
}

TEST_CASE("annotation: a position past the candidates is refused")
{
    const Report r = refused("badpos.o");
    REQUIRE(r.errors.size() == 1);
    // Named by __FILE__, the path the compiler was given (relative to meson's build dir here).
    CHECK(r.errors[0].find("fixtures/badpos.c:5: LPSHIM_SYMPOS(dup_fn, \"vmlinux\", 3): bad position: "
                           "vmlinux has 2 symbols named 'dup_fn'") != std::string::npos);
}

TEST_CASE("annotation: an object that is not part of the conversion is refused")
{
    const Report r = refused("annotated_module_missing.o");
    CHECK(all(r.errors).find("'nosuchmod' is not a module object of this conversion") !=
          std::string::npos);
}

TEST_CASE("annotation: one for a symbol the module does not use is a warning")
{
    const Kernel k = Kernel::make();
    Report report;
    const ElfObject out = convert_and_reread(load("unused_annotation.o"), k.inputs(), report);
    REQUIRE(report.warnings.size() == 1);
    CHECK(report.warnings[0].find("LPSHIM_SYMPOS(static_fn, \"vmlinux\", 0): the module does not "
                                  "reference 'static_fn'") != std::string::npos);
    // An annotated export is converted as the annotation says.
    CHECK(symbol_named(out, ".klp.sym.vmlinux.exported_fn,0"));
}

TEST_CASE("an unknown symbol is refused")
{
    const Report r = refused("unknown.o");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find("unknown symbol 'no_such_symbol': the target kernel does not export "
                           "it, and vmlinux has no symbol of that name") == 0);
}

TEST_CASE("no vmlinux symbols: a symbol that needs them is refused")
{
    const Kernel k = Kernel::make();
    ElfObject elf = load("convert.o");
    ConvertInputs in = k.inputs(false);
    in.vmlinux = nullptr;
    const Report r = convert(elf, in);
    CHECK(all(r.errors).find("no symbol table of vmlinux was given (--kallsyms)") !=
          std::string::npos);
}

TEST_CASE("IBT: the address of a function that is not exported is refused")
{
    const Report data = refused("ibt_data.o");
    CHECK(all(data.errors).find(".data+0x0: takes the address of function 'static_fn' (vmlinux), "
                                "which is not exported (R_X86_64_64)") == 0);
    const Report code = refused("ibt_code.o");
    CHECK(all(code.errors).find("address_of_static_fn+0x3 (.text+0x3): takes the address of "
                                "function 'static_fn' (vmlinux), which is not exported "
                                "(R_X86_64_32S)") == 0);
}

TEST_CASE("__init symbols of vmlinux are refused")
{
    const Report r = refused("init.o");
    CHECK(all(r.errors).find("symbol 'init_only_fn' of vmlinux is in the kernel's __init memory") ==
          0);
}

TEST_CASE("a module without modinfo livepatch=Y is refused")
{
    const Report r = refused("nolivepatch.o");
    CHECK(all(r.errors).find("lacks livepatch=Y") != std::string::npos);
}

TEST_CASE("module object: its static and exported symbols, in a section of its own")
{
    const Kernel k = Kernel::make();
    Report report;
    const ElfObject out = convert_and_reread(load("modpatch.o"), k.inputs(), report);
    CHECK(relocation_symbols(out, ".klp.rela.mytarget.text") ==
          std::vector<std::string>{".klp.sym.mytarget.target_static,0",
                                   ".klp.sym.mytarget.target_data,0",
                                   ".klp.sym.mytarget.target_exported,0"});
    // vmlinux's symbols go to vmlinux's section: the kernel refuses them in a module's.
    CHECK(relocation_symbols(out, ".klp.rela.vmlinux.text") ==
          std::vector<std::string>{".klp.sym.vmlinux.static_var,0"});
    // The module's export is converted, so the patch no longer depends on the module.
    std::string depends;
    for (const auto& [key, value] : modinfo_entries(out))
        if (key == "depends")
            depends = value;
    CHECK(depends == "lpshim,other");
}

TEST_CASE("module object: a duplicate name is refused with the source files")
{
    const Report r = refused("modtwin.o", true);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find("1: t twin in .text, from target_a.c") != std::string::npos);
    CHECK(r.errors[0].find("2: t twin in .text, from target_b.c") != std::string::npos);

    const Kernel k = Kernel::make();
    Report report;
    const ElfObject out = convert_and_reread(load("modtwin_annotated.o"), k.inputs(), report);
    CHECK(symbol_named(out, ".klp.sym.mytarget.twin,2"));
}

TEST_CASE("module object: a name in vmlinux and in the module needs an annotation")
{
    const Report r = refused("modboth.o", true);
    CHECK(all(r.errors).find("symbol 'both_fn' is in more than one object") == 0);

    const Kernel k = Kernel::make();
    Report report;
    const ElfObject out = convert_and_reread(load("modboth_annotated.o"), k.inputs(), report);
    CHECK(symbol_named(out, ".klp.sym.mytarget.both_fn,0"));
}

TEST_CASE("module object: sections the kernel reads at the patch's load are refused")
{
    const Report r = refused("modjump.o", true);
    CHECK(all(r.errors).find("__jump_table+0x0: a reference to 'target_data' (mytarget) in "
                             "section __jump_table") == 0);
}

TEST_CASE("module object: init symbols, and positions that change after init, are refused")
{
    const Report init = refused("modinit.o", true);
    CHECK(all(init.errors).find("symbol 'init_fn' of mytarget is in section .init.text") == 0);
    const Report split = refused("modsplit_annotated.o", true);
    CHECK(all(split.errors).find("symbol 'split_sym' of mytarget has a different position while "
                                 "mytarget initialises (2 symbols of that name) than after (1)") ==
          0);
}

TEST_CASE("the conversion is deterministic")
{
    const Kernel k = Kernel::make();
    ElfObject a = load("modpatch.o");
    ElfObject b = load("modpatch.o");
    REQUIRE(convert(a, k.inputs()).errors.empty());
    REQUIRE(convert(b, k.inputs()).errors.empty());
    CHECK(a.serialize().value() == b.serialize().value());
    // A converted module needs nothing more: converting it again changes nothing.
    const auto once = a.serialize().value();
    CHECK(convert(a, k.inputs()).changed == false);
    CHECK(a.serialize().value() == once);
}

TEST_CASE("verify: what the kernel would refuse is caught")
{
    const Kernel k = Kernel::make();
    ElfObject elf = load("convert.o");
    REQUIRE(convert(elf, k.inputs()).changed);
    SUBCASE("a malformed symbol name")
    {
        for (std::size_t i = 1; i < elf.symbol_count(); i++) {
            Elf64_Sym s = elf.symbol(i);
            if (s.st_shndx == shn_livepatch) {
                s.st_name = elf.add_symbol_string(".klp.sym.vmlinux.static_fn");
                elf.set_symbol(i, s);
                break;
            }
        }
        CHECK_FALSE(verify_livepatch_elf(elf).ok());
    }
    SUBCASE("a malformed section name")
    {
        elf.sections()[*elf.find_section(".klp.rela.vmlinux.text")].name = ".klp.rela.vmlinux";
        CHECK_FALSE(verify_livepatch_elf(elf).ok());
    }
    SUBCASE("a livepatch symbol left in a normal relocation section")
    {
        const auto klp = *elf.find_section(".klp.rela.vmlinux.text");
        elf.sections()[klp].header.sh_flags &= ~shf_rela_livepatch;
        elf.sections()[klp].name = ".rela.text2";
        CHECK_FALSE(verify_livepatch_elf(elf).ok());
    }
}

// Truncated and corrupted modules: every outcome is an error or a module that verifies.
TEST_CASE("malformed ELF input never crashes the converter nor yields a broken module")
{
    const Kernel k = Kernel::make();
    for (const char* name : {"convert.o", "modpatch.o", "annotated.o"}) {
        const auto good = bytes_of(fixture_path(name));
        const auto attempt = [&](const std::vector<std::uint8_t>& bytes) {
            auto elf = ElfObject::parse(bytes, "mutant");
            if (!elf.ok())
                return;
            const Report r = convert(elf.value(), k.inputs());
            if (!r.errors.empty() || !r.changed)
                return;
            auto out = elf->serialize();
            REQUIRE_MESSAGE(out.ok(), (out.ok() ? "" : out.error().message));
            auto reread = ElfObject::parse(out.value(), "mutant-out");
            REQUIRE(reread.ok());
            REQUIRE(verify_livepatch_elf(reread.value()).ok());
        };
        for (std::size_t len = 0; len < good.size(); len += 13)
            attempt(std::vector<std::uint8_t>(good.begin(), good.begin() + static_cast<long>(len)));
        std::mt19937 rng(1234);
        for (int n = 0; n < 3000; n++) {
            auto bytes = good;
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int f = 0; f < flips; f++)
                bytes[rng() % bytes.size()] = static_cast<std::uint8_t>(rng());
            attempt(bytes);
        }
    }
}

TEST_CASE("remove_section renumbers links, targets and symbols")
{
    ElfObject elf = load("annotated.o");
    const auto sympos = *elf.find_section(sympos_section);
    const auto text = *elf.find_section(".text");
    const auto rela = *elf.find_section(".rela.text");
    const std::string symtab_name = elf.sections()[elf.symtab_index()].name;
    REQUIRE(elf.remove_section(sympos).ok());
    CHECK_FALSE(elf.find_section(sympos_section));
    const auto new_rela = *elf.find_section(".rela.text");
    CHECK(elf.sections()[elf.sections()[new_rela].header.sh_info].name == ".text");
    CHECK(elf.sections()[elf.symtab_index()].name == symtab_name);
    CHECK(elf.validate().ok());
    CHECK((text < sympos ? new_rela == rela : true));
    // The symbol table, its strings and the section names cannot go.
    CHECK_FALSE(elf.remove_section(elf.symtab_index()).ok());
}
