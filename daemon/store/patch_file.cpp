// SPDX-License-Identifier: GPL-2.0-only
#include "store/patch_file.hpp"

#include <gelf.h>
#include <libelf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "common/text.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

namespace {

// .modinfo of a real module is a few hundred bytes; a bound keeps a hostile file from making
// the daemon allocate its size.
constexpr std::uint64_t modinfo_max_size = 1 << 20;

const std::string writing_patches_hint =
    "patches are kernel modules built with lpshim/lpshim.h (docs/writing-patches.md)";

PatchError fail(PatchErrc code, int errnum, std::string_view origin, std::string_view what)
{
    return PatchError(code, errnum, std::string(origin) + ": " + std::string(what));
}

PatchError io_error(std::string_view origin, std::string_view doing, int errnum)
{
    return fail(PatchErrc::io, errnum, origin,
                std::string(doing) + ": " + std::strerror(errnum));
}

PatchError malformed(std::string_view origin, std::string_view what)
{
    return fail(PatchErrc::malformed, ENOEXEC, origin,
                "malformed ELF file: " + std::string(what) +
                    "; the file is damaged or truncated, build or copy it again");
}

std::string_view machine_name(Elf64_Half machine)
{
    switch (machine) {
    case EM_386: return "i386";
    case EM_ARM: return "arm";
    case EM_AARCH64: return "aarch64";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390";
    case EM_RISCV: return "riscv";
    case EM_LOONGARCH: return "loongarch";
    default: return {};
    }
}

std::string_view elf_type_name(Elf64_Half type)
{
    switch (type) {
    case ET_EXEC: return "an executable";
    case ET_DYN: return "a shared object or position-independent executable";
    case ET_CORE: return "a core dump";
    default: return "not a relocatable object";
    }
}

const std::string* find_value(const std::vector<ModinfoEntry>& entries, std::string_view key)
{
    // The first one wins, as in the kernel's get_modinfo().
    for (const ModinfoEntry& entry : entries)
        if (entry.key == key)
            return &entry.value;
    return nullptr;
}

} // namespace

bool is_valid_patch_name(std::string_view name)
{
    return !name.empty() && name.size() <= patch_name_max &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_';
           });
}

std::vector<ModinfoEntry> parse_modinfo(std::string_view section)
{
    std::vector<ModinfoEntry> entries;
    while (!section.empty()) {
        const std::size_t end = std::min(section.find('\0'), section.size());
        const std::string_view item = section.substr(0, end);
        section.remove_prefix(std::min(end + 1, section.size()));
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0)
            continue;
        entries.push_back({std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))});
    }
    return entries;
}

std::string_view kernel_release_of(std::string_view vermagic)
{
    const std::size_t start = vermagic.find_first_not_of(' ');
    if (start == std::string_view::npos)
        return {};
    vermagic.remove_prefix(start);
    return vermagic.substr(0, vermagic.find(' '));
}

namespace {

struct ElfEnd {
    void operator()(Elf* elf) const noexcept { elf_end(elf); }
};
using ElfPtr = std::unique_ptr<Elf, ElfEnd>;

PatchError elf_failure(std::string_view origin, std::string_view doing)
{
    const char* why = elf_errmsg(-1);
    return malformed(origin, std::string(doing) + " (" + (why ? why : "libelf error") + ")");
}

// SHF_RELA_LIVEPATCH and SHN_LIVEPATCH (include/uapi/linux/elf.h; not in glibc's <elf.h>).
constexpr GElf_Xword shf_rela_livepatch = 0x00100000;
constexpr GElf_Half shn_livepatch = 0xff20;
// MODULE_NAME_LEN - 1 and KSYM_NAME_LEN - 1 of the kernels livepatchd supports.
constexpr std::size_t klp_object_max = 55;
constexpr std::size_t klp_symbol_max = 511;

bool is_relocation_type_applied(GElf_Xword type)
{
    // What x86-64's apply_relocate_add() writes and lpshim applies (shim-kmod/relocs.c).
    switch (type) {
    case R_X86_64_64:
    case R_X86_64_PC32:
    case R_X86_64_PLT32:
    case R_X86_64_32:
    case R_X86_64_32S:
    case R_X86_64_PC64:
        return true;
    default:
        return false;
    }
}

// At most the first max bytes of an ELF string: what the checks read of a name, whatever its
// length (a crafted file may give every section and symbol the same long name).
std::string_view bounded(const char* raw, std::size_t max)
{
    return raw ? std::string_view(raw, ::strnlen(raw, max)) : std::string_view();
}

// Longer than any name the kernel accepts: .klp.sym.<object>.<name>,<position>.
constexpr std::size_t klp_symbol_name_max =
    std::string_view(".klp.sym.").size() + klp_object_max + 1 + klp_symbol_max + 1 + 9;
// Enough to find a section's object (within klp_object_max bytes of the prefix) and that a
// section name follows it: splitting this much of a name splits it as the whole would.
constexpr std::size_t klp_section_name_read = 1024;

// "<object>.<rest>" of name after prefix, with object a module name; nullopt if malformed.
std::optional<std::pair<std::string_view, std::string_view>>
split_klp_name(std::string_view name, std::string_view prefix)
{
    if (!name.starts_with(prefix))
        return std::nullopt;
    name.remove_prefix(prefix.size());
    const std::size_t dot = name.find('.');
    // The object is a module's name, or vmlinux: letters, digits and underscores.
    if (dot == 0 || dot == std::string_view::npos || dot > klp_object_max ||
        dot + 1 == name.size() || !is_valid_patch_name(name.substr(0, dot)))
        return std::nullopt;
    return std::pair{name.substr(0, dot), name.substr(dot + 1)};
}

const std::string klp_hint =
    "lpshim-klp-convert writes them, and the kernel refuses what it does not understand "
    "(docs/klp-convert.md); build the patch again";

// The .klp.rela.<object>.<section> sections and their .klp.sym.<object>.<name>,<position>
// symbols, checked as the kernel and lpshim check them at load (a name either would refuse, a
// relocation type neither applies), so that a bad patch is refused at install with its reason
// rather than by finit_module(). Returns what each object needs.
PatchResult<std::vector<LivepatchObject>> read_livepatch_relocations(
    Elf* elf, std::size_t strndx, std::uint64_t size, const std::vector<Elf_Scn*>& sections,
    std::string_view origin)
{
    std::vector<LivepatchObject> objects;
    std::unordered_map<std::string, std::size_t> object_index; // name -> position in objects
    std::set<std::pair<std::string, std::string>> seen;        // (object, symbol)
    for (Elf_Scn* scn : sections) {
        GElf_Shdr header_copy{};
        const GElf_Shdr* header = gelf_getshdr(scn, &header_copy);
        const char* raw_name = header ? elf_strptr(elf, strndx, header->sh_name) : nullptr;
        const std::string_view read_name = bounded(raw_name, klp_section_name_read);
        const std::string name = printable(read_name.substr(0, 200));
        const auto section = split_klp_name(read_name, ".klp.rela."); // nullopt when nameless
        if (!section)
            return fail(PatchErrc::invalid_relocations, ENOEXEC, origin,
                        "livepatch relocation section '" + name +
                            "' is not named .klp.rela.<object>.<section>; " + klp_hint);
        if (header->sh_type != SHT_RELA)
            return fail(PatchErrc::invalid_relocations, ENOEXEC, origin,
                        "livepatch relocation section '" + name + "' is not SHT_RELA; " +
                            klp_hint);
        if (header->sh_offset > size || header->sh_size > size - header->sh_offset)
            return malformed(origin, "section '" + name + "' lies beyond the end of the file");
        Elf_Scn* symtab = elf_getscn(elf, header->sh_link);
        GElf_Shdr symtab_copy{};
        const GElf_Shdr* symtab_header = symtab ? gelf_getshdr(symtab, &symtab_copy) : nullptr;
        if (!symtab_header || symtab_header->sh_type != SHT_SYMTAB ||
            symtab_header->sh_offset > size ||
            symtab_header->sh_size > size - symtab_header->sh_offset)
            return malformed(origin, "section '" + name + "' has no symbol table");
        Elf_Data* relas = elf_getdata(scn, nullptr);
        Elf_Data* syms = elf_getdata(symtab, nullptr);
        if (!relas || !syms)
            return elf_failure(origin, "section '" + name + "' cannot be read");
        const std::string object(section->first);
        const auto [slot, added] = object_index.try_emplace(object, objects.size());
        if (added)
            objects.push_back(LivepatchObject{object, 0});
        std::size_t& symbols_used = objects[slot->second].symbols;
        const std::size_t count = header->sh_size / sizeof(Elf64_Rela);
        for (std::size_t i = 0; i < count; ++i) {
            GElf_Rela rela{};
            GElf_Sym sym{};
            if (!gelf_getrela(relas, static_cast<int>(i), &rela) ||
                !gelf_getsym(syms, static_cast<int>(GELF_R_SYM(rela.r_info)), &sym))
                return malformed(origin, "relocation " + std::to_string(i) + " of '" + name +
                                             "' names no symbol");
            const char* raw_symbol = elf_strptr(elf, symtab_header->sh_link, sym.st_name);
            // One byte more than a valid name: longer reads as longer, never as valid.
            const std::string_view read_symbol = bounded(raw_symbol, klp_symbol_name_max + 1);
            const std::string symbol = printable(read_symbol.substr(0, 200));
            if (!is_relocation_type_applied(GELF_R_TYPE(rela.r_info)))
                return fail(PatchErrc::invalid_relocations, ENOEXEC, origin,
                            "relocation " + std::to_string(i) + " of '" + name + "' has type " +
                                std::to_string(GELF_R_TYPE(rela.r_info)) +
                                ", which the kernel does not apply to a patch; " + klp_hint);
            if (sym.st_shndx != shn_livepatch)
                return fail(PatchErrc::invalid_relocations, ENOEXEC, origin,
                            "relocation " + std::to_string(i) + " of '" + name +
                                "' refers to '" + symbol +
                                "', which is not a livepatch symbol (SHN_LIVEPATCH); " +
                                klp_hint);
            const auto parts = read_symbol.size() <= klp_symbol_name_max
                                   ? split_klp_name(read_symbol, ".klp.sym.")
                                   : std::nullopt;
            const std::size_t comma = parts ? parts->second.rfind(',') : std::string_view::npos;
            // A decimal position that fits an unsigned long, as the kernel's sscanf("%lu") wants.
            const bool position_ok =
                comma != std::string_view::npos && comma + 1 < parts->second.size() &&
                std::all_of(parts->second.begin() + static_cast<long>(comma) + 1,
                            parts->second.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                parts->second.size() - comma - 1 <= 9;
            if (!parts || comma == 0 || comma > klp_symbol_max || !position_ok)
                return fail(PatchErrc::invalid_relocations, ENOEXEC, origin,
                            "livepatch symbol '" + symbol +
                                "' is not named .klp.sym.<object>.<name>,<position>; " +
                                klp_hint);
            if (object != "vmlinux" && parts->first != object)
                return fail(PatchErrc::invalid_relocations, ENOEXEC, origin,
                            "livepatch symbol '" + symbol + "' is not in '" + object +
                                "', the object of section '" + name + "'; " + klp_hint);
            const std::pair<std::string, std::string> key{object,
                                                          std::string(parts->second.substr(0, comma))};
            if (seen.insert(key).second)
                ++symbols_used;
        }
    }
    return objects;
}

// Everything after the file is open and sized: the checks, in the order that names a wrong
// file for what it is (not ELF, wrong architecture, not a module, not a patch) before calling
// it damaged.
PatchResult<PatchFile> read_elf(Elf* elf, std::uint64_t size, std::string_view head,
                                std::string_view origin)
{
    if (!head.starts_with(std::string_view(ELFMAG, SELFMAG)))
        return fail(PatchErrc::not_elf, ENOEXEC, origin,
                    "is not an ELF file, so it cannot be a kernel module; " +
                        writing_patches_hint);
    if (elf_kind(elf) != ELF_K_ELF)
        return malformed(origin, "the ELF header is cut short");
    std::size_t ident_size = 0;
    const char* ident = elf_getident(elf, &ident_size);
    if (!ident || ident_size < EI_NIDENT)
        return malformed(origin, "the ELF header is cut short");
    const auto elf_class = static_cast<unsigned char>(ident[EI_CLASS]);
    const auto elf_data = static_cast<unsigned char>(ident[EI_DATA]);
    if (elf_class != ELFCLASS64 || elf_data != ELFDATA2LSB)
        return fail(PatchErrc::wrong_architecture, ENOEXEC, origin,
                    std::string("is a ") +
                        (elf_class == ELFCLASS32   ? "32-bit"
                         : elf_class == ELFCLASS64 ? "64-bit"
                                                   : "non-64-bit") +
                        (elf_data == ELFDATA2MSB ? " big-endian" : "") +
                        " ELF file; livepatchd patches x86-64 kernels: build the patch for x86_64");
    // gelf_get*(): copies, aligned; the image's own headers may lie at any offset a hostile
    // file chooses (UBSan: misaligned member access).
    GElf_Ehdr ehdr_copy{};
    const GElf_Ehdr* ehdr = gelf_getehdr(elf, &ehdr_copy);
    if (!ehdr || size < sizeof(Elf64_Ehdr))
        return malformed(origin, "the ELF header is cut short");
    if (ehdr->e_machine != EM_X86_64) {
        const std::string_view arch = machine_name(ehdr->e_machine);
        return fail(PatchErrc::wrong_architecture, ENOEXEC, origin,
                    "is built for " +
                        (arch.empty() ? "ELF machine " + std::to_string(ehdr->e_machine)
                                      : std::string(arch)) +
                        ", not x86-64; build the patch for x86_64");
    }
    if (ehdr->e_type != ET_REL)
        return fail(PatchErrc::not_a_module, ENOEXEC, origin,
                    "is " + std::string(elf_type_name(ehdr->e_type)) +
                        ", not a kernel module (a relocatable object, ET_REL); " +
                        writing_patches_hint);
    if (ehdr->e_shoff == 0)
        return fail(PatchErrc::not_a_module, ENOEXEC, origin,
                    "has no section headers, so it is not a kernel module; " +
                        writing_patches_hint);
    if (ehdr->e_shentsize != sizeof(Elf64_Shdr))
        return malformed(origin, "section header size is " + std::to_string(ehdr->e_shentsize) +
                                     ", not " + std::to_string(sizeof(Elf64_Shdr)));

    std::size_t count = 0;
    std::size_t strndx = 0;
    if (elf_getshdrnum(elf, &count) != 0 || count == 0)
        return elf_failure(origin, "the section header table cannot be read");
    if (elf_getshdrstrndx(elf, &strndx) != 0 || strndx == SHN_UNDEF || strndx >= count)
        return elf_failure(origin, "the section name table cannot be found");
    Elf_Scn* names = elf_getscn(elf, strndx);
    GElf_Shdr names_copy{};
    const GElf_Shdr* names_header = names ? gelf_getshdr(names, &names_copy) : nullptr;
    if (!names_header || names_header->sh_type == SHT_NOBITS ||
        names_header->sh_offset > size || names_header->sh_size > size - names_header->sh_offset)
        return malformed(origin, "the section name table lies beyond the end of the file");

    Elf_Scn* modinfo = nullptr;
    bool has_this_module = false;
    std::vector<Elf_Scn*> klp_sections;
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr header_copy{};
        const GElf_Shdr* header = gelf_getshdr(scn, &header_copy);
        if (!header)
            return elf_failure(origin, "a section header cannot be read");
        const char* name = elf_strptr(elf, strndx, header->sh_name);
        if (header->sh_flags & shf_rela_livepatch)
            klp_sections.push_back(scn);
        if (!name)
            continue; // a nameless section cannot be one we look for
        const std::string_view section = name;
        if (section == ".modinfo" && !modinfo)
            modinfo = scn;
        else if (section == ".gnu.linkonce.this_module")
            has_this_module = true;
    }
    if (!modinfo)
        return fail(PatchErrc::not_a_module, ENOEXEC, origin,
                    "has no .modinfo section, so it is an object file but not a kernel module; "
                    "link it into a .ko with the kernel's build system (kbuild), " +
                        writing_patches_hint);
    GElf_Shdr modinfo_copy{};
    const GElf_Shdr* modinfo_header = gelf_getshdr(modinfo, &modinfo_copy);
    if (!modinfo_header || modinfo_header->sh_type == SHT_NOBITS ||
        modinfo_header->sh_offset > size ||
        modinfo_header->sh_size > size - modinfo_header->sh_offset)
        return malformed(origin, "the .modinfo section lies beyond the end of the file");
    if (modinfo_header->sh_size > modinfo_max_size)
        return malformed(origin, "the .modinfo section is " +
                                     std::to_string(modinfo_header->sh_size) + " bytes long");
    std::string modinfo_text;
    if (modinfo_header->sh_size > 0) {
        // elf_rawdata: the bytes as in the file, whatever sh_type says.
        Elf_Data* data = elf_rawdata(modinfo, nullptr);
        if (!data || (data->d_size > 0 && !data->d_buf))
            return elf_failure(origin, "the .modinfo section cannot be read");
        modinfo_text.assign(static_cast<const char*>(data->d_buf), data->d_size);
    }
    if (!has_this_module)
        return fail(PatchErrc::not_a_module, ENOEXEC, origin,
                    "has no .gnu.linkonce.this_module section, so the kernel would not load it "
                    "as a module; build it with kbuild (which runs modpost), " +
                        writing_patches_hint);

    PatchFile patch;
    patch.modinfo = parse_modinfo(modinfo_text);
    const std::string* marker = find_value(patch.modinfo, "lpshim_patch");
    if (!marker || *marker != "Y") {
        std::string why = "is a kernel module, but not an lpshim patch: ";
        if (marker)
            why += "its modinfo says lpshim_patch=" + printable(marker->substr(0, 80)) +
                   ", not lpshim_patch=Y";
        else if (const std::string* upstream = find_value(patch.modinfo, "livepatch");
                 upstream && *upstream == "Y")
            why += "it is a patch for the kernel's own livepatch (livepatch=Y), which "
                   "livepatchd does not manage; rebuild it against lpshim/lpshim.h";
        else
            why += "its modinfo has no lpshim_patch=Y, which lpshim/lpshim.h adds to every "
                   "patch; is this the right file?";
        return fail(PatchErrc::not_a_patch, ENOEXEC, origin, why);
    }

    const std::string* name = find_value(patch.modinfo, "name");
    if (!name)
        return fail(PatchErrc::invalid_modinfo, ENOEXEC, origin,
                    "its modinfo has no name=, which kbuild's modpost adds to every module; "
                    "build it with kbuild");
    if (!is_valid_patch_name(*name))
        return fail(PatchErrc::invalid_modinfo, ENOEXEC, origin,
                    "its modinfo name \"" + printable(name->substr(0, 80)) +
                        "\" is not a kernel module name (1 to " +
                        std::to_string(patch_name_max) +
                        " letters, digits and underscores); build it with kbuild");
    patch.name = *name;

    const std::string* vermagic = find_value(patch.modinfo, "vermagic");
    if (!vermagic || kernel_release_of(*vermagic).empty())
        return fail(PatchErrc::invalid_modinfo, ENOEXEC, origin,
                    std::string(vermagic ? "its modinfo vermagic= is empty"
                                         : "its modinfo has no vermagic=") +
                        ", so the kernel it was built for is unknown; build it with kbuild "
                        "against the kernel's headers");
    if (!is_valid_utf8(*vermagic))
        return fail(PatchErrc::invalid_modinfo, ENOEXEC, origin,
                    "its modinfo vermagic= is not text; build it with kbuild against the "
                    "kernel's headers");
    patch.vermagic = *vermagic;
    patch.built_for = std::string(kernel_release_of(*vermagic));
    // Shown on the bus, which takes UTF-8 only: anything else is shown escaped.
    if (const std::string* description = find_value(patch.modinfo, "description"))
        patch.description = printable(*description);
    if (const std::string* srcversion = find_value(patch.modinfo, "srcversion"))
        patch.srcversion = printable(*srcversion);
    if (!klp_sections.empty()) {
        const std::string* livepatch = find_value(patch.modinfo, "livepatch");
        if (!livepatch || *livepatch != "Y")
            return fail(PatchErrc::invalid_relocations, ENOEXEC, origin,
                        "has livepatch relocations (references to symbols that are not "
                        "exported) but its modinfo has no livepatch=Y, without which the "
                        "kernel keeps nothing lpshim needs to apply them; rebuild it with "
                        "this lpshim/lpshim.h (LPSHIM_PATCH_MODULE() adds it)");
        auto objects = read_livepatch_relocations(elf, strndx, size, klp_sections, origin);
        if (!objects)
            return std::move(objects).error();
        patch.livepatch_objects = std::move(*objects);
    }
    return patch;
}

void init_libelf()
{
    static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
    if (!ready)
        throw std::runtime_error("libelf: elf_version(EV_CURRENT) failed");
}

} // namespace

PatchResult<PatchFile> PatchFile::read(int fd, std::string_view origin)
{
    struct stat st {};
    if (::fstat(fd, &st) < 0)
        return io_error(origin, "cannot examine the file", errno);
    if (!S_ISREG(st.st_mode))
        return fail(PatchErrc::not_regular_file, EINVAL, origin,
                    "is not a regular file; name the patch module (.ko) itself");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > patch_file_max_size)
        return fail(PatchErrc::too_large, EFBIG, origin,
                    "is " + std::to_string(size) + " bytes long, more than the " +
                        std::to_string(patch_file_max_size) +
                        " a patch module may have; is this really a patch?");
    if (size < SELFMAG)
        return fail(PatchErrc::not_elf, ENOEXEC, origin,
                    "is not an ELF file, so it cannot be a kernel module; " +
                        writing_patches_hint);
    init_libelf();
    // ELF_C_READ: libelf reads what it needs with pread(), so that a file changed under us
    // yields wrong bytes (which the checks and the digest catch), never a SIGBUS of a mapping.
    char head[SELFMAG] = {};
    for (ssize_t n; (n = ::pread(fd, head, sizeof head, 0)) != static_cast<ssize_t>(sizeof head);)
        if (n >= 0 || errno != EINTR)
            return n < 0 ? io_error(origin, "cannot read the file", errno)
                         : malformed(origin, "the file ended early (was it changed while being "
                                             "read?)");
    ElfPtr elf(elf_begin(fd, ELF_C_READ, nullptr));
    if (!elf)
        return elf_failure(origin, "the file cannot be read as ELF");
    return read_elf(elf.get(), size, std::string_view(head, sizeof head), origin);
}

PatchResult<PatchFile> PatchFile::parse(std::string_view bytes, std::string_view origin)
{
    if (bytes.size() > patch_file_max_size)
        return fail(PatchErrc::too_large, EFBIG, origin, "is too large");
    if (bytes.size() < SELFMAG)
        return fail(PatchErrc::not_elf, ENOEXEC, origin,
                    "is not an ELF file, so it cannot be a kernel module; " +
                        writing_patches_hint);
    init_libelf();
    // elf_memory() may write to the image (it does not here, with read-only commands); give it
    // a copy so the caller's bytes stay const.
    std::string image(bytes);
    ElfPtr elf(elf_memory(image.data(), image.size()));
    if (!elf)
        return elf_failure(origin, "the file cannot be read as ELF");
    return read_elf(elf.get(), image.size(), bytes, origin);
}

PatchResult<void> PatchFile::check_kernel(std::string_view origin,
                                          std::string_view kernel_release) const
{
    if (built_for == kernel_release)
        return {};
    return fail(PatchErrc::kernel_mismatch, ENOEXEC, origin,
                "built for " + built_for + ", but this kernel is " + std::string(kernel_release) +
                    "; rebuild it against linux-headers-" + std::string(kernel_release) +
                    " (the build directory of the running kernel)");
}

PatchResult<PatchFile> PatchFile::validate(int fd, std::string_view origin,
                                           std::string_view kernel_release)
{
    auto patch = read(fd, origin);
    if (!patch)
        return patch;
    if (auto r = patch->check_kernel(origin, kernel_release); !r)
        return std::move(r).error();
    return patch;
}

PatchResult<PatchFile> PatchFile::validate(const std::filesystem::path& path,
                                           std::string_view kernel_release)
{
    // O_NONBLOCK: opening a FIFO must not hang the caller; fstat() then refuses it.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd)
        return io_error(path.native(), "cannot open the file", errno);
    return validate(fd.get(), path.native(), kernel_release);
}

} // namespace livepatchd
