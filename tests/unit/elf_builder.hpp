// SPDX-License-Identifier: GPL-2.0-only
//
// Minimal ELF64 files for the tests: the parts of a kernel module that PatchFile reads (the
// ELF header, section headers, .modinfo, .gnu.linkonce.this_module, .shstrtab), built in
// memory so that every field can be set wrong on purpose.
#pragma once

#include <elf.h>

#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace livepatchd::test {

// "key=value\0key=value\0" as modpost writes .modinfo.
inline std::string modinfo_text(std::initializer_list<std::pair<std::string, std::string>> entries)
{
    std::string text;
    for (const auto& [key, value] : entries) {
        text += key + "=" + value;
        text += '\0';
    }
    return text;
}

inline const std::string default_vermagic = "6.1.0-56-amd64 SMP preempt mod_unload modversions ";

inline std::string patch_modinfo(const std::string& name = "lp_fix_cve",
                                 const std::string& vermagic = default_vermagic)
{
    return modinfo_text({{"description", "fix for CVE-2099-0001"},
                         {"license", "GPL"},
                         {"lpshim_patch", "Y"},
                         {"srcversion", "0123456789ABCDEF012345"},
                         {"depends", ""},
                         {"retpoline", "Y"},
                         {"name", name},
                         {"vermagic", vermagic}});
}

// A livepatch relocation section (.klp.rela.<object>.<section>, docs/klp-convert.md) against
// .text: each relocation names its symbol (in .symtab, SHN_LIVEPATCH unless listed in
// ElfSpec::plain_symbols) and its type.
struct KlpRelaSpec {
    std::string name;
    std::vector<std::pair<std::string, unsigned>> relas;
    Elf64_Word type = SHT_RELA;
};

struct ElfSpec {
    unsigned char elf_class = ELFCLASS64;
    unsigned char data = ELFDATA2LSB;
    Elf64_Half machine = EM_X86_64;
    Elf64_Half type = ET_REL;
    std::optional<std::string> modinfo = patch_modinfo(); // nullopt: no .modinfo section
    bool modinfo_nobits = false;
    bool this_module = true;
    // e_shnum = 0 and e_shstrndx = SHN_XINDEX, the real values in section 0, as for modules
    // with more than 0xff00 sections.
    bool extended_numbering = false;
    std::vector<KlpRelaSpec> klp_sections;
    std::vector<std::string> plain_symbols; // symbols of klp_sections not in SHN_LIVEPATCH
};

inline std::string build_elf(const ElfSpec& spec = {})
{
    struct Section {
        std::string name;
        Elf64_Word type;
        std::string bytes;
        Elf64_Xword flags = 0;
        Elf64_Word link = 0;
        Elf64_Word info = 0;
        Elf64_Xword entsize = 0;
    };
    std::vector<Section> sections;
    if (spec.modinfo)
        sections.push_back({".modinfo", static_cast<Elf64_Word>(spec.modinfo_nobits ? SHT_NOBITS : SHT_PROGBITS),
                            *spec.modinfo});
    if (spec.this_module)
        sections.push_back({".gnu.linkonce.this_module", SHT_PROGBITS, std::string(64, '\0')});
    // ret; room for the relocations of klp_sections
    sections.push_back({".text", SHT_PROGBITS, std::string(spec.klp_sections.empty() ? 1 : 64, '\xc3')});
    if (!spec.klp_sections.empty()) {
        // Section indexes are positions + 1 (section 0 is SHN_UNDEF).
        const auto text_index = static_cast<Elf64_Word>(sections.size());
        const auto symtab_index = static_cast<Elf64_Word>(sections.size() + spec.klp_sections.size() + 1);
        std::vector<std::string> symbols;
        std::string strtab(1, '\0');
        std::string symtab(sizeof(Elf64_Sym), '\0'); // symbol 0
        const auto symbol_index = [&](const std::string& name) {
            for (std::size_t i = 0; i < symbols.size(); ++i)
                if (symbols[i] == name)
                    return static_cast<Elf64_Xword>(i + 1);
            symbols.push_back(name);
            Elf64_Sym sym{};
            sym.st_name = static_cast<Elf64_Word>(strtab.size());
            strtab += name;
            strtab += '\0';
            sym.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_NOTYPE);
            bool plain = false;
            for (const std::string& p : spec.plain_symbols)
                plain = plain || p == name;
            sym.st_shndx = plain ? SHN_UNDEF : 0xff20; // SHN_LIVEPATCH
            symtab.append(reinterpret_cast<const char*>(&sym), sizeof sym);
            return static_cast<Elf64_Xword>(symbols.size());
        };
        for (const KlpRelaSpec& k : spec.klp_sections) {
            std::string bytes;
            Elf64_Addr offset = 0;
            for (const auto& [symbol, type] : k.relas) {
                Elf64_Rela r{};
                r.r_offset = offset;
                offset += 8;
                r.r_info = ELF64_R_INFO(symbol_index(symbol), type);
                r.r_addend = -4;
                bytes.append(reinterpret_cast<const char*>(&r), sizeof r);
            }
            sections.push_back({k.name, k.type, bytes, SHF_ALLOC | SHF_INFO_LINK | 0x00100000,
                                symtab_index, text_index, sizeof(Elf64_Rela)});
        }
        sections.push_back({".symtab", SHT_SYMTAB, symtab, 0, symtab_index + 1, 1, sizeof(Elf64_Sym)});
        sections.push_back({".strtab", SHT_STRTAB, strtab});
    }

    std::string names(1, '\0');
    std::vector<Elf64_Word> name_offsets;
    for (const Section& s : sections) {
        name_offsets.push_back(static_cast<Elf64_Word>(names.size()));
        names += s.name;
        names += '\0';
    }
    const auto shstrtab_name = static_cast<Elf64_Word>(names.size());
    names += ".shstrtab";
    names += '\0';

    std::string file(sizeof(Elf64_Ehdr), '\0');
    std::vector<Elf64_Shdr> headers(1); // section 0: SHN_UNDEF
    for (std::size_t i = 0; i < sections.size(); ++i) {
        Elf64_Shdr h{};
        h.sh_name = name_offsets[i];
        h.sh_type = sections[i].type;
        h.sh_offset = file.size();
        h.sh_size = sections[i].bytes.size();
        h.sh_addralign = 1;
        h.sh_flags = sections[i].flags;
        h.sh_link = sections[i].link;
        h.sh_info = sections[i].info;
        h.sh_entsize = sections[i].entsize;
        if (sections[i].type != SHT_NOBITS)
            file += sections[i].bytes;
        headers.push_back(h);
    }
    Elf64_Shdr strtab{};
    strtab.sh_name = shstrtab_name;
    strtab.sh_type = SHT_STRTAB;
    strtab.sh_offset = file.size();
    strtab.sh_size = names.size();
    strtab.sh_addralign = 1;
    file += names;
    headers.push_back(strtab);
    while (file.size() % 8)
        file += '\0';

    Elf64_Ehdr ehdr{};
    std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
    ehdr.e_ident[EI_CLASS] = spec.elf_class;
    ehdr.e_ident[EI_DATA] = spec.data;
    ehdr.e_ident[EI_VERSION] = EV_CURRENT;
    ehdr.e_type = spec.type;
    ehdr.e_machine = spec.machine;
    ehdr.e_version = EV_CURRENT;
    ehdr.e_shoff = file.size();
    ehdr.e_ehsize = sizeof(Elf64_Ehdr);
    ehdr.e_shentsize = sizeof(Elf64_Shdr);
    const auto count = headers.size();
    const auto strndx = count - 1;
    if (spec.extended_numbering) {
        headers[0].sh_size = count;
        headers[0].sh_link = static_cast<Elf64_Word>(strndx);
        ehdr.e_shnum = 0;
        ehdr.e_shstrndx = SHN_XINDEX;
    } else {
        ehdr.e_shnum = static_cast<Elf64_Half>(count);
        ehdr.e_shstrndx = static_cast<Elf64_Half>(strndx);
    }
    file.append(reinterpret_cast<const char*>(headers.data()), count * sizeof(Elf64_Shdr));
    std::memcpy(file.data(), &ehdr, sizeof ehdr);
    return file;
}

inline Elf64_Ehdr elf_header(const std::string& file)
{
    Elf64_Ehdr ehdr{};
    std::memcpy(&ehdr, file.data(), sizeof ehdr);
    return ehdr;
}

inline void set_elf_header(std::string& file, const Elf64_Ehdr& ehdr)
{
    std::memcpy(file.data(), &ehdr, sizeof ehdr);
}

// Section header i of a file build_elf made.
inline Elf64_Shdr section_header(const std::string& file, std::size_t i)
{
    Elf64_Shdr h{};
    std::memcpy(&h, file.data() + elf_header(file).e_shoff + i * sizeof h, sizeof h);
    return h;
}

inline void set_section_header(std::string& file, std::size_t i, const Elf64_Shdr& h)
{
    std::memcpy(file.data() + elf_header(file).e_shoff + i * sizeof h, &h, sizeof h);
}

} // namespace livepatchd::test
