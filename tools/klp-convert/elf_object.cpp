// SPDX-License-Identifier: GPL-2.0-only
#include "elf_object.hpp"

#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>

#include "common/unique_fd.hpp"

namespace klpconvert {

static_assert(std::endian::native == std::endian::little,
              "sections are copied as raw little-endian bytes");

namespace {

Error malformed(const std::string& origin, const std::string& what)
{
    return Error{ENOEXEC, origin + ": malformed ELF file: " + what};
}

std::string libelf_error()
{
    const char* message = elf_errmsg(-1);
    return message ? message : "unknown libelf error";
}

struct ElfHandle {
    Elf* elf = nullptr;
    ~ElfHandle()
    {
        if (elf)
            elf_end(elf);
    }
};

bool libelf_ready()
{
    static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
    return ready;
}

// How many bytes a relocation of this type writes: what must fit in its section.
std::size_t relocation_width(std::uint32_t type)
{
    switch (type) {
    case R_X86_64_NONE:
        return 0;
    case R_X86_64_8:
    case R_X86_64_PC8:
        return 1;
    case R_X86_64_16:
    case R_X86_64_PC16:
        return 2;
    case R_X86_64_64:
    case R_X86_64_PC64:
    case R_X86_64_GOTOFF64:
    case R_X86_64_GOTPC64:
    case R_X86_64_GOT64:
    case R_X86_64_GOTPCREL64:
    case R_X86_64_GOTPLT64:
    case R_X86_64_PLTOFF64:
    case R_X86_64_SIZE64:
    case R_X86_64_DTPMOD64:
    case R_X86_64_DTPOFF64:
    case R_X86_64_TPOFF64:
    case R_X86_64_GLOB_DAT:
    case R_X86_64_JUMP_SLOT:
    case R_X86_64_RELATIVE:
    case R_X86_64_IRELATIVE:
    case R_X86_64_COPY:
        return 8;
    default:
        return 4;
    }
}

bool is_power_of_two_or_zero(std::uint64_t v)
{
    return (v & (v - 1)) == 0;
}

} // namespace

std::string relocation_type_name(std::uint32_t type)
{
    static const std::map<std::uint32_t, const char*> names = {
        {R_X86_64_NONE, "R_X86_64_NONE"},
        {R_X86_64_64, "R_X86_64_64"},
        {R_X86_64_PC32, "R_X86_64_PC32"},
        {R_X86_64_GOT32, "R_X86_64_GOT32"},
        {R_X86_64_PLT32, "R_X86_64_PLT32"},
        {R_X86_64_COPY, "R_X86_64_COPY"},
        {R_X86_64_GLOB_DAT, "R_X86_64_GLOB_DAT"},
        {R_X86_64_JUMP_SLOT, "R_X86_64_JUMP_SLOT"},
        {R_X86_64_RELATIVE, "R_X86_64_RELATIVE"},
        {R_X86_64_GOTPCREL, "R_X86_64_GOTPCREL"},
        {R_X86_64_32, "R_X86_64_32"},
        {R_X86_64_32S, "R_X86_64_32S"},
        {R_X86_64_16, "R_X86_64_16"},
        {R_X86_64_PC16, "R_X86_64_PC16"},
        {R_X86_64_8, "R_X86_64_8"},
        {R_X86_64_PC8, "R_X86_64_PC8"},
        {R_X86_64_DTPMOD64, "R_X86_64_DTPMOD64"},
        {R_X86_64_DTPOFF64, "R_X86_64_DTPOFF64"},
        {R_X86_64_TPOFF64, "R_X86_64_TPOFF64"},
        {R_X86_64_TLSGD, "R_X86_64_TLSGD"},
        {R_X86_64_TLSLD, "R_X86_64_TLSLD"},
        {R_X86_64_DTPOFF32, "R_X86_64_DTPOFF32"},
        {R_X86_64_GOTTPOFF, "R_X86_64_GOTTPOFF"},
        {R_X86_64_TPOFF32, "R_X86_64_TPOFF32"},
        {R_X86_64_PC64, "R_X86_64_PC64"},
        {R_X86_64_GOTOFF64, "R_X86_64_GOTOFF64"},
        {R_X86_64_GOTPC32, "R_X86_64_GOTPC32"},
        {R_X86_64_GOT64, "R_X86_64_GOT64"},
        {R_X86_64_GOTPCREL64, "R_X86_64_GOTPCREL64"},
        {R_X86_64_GOTPC64, "R_X86_64_GOTPC64"},
        {R_X86_64_GOTPLT64, "R_X86_64_GOTPLT64"},
        {R_X86_64_PLTOFF64, "R_X86_64_PLTOFF64"},
        {R_X86_64_SIZE32, "R_X86_64_SIZE32"},
        {R_X86_64_SIZE64, "R_X86_64_SIZE64"},
        {R_X86_64_GOTPC32_TLSDESC, "R_X86_64_GOTPC32_TLSDESC"},
        {R_X86_64_TLSDESC_CALL, "R_X86_64_TLSDESC_CALL"},
        {R_X86_64_TLSDESC, "R_X86_64_TLSDESC"},
        {R_X86_64_IRELATIVE, "R_X86_64_IRELATIVE"},
        {R_X86_64_RELATIVE64, "R_X86_64_RELATIVE64"},
        {41, "R_X86_64_GOTPCRELX"},
        {42, "R_X86_64_REX_GOTPCRELX"},
    };
    const auto it = names.find(type);
    return it != names.end() ? it->second : "relocation type " + std::to_string(type);
}

std::string describe_section(const ElfObject& elf, std::size_t index)
{
    if (index >= elf.sections().size())
        return "section " + std::to_string(index);
    return "'" + elf.sections()[index].name + "' (section " + std::to_string(index) + ")";
}

Result<ElfObject> ElfObject::parse(std::span<const std::uint8_t> bytes, const std::string& origin)
{
    if (!libelf_ready())
        return Error{EINVAL, "libelf is too old: " + libelf_error()};
    if (bytes.size() < sizeof(Elf64_Ehdr) || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0)
        return malformed(origin, "not an ELF file (no ELF header)");

    ElfObject obj;
    obj.origin_ = origin;
    std::memcpy(&obj.ehdr_, bytes.data(), sizeof(obj.ehdr_));
    const Elf64_Ehdr& eh = obj.ehdr_;
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64)
        return Error{ENOEXEC, origin + ": not an x86-64 ELF file (64-bit, little-endian); "
                                       "the converter handles x86-64 kernel modules only"};
    if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT)
        return malformed(origin, "unknown ELF version");
    if (eh.e_type != ET_REL)
        return Error{ENOEXEC, origin + ": not a relocatable file (ELF type " +
                                  std::to_string(eh.e_type) +
                                  "); give it the .ko that Kbuild built"};

    // libelf reads the section header table (and checks that it lies inside the file); the
    // sections' contents are copied from bytes, each range checked here.
    std::vector<char> copy(bytes.begin(), bytes.end());
    ElfHandle handle;
    handle.elf = elf_memory(copy.data(), copy.size());
    if (!handle.elf || elf_kind(handle.elf) != ELF_K_ELF)
        return malformed(origin, libelf_error());
    std::size_t shnum = 0, shstrndx = 0;
    if (elf_getshdrnum(handle.elf, &shnum) != 0 || elf_getshdrstrndx(handle.elf, &shstrndx) != 0)
        return malformed(origin, "cannot read the section header table: " + libelf_error());
    if (shnum == 0 || shnum >= SHN_LORESERVE || eh.e_shnum != shnum)
        return malformed(origin, "unsupported number of sections (" + std::to_string(shnum) + ")");
    if (shstrndx == 0 || shstrndx >= shnum)
        return malformed(origin, "no section name table");

    obj.sections_.resize(shnum);
    for (std::size_t i = 1; i < shnum; i++) {
        Elf_Scn* scn = elf_getscn(handle.elf, i);
        const Elf64_Shdr* shdr = scn ? elf64_getshdr(scn) : nullptr;
        if (!shdr)
            return malformed(origin, "cannot read section header " + std::to_string(i) + ": " +
                                         libelf_error());
        Section& s = obj.sections_[i];
        // libelf may point into the file's bytes, at any alignment: copy, do not dereference.
        std::memcpy(&s.header, shdr, sizeof(s.header));
        const Elf64_Shdr& h = s.header;
        if (h.sh_type == SHT_NOBITS)
            continue;
        if (h.sh_offset > bytes.size() || h.sh_size > bytes.size() - h.sh_offset)
            return malformed(origin, "section " + std::to_string(i) +
                                         " lies outside the file (offset " +
                                         std::to_string(h.sh_offset) + ", size " +
                                         std::to_string(h.sh_size) + ")");
        s.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(h.sh_offset),
                      bytes.begin() + static_cast<std::ptrdiff_t>(h.sh_offset + h.sh_size));
    }

    const Section& names = obj.sections_[shstrndx];
    if (names.header.sh_type != SHT_STRTAB || names.data.empty() || names.data.back() != 0)
        return malformed(origin, "the section name table is not a NUL-terminated string table");
    for (std::size_t i = 1; i < shnum; i++) {
        Section& s = obj.sections_[i];
        if (s.header.sh_name >= names.data.size())
            return malformed(origin, "section " + std::to_string(i) + " has a name outside the "
                                                                         "section name table");
        s.name = reinterpret_cast<const char*>(names.data.data()) + s.header.sh_name;
    }

    std::size_t symtabs = 0;
    for (std::size_t i = 1; i < shnum; i++) {
        if (obj.sections_[i].header.sh_type == SHT_SYMTAB) {
            obj.symtab_ = i;
            symtabs++;
        }
    }
    if (symtabs != 1)
        return malformed(origin, symtabs ? "more than one symbol table" : "no symbol table");
    obj.strtab_ = obj.sections_[obj.symtab_].header.sh_link;

    if (auto checked = obj.validate(); !checked)
        return checked.error();
    return obj;
}

Result<void> ElfObject::validate() const
{
    const std::size_t shnum = sections_.size();
    if (shnum == 0 || shnum >= SHN_LORESERVE)
        return malformed(origin_, "unsupported number of sections");
    if (ehdr_.e_shstrndx == 0 || ehdr_.e_shstrndx >= shnum ||
        sections_[ehdr_.e_shstrndx].header.sh_type != SHT_STRTAB)
        return malformed(origin_, "no section name table");

    for (std::size_t i = 1; i < shnum; i++) {
        const Section& s = sections_[i];
        // A page is the most any module section asks for; a larger alignment would make the
        // written file as large as the alignment.
        if (!is_power_of_two_or_zero(s.header.sh_addralign) || s.header.sh_addralign > 65536)
            return malformed(origin_, describe_section(*this, i) + " has alignment " +
                                          std::to_string(s.header.sh_addralign) +
                                          ", not a power of two up to 65536");
        if (s.header.sh_type != SHT_NOBITS && s.data.size() != s.header.sh_size)
            return malformed(origin_, describe_section(*this, i) + " has a size that does not "
                                                                   "match its contents");
        // Sections of dynamic linking have no place in a relocatable module (and libelf insists
        // on their entry sizes); the typed sections a module has must have theirs.
        const auto type = s.header.sh_type;
        if (type == SHT_NULL || type == SHT_HASH || type == SHT_DYNAMIC || type == SHT_SHLIB ||
            type == SHT_DYNSYM || (type >= SHT_GNU_HASH && type <= SHT_HIOS))
            return malformed(origin_, describe_section(*this, i) + " has type " +
                                          std::to_string(type) +
                                          ", which a relocatable module does not have");
        const std::uint64_t entsize = type == SHT_GROUP ? 4
                                      : (type == SHT_INIT_ARRAY || type == SHT_FINI_ARRAY ||
                                         type == SHT_PREINIT_ARRAY)
                                          ? 8
                                          : 0;
        // String tables grow when names are added: entries of one byte, if any.
        if (type == SHT_STRTAB && s.header.sh_entsize > 1)
            return malformed(origin_, describe_section(*this, i) + " is a string table with "
                                                                   "entries of " +
                                          std::to_string(s.header.sh_entsize) + " bytes");
        if (entsize && s.header.sh_entsize != entsize)
            return malformed(origin_, describe_section(*this, i) + " has entries of " +
                                          std::to_string(s.header.sh_entsize) + " bytes, not " +
                                          std::to_string(entsize));
        // Compressed contents (gcc -gz) are opaque bytes: fine for debug information, not for
        // anything the kernel loads or the converter reads.
        if ((s.header.sh_flags & SHF_COMPRESSED) &&
            (s.header.sh_type != SHT_PROGBITS || (s.header.sh_flags & SHF_ALLOC)))
            return malformed(origin_, describe_section(*this, i) + " is compressed");
        // libelf refuses to write a section whose size is not a multiple of its entry size.
        if (s.header.sh_entsize && s.header.sh_size % s.header.sh_entsize)
            return malformed(origin_, describe_section(*this, i) + " has a size that is not a "
                                                                   "multiple of its entry size");
        if (s.header.sh_link >= shnum)
            return malformed(origin_, describe_section(*this, i) + " links to section " +
                                          std::to_string(s.header.sh_link) + ", which does not exist");
    }

    if (symtab_ == 0 || symtab_ >= shnum || sections_[symtab_].header.sh_type != SHT_SYMTAB)
        return malformed(origin_, "no symbol table");
    const Section& symtab = sections_[symtab_];
    if (symtab.header.sh_entsize != sizeof(Elf64_Sym) || symtab.data.size() % sizeof(Elf64_Sym) ||
        symtab.data.empty())
        return malformed(origin_, "the symbol table's entries are not ELF64 symbols");
    if (symtab.header.sh_info > symbol_count())
        return malformed(origin_, "the symbol table's first global symbol is past its end");
    if (strtab_ == 0 || strtab_ != symtab.header.sh_link || strtab_ >= shnum)
        return malformed(origin_, "the symbol table has no string table");
    const Section& strtab = sections_[strtab_];
    if (strtab.header.sh_type != SHT_STRTAB || strtab.data.empty() || strtab.data.back() != 0)
        return malformed(origin_, "the symbol string table is not a NUL-terminated string table");

    const std::size_t nsyms = symbol_count();
    for (std::size_t i = 0; i < nsyms; i++) {
        const Elf64_Sym sym = symbol(i);
        if (sym.st_name >= strtab.data.size())
            return malformed(origin_, "symbol " + std::to_string(i) + " has a name outside the "
                                                                       "string table");
        const std::uint16_t ndx = sym.st_shndx;
        if (ndx >= shnum && ndx != SHN_ABS && ndx != SHN_COMMON && ndx != shn_livepatch)
            return malformed(origin_, "symbol " + std::to_string(i) + " ('" +
                                          std::string(symbol_name(sym)) +
                                          "') is in section " + std::to_string(ndx) +
                                          ", which does not exist");
    }

    for (std::size_t i = 1; i < shnum; i++) {
        const Section& s = sections_[i];
        const auto type = s.header.sh_type;
        if (type == SHT_RELA || type == SHT_REL) {
            const std::size_t entsize = type == SHT_RELA ? sizeof(Elf64_Rela) : sizeof(Elf64_Rel);
            if (s.header.sh_entsize != entsize || s.data.size() % entsize)
                return malformed(origin_, describe_section(*this, i) +
                                              " does not hold ELF64 relocations");
            if (s.header.sh_link != symtab_)
                return malformed(origin_, describe_section(*this, i) +
                                              " does not use the symbol table");
            const std::size_t target = s.header.sh_info;
            if (target == 0 || target >= shnum)
                return malformed(origin_, describe_section(*this, i) +
                                              " applies to a section that does not exist");
            const Section& t = sections_[target];
            for (std::size_t off = 0; off < s.data.size(); off += entsize) {
                Elf64_Rel r;
                std::memcpy(&r, s.data.data() + off, sizeof(r)); // r_offset, r_info lead both
                const auto sym = ELF64_R_SYM(r.r_info);
                const auto width = relocation_width(ELF64_R_TYPE(r.r_info));
                if (sym >= nsyms)
                    return malformed(origin_, describe_section(*this, i) + " entry " +
                                                  std::to_string(off / entsize) +
                                                  " refers to symbol " + std::to_string(sym) +
                                                  ", which does not exist");
                // A compressed section's relocations apply to its contents uncompressed.
                if (t.header.sh_flags & SHF_COMPRESSED)
                    continue;
                if (t.header.sh_type == SHT_NOBITS || r.r_offset > t.header.sh_size ||
                    t.header.sh_size - r.r_offset < std::max<std::size_t>(width, 1))
                    return malformed(origin_, describe_section(*this, i) + " entry " +
                                                  std::to_string(off / entsize) +
                                                  " writes outside " +
                                                  describe_section(*this, target));
            }
        } else if (type == SHT_GROUP) {
            if (s.data.size() % 4 || s.data.empty())
                return malformed(origin_, describe_section(*this, i) + " is not a section group");
            for (std::size_t off = 4; off < s.data.size(); off += 4) {
                std::uint32_t member;
                std::memcpy(&member, s.data.data() + off, 4);
                if (member == 0 || member >= shnum)
                    return malformed(origin_, describe_section(*this, i) +
                                                  " names a section that does not exist");
            }
        } else if (type == SHT_SYMTAB_SHNDX) {
            return malformed(origin_, "extended section indices (SHT_SYMTAB_SHNDX) are not "
                                      "supported");
        }
    }
    return {};
}

std::optional<std::size_t> ElfObject::find_section(std::string_view name) const
{
    for (std::size_t i = 1; i < sections_.size(); i++)
        if (sections_[i].name == name)
            return i;
    return std::nullopt;
}

Elf64_Sym ElfObject::symbol(std::size_t index) const
{
    Elf64_Sym sym;
    std::memcpy(&sym, sections_[symtab_].data.data() + index * sizeof(sym), sizeof(sym));
    return sym;
}

void ElfObject::set_symbol(std::size_t index, const Elf64_Sym& sym)
{
    std::memcpy(sections_[symtab_].data.data() + index * sizeof(sym), &sym, sizeof(sym));
}

std::string_view ElfObject::symbol_name(const Elf64_Sym& sym) const
{
    const auto& strings = sections_[strtab_].data;
    if (sym.st_name >= strings.size())
        return {};
    return reinterpret_cast<const char*>(strings.data()) + sym.st_name;
}

std::uint32_t ElfObject::add_symbol_string(std::string_view name)
{
    auto& strings = sections_[strtab_].data;
    const auto offset = static_cast<std::uint32_t>(strings.size());
    strings.insert(strings.end(), name.begin(), name.end());
    strings.push_back(0);
    sections_[strtab_].header.sh_size = strings.size();
    return offset;
}

Elf64_Rela ElfObject::rela(std::size_t section, std::size_t index) const
{
    Elf64_Rela r;
    std::memcpy(&r, sections_[section].data.data() + index * sizeof(r), sizeof(r));
    return r;
}

void ElfObject::set_relas(std::size_t section, const std::vector<Elf64_Rela>& relas)
{
    Section& s = sections_[section];
    s.data.resize(relas.size() * sizeof(Elf64_Rela));
    if (!relas.empty())
        std::memcpy(s.data.data(), relas.data(), s.data.size());
    s.header.sh_size = s.data.size();
}

std::size_t ElfObject::add_section(Section section)
{
    if (section.header.sh_type != SHT_NOBITS)
        section.header.sh_size = section.data.size();
    sections_.push_back(std::move(section));
    return sections_.size() - 1;
}

Result<void> ElfObject::remove_section(std::size_t index)
{
    if (index == 0 || index >= sections_.size() || index == symtab_ || index == strtab_ ||
        index == ehdr_.e_shstrndx)
        return Error{EINVAL, origin_ + ": cannot remove " + describe_section(*this, index)};
    for (std::size_t i = 1; i < sections_.size(); i++) {
        const auto& h = sections_[i].header;
        const bool info_is_section = h.sh_type == SHT_RELA || h.sh_type == SHT_REL ||
                                     (h.sh_flags & SHF_INFO_LINK);
        if (i != index && (h.sh_link == index || (info_is_section && h.sh_info == index)))
            return Error{EINVAL, origin_ + ": cannot remove " + describe_section(*this, index) +
                                     ": " + describe_section(*this, i) + " refers to it"};
    }
    for (std::size_t i = 0; i < symbol_count(); i++) {
        const Elf64_Sym sym = symbol(i);
        if (sym.st_shndx == index && ELF64_ST_TYPE(sym.st_info) != STT_SECTION && sym.st_name)
            return Error{EINVAL, origin_ + ": cannot remove " + describe_section(*this, index) +
                                     ": symbol '" + std::string(symbol_name(sym)) +
                                     "' is defined in it"};
    }

    sections_.erase(sections_.begin() + static_cast<std::ptrdiff_t>(index));
    const auto renumber = [index](auto& field) {
        if (field > index && field < SHN_LORESERVE)
            field--;
    };
    for (std::size_t i = 1; i < sections_.size(); i++) {
        auto& h = sections_[i].header;
        renumber(h.sh_link);
        if (h.sh_type == SHT_RELA || h.sh_type == SHT_REL || (h.sh_flags & SHF_INFO_LINK))
            renumber(h.sh_info);
        if (h.sh_type == SHT_GROUP) {
            auto& d = sections_[i].data;
            std::vector<std::uint8_t> kept(d.begin(), d.begin() + 4);
            for (std::size_t off = 4; off + 4 <= d.size(); off += 4) {
                std::uint32_t member;
                std::memcpy(&member, d.data() + off, 4);
                if (member == index)
                    continue;
                renumber(member);
                kept.insert(kept.end(), reinterpret_cast<std::uint8_t*>(&member),
                            reinterpret_cast<std::uint8_t*>(&member) + 4);
            }
            d = std::move(kept);
            h.sh_size = d.size();
        }
    }
    renumber(ehdr_.e_shstrndx);
    renumber(symtab_);
    renumber(strtab_);
    for (std::size_t i = 0; i < symbol_count(); i++) {
        Elf64_Sym sym = symbol(i);
        if (sym.st_shndx == index) {
            // A section symbol of the removed section: keep the slot, make it inert.
            sym.st_name = 0;
            sym.st_value = 0;
            sym.st_size = 0;
            sym.st_shndx = SHN_ABS;
            sym.st_info = ELF64_ST_INFO(ELF64_ST_BIND(sym.st_info), STT_NOTYPE);
        } else {
            renumber(sym.st_shndx);
        }
        set_symbol(i, sym);
    }
    ehdr_.e_shnum = static_cast<Elf64_Half>(sections_.size());
    return {};
}

Result<std::vector<std::uint8_t>> ElfObject::serialize() const
{
    if (!libelf_ready())
        return Error{EINVAL, "libelf is too old: " + libelf_error()};
    if (auto checked = validate(); !checked)
        return checked.error();

    // The section name table is rebuilt from the names: sections may have been added.
    std::vector<std::uint8_t> shstrtab(1, 0);
    std::vector<std::uint32_t> name_offsets(sections_.size(), 0);
    for (std::size_t i = 1; i < sections_.size(); i++) {
        name_offsets[i] = static_cast<std::uint32_t>(shstrtab.size());
        shstrtab.insert(shstrtab.end(), sections_[i].name.begin(), sections_[i].name.end());
        shstrtab.push_back(0);
    }

    livepatchd::UniqueFd fd(memfd_create("lpshim-klp-convert", MFD_CLOEXEC));
    if (!fd)
        return Error{errno, "cannot create a memory file: " + std::string(std::strerror(errno))};
    ElfHandle handle;
    handle.elf = elf_begin(fd.get(), ELF_C_WRITE, nullptr);
    if (!handle.elf)
        return Error{EIO, "libelf cannot write: " + libelf_error()};
    Elf64_Ehdr* eh = elf64_newehdr(handle.elf);
    if (!eh)
        return Error{EIO, "libelf cannot write the ELF header: " + libelf_error()};
    std::memcpy(eh->e_ident, ehdr_.e_ident, EI_NIDENT);
    eh->e_type = ehdr_.e_type;
    eh->e_machine = ehdr_.e_machine;
    eh->e_version = ehdr_.e_version;
    eh->e_flags = ehdr_.e_flags;
    eh->e_shstrndx = ehdr_.e_shstrndx;

    for (std::size_t i = 1; i < sections_.size(); i++) {
        const Section& s = sections_[i];
        Elf_Scn* scn = elf_newscn(handle.elf);
        Elf64_Shdr* sh = scn ? elf64_getshdr(scn) : nullptr;
        Elf_Data* d = scn ? elf_newdata(scn) : nullptr;
        if (!d || !sh)
            return Error{EIO, "libelf cannot add a section: " + libelf_error()};
        *sh = s.header;
        sh->sh_name = name_offsets[i];
        sh->sh_offset = 0;
        d->d_type = ELF_T_BYTE;
        d->d_version = EV_CURRENT;
        d->d_off = 0;
        d->d_align = std::max<std::uint64_t>(s.header.sh_addralign, 1);
        if (s.header.sh_type == SHT_NOBITS) {
            d->d_buf = nullptr;
            d->d_size = s.header.sh_size;
        } else if (i == ehdr_.e_shstrndx) {
            d->d_buf = shstrtab.data();
            d->d_size = shstrtab.size();
            sh->sh_size = shstrtab.size();
        } else {
            d->d_buf = const_cast<std::uint8_t*>(s.data.data());
            d->d_size = s.data.size();
        }
    }
    if (elf_update(handle.elf, ELF_C_WRITE) < 0)
        return Error{EIO, "libelf cannot write the file: " + libelf_error()};
    elf_end(handle.elf);
    handle.elf = nullptr;

    struct stat st;
    if (fstat(fd.get(), &st) != 0)
        return Error{errno, "cannot read back the written file: " + std::string(std::strerror(errno))};
    std::vector<std::uint8_t> out(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = pread(fd.get(), out.data() + done, out.size() - done,
                                static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return Error{n < 0 ? errno : EIO, "cannot read back the written file"};
        done += static_cast<std::size_t>(n);
    }
    return out;
}

} // namespace klpconvert
