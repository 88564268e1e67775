// SPDX-License-Identifier: GPL-2.0-only
//
// klp-mangle: damage a converted patch module on purpose, for the refusal cases
// (tests/vm/cases/klp-refusals.sh): what lpshim-klp-convert never writes, the kernel and lpshim
// must still refuse.
//
//   klp-mangle IN OUT [--rename-module OLD NEW] [--rename-symbol OLD NEW]
//                     [--rename-section OLD NEW] [--relocation-type SECTION TYPE]
//                     [--relocation-offset SECTION OFFSET]
//                     [--replace-modinfo KEY=VALUE KEY=VALUE]
//
// --rename-module gives the copy a name of its own (modinfo name= and the name in
// .gnu.linkonce.this_module), no longer than the original's.
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "elf_object.hpp"
#include "file_io.hpp"

using namespace klpconvert;

namespace {

// struct module starts with enum module_state (4 bytes, padded to 8) and struct list_head
// (16 bytes): its name is at offset 24 on x86-64, as on every kernel since 2.6.
constexpr std::size_t module_name_offset = 24;
constexpr std::size_t module_name_len = 56;

[[noreturn]] void die(const std::string& message)
{
    std::fprintf(stderr, "klp-mangle: %s\n", message.c_str());
    std::exit(1);
}

void replace_padded(std::vector<std::uint8_t>& data, std::size_t at, std::size_t len,
                    const std::string& with)
{
    if (with.size() > len)
        die("'" + with + "' is longer than what it replaces");
    std::fill(data.begin() + static_cast<long>(at), data.begin() + static_cast<long>(at + len), 0);
    std::copy(with.begin(), with.end(), data.begin() + static_cast<long>(at));
}

void rename_module(ElfObject& elf, const std::string& from, const std::string& to)
{
    const auto modinfo = elf.find_section(".modinfo");
    const auto this_module = elf.find_section(".gnu.linkonce.this_module");
    if (!modinfo || !this_module)
        die("not a kernel module");
    auto& m = elf.sections()[*this_module].data;
    if (m.size() < module_name_offset + module_name_len ||
        std::string(reinterpret_cast<const char*>(m.data() + module_name_offset)) != from)
        die("the module is not named '" + from + "'");
    replace_padded(m, module_name_offset, module_name_len - 1, to);
    auto& info = elf.sections()[*modinfo].data;
    const std::string key = "name=" + from;
    const std::string all(info.begin(), info.end());
    const auto at = all.find(key + '\0');
    if (at == std::string::npos || (at && all[at - 1]))
        die("no modinfo " + key);
    replace_padded(info, at, key.size(), "name=" + to);
}

// Replaces the modinfo entry OLD ("key=value") with NEW, no longer, in place.
void replace_modinfo(ElfObject& elf, const std::string& from, const std::string& to)
{
    const auto modinfo = elf.find_section(".modinfo");
    if (!modinfo)
        die("not a kernel module");
    auto& info = elf.sections()[*modinfo].data;
    const std::string all(info.begin(), info.end());
    const auto at = all.find(from + '\0');
    if (at == std::string::npos || (at && all[at - 1]))
        die("no modinfo " + from);
    replace_padded(info, at, from.size(), to);
}

void rename_symbol(ElfObject& elf, const std::string& from, const std::string& to)
{
    for (std::size_t i = 1; i < elf.symbol_count(); i++) {
        Elf64_Sym s = elf.symbol(i);
        if (elf.symbol_name(s) == from) {
            s.st_name = elf.add_symbol_string(to);
            elf.set_symbol(i, s);
            return;
        }
    }
    die("no symbol '" + from + "'");
}

// Every relocation of SECTION changed by CHANGE.
template <typename Change>
void change_relocations(ElfObject& elf, const std::string& section, Change change)
{
    const auto index = elf.find_section(section);
    if (!index || elf.sections()[*index].header.sh_type != SHT_RELA)
        die("no relocation section '" + section + "'");
    std::vector<Elf64_Rela> relas;
    for (std::size_t k = 0; k < elf.rela_count(*index); k++) {
        Elf64_Rela r = elf.rela(*index, k);
        change(r);
        relas.push_back(r);
    }
    elf.set_relas(*index, relas);
}

// Every relocation of SECTION in the ELF file BYTES (written by ElfObject, so well formed) at
// OFFSET.
void set_relocation_offsets(std::vector<std::uint8_t>& bytes, const std::string& section,
                            std::uint64_t offset)
{
    Elf64_Ehdr eh;
    std::memcpy(&eh, bytes.data(), sizeof(eh));
    const auto shdr = [&](std::size_t i) {
        Elf64_Shdr sh;
        std::memcpy(&sh, bytes.data() + eh.e_shoff + i * sizeof(sh), sizeof(sh));
        return sh;
    };
    const Elf64_Shdr names = shdr(eh.e_shstrndx);
    for (std::size_t i = 1; i < eh.e_shnum; i++) {
        const Elf64_Shdr sh = shdr(i);
        if (sh.sh_type != SHT_RELA ||
            section != reinterpret_cast<const char*>(bytes.data() + names.sh_offset + sh.sh_name))
            continue;
        for (std::size_t at = sh.sh_offset; at < sh.sh_offset + sh.sh_size; at += sizeof(Elf64_Rela))
            std::memcpy(bytes.data() + at + offsetof(Elf64_Rela, r_offset), &offset, sizeof(offset));
        return;
    }
    die("no relocation section '" + section + "'");
}

template <typename T>
T number(const std::string& s)
{
    T value = 0;
    if (std::from_chars(s.data(), s.data() + s.size(), value).ec != std::errc())
        die("not a number: " + s);
    return value;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3)
        die("usage: klp-mangle IN OUT [--rename-module|--rename-symbol|--rename-section OLD NEW]"
            " [--relocation-type|--relocation-offset SECTION N]");
    auto bytes = read_file(argv[1]);
    if (!bytes)
        die(bytes.error().message);
    auto elf = ElfObject::parse(*bytes, argv[1]);
    if (!elf)
        die(elf.error().message);
    // Applied to the written bytes: an offset outside its section is what ElfObject refuses to
    // write.
    std::vector<std::pair<std::string, std::uint64_t>> relocation_offsets;
    for (int i = 3; i < argc; i += 3) {
        if (i + 2 >= argc)
            die(std::string(argv[i]) + " takes two arguments");
        const std::string op = argv[i], a = argv[i + 1], b = argv[i + 2];
        if (op == "--rename-module") {
            rename_module(*elf, a, b);
        } else if (op == "--replace-modinfo") {
            replace_modinfo(*elf, a, b);
        } else if (op == "--rename-symbol") {
            rename_symbol(*elf, a, b);
        } else if (op == "--rename-section") {
            const auto index = elf->find_section(a);
            if (!index)
                die("no section '" + a + "'");
            elf->sections()[*index].name = b;
        } else if (op == "--relocation-type") {
            const auto type = number<std::uint32_t>(b);
            change_relocations(*elf, a, [type](Elf64_Rela& r) {
                r.r_info = ELF64_R_INFO(ELF64_R_SYM(r.r_info), type);
            });
        } else if (op == "--relocation-offset") {
            relocation_offsets.emplace_back(a, number<std::uint64_t>(b));
        } else {
            die("unknown operation " + op);
        }
    }
    auto out = elf->serialize();
    if (!out)
        die(out.error().message);
    for (const auto& [section, offset] : relocation_offsets)
        set_relocation_offsets(*out, section, offset);
    if (auto written = write_file_atomic(argv[2], *out, 0644); !written)
        die(written.error().message);
    return 0;
}
