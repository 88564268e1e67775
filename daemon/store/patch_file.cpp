// SPDX-License-Identifier: GPL-2.0-only
#include "patch_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "unique_fd.hpp"

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

// Reads exactly size bytes at offset. The caller has checked offset + size against the file's
// size, so a short read means the file shrank under us.
PatchResult<void> read_at(int fd, std::uint64_t offset, void* buffer, std::size_t size,
                          std::string_view origin)
{
    auto* out = static_cast<char*>(buffer);
    while (size > 0) {
        const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_error(origin, "cannot read the file", errno);
        }
        if (n == 0)
            return malformed(origin, "the file ended early (was it changed while being read?)");
        out += n;
        offset += static_cast<std::uint64_t>(n);
        size -= static_cast<std::size_t>(n);
    }
    return {};
}

// offset + size <= limit, without overflow.
bool fits(std::uint64_t offset, std::uint64_t size, std::uint64_t limit)
{
    return offset <= limit && size <= limit - offset;
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

struct Sections {
    std::optional<Elf64_Shdr> modinfo;
    bool has_this_module = false;
};

PatchResult<Sections> find_sections(int fd, const Elf64_Ehdr& ehdr, std::uint64_t file_size,
                                    std::string_view origin)
{
    if (ehdr.e_shoff == 0)
        return fail(PatchErrc::not_a_module, ENOEXEC, origin,
                    "has no section headers, so it is not a kernel module; " +
                        writing_patches_hint);
    if (ehdr.e_shentsize != sizeof(Elf64_Shdr))
        return malformed(origin, "section header size is " + std::to_string(ehdr.e_shentsize) +
                                     ", not " + std::to_string(sizeof(Elf64_Shdr)));
    if (!fits(ehdr.e_shoff, sizeof(Elf64_Shdr), file_size))
        return malformed(origin, "the section headers lie beyond the end of the file");

    // Section 0 holds the real count and string table index when they do not fit in the ELF
    // header (more than 0xff00 sections: large modules built with -ffunction-sections).
    Elf64_Shdr first{};
    if (auto r = read_at(fd, ehdr.e_shoff, &first, sizeof first, origin); !r)
        return std::move(r).error();
    const std::uint64_t count = ehdr.e_shnum != 0 ? ehdr.e_shnum : first.sh_size;
    const std::uint64_t strndx = ehdr.e_shstrndx != SHN_XINDEX ? ehdr.e_shstrndx : first.sh_link;
    if (count == 0 || count > (file_size - ehdr.e_shoff) / sizeof(Elf64_Shdr))
        return malformed(origin, "the section header table lies beyond the end of the file");
    if (strndx == SHN_UNDEF || strndx >= count)
        return malformed(origin, "the section name table index " + std::to_string(strndx) +
                                     " is out of range");

    std::vector<Elf64_Shdr> headers(count);
    if (auto r = read_at(fd, ehdr.e_shoff, headers.data(), count * sizeof(Elf64_Shdr), origin);
        !r)
        return std::move(r).error();

    const Elf64_Shdr& names_header = headers[strndx];
    if (names_header.sh_type == SHT_NOBITS ||
        !fits(names_header.sh_offset, names_header.sh_size, file_size))
        return malformed(origin, "the section name table lies beyond the end of the file");
    std::string names(names_header.sh_size, '\0');
    if (auto r = read_at(fd, names_header.sh_offset, names.data(), names.size(), origin); !r)
        return std::move(r).error();

    Sections sections;
    for (const Elf64_Shdr& header : headers) {
        if (header.sh_name >= names.size())
            continue; // a nameless section cannot be one we look for
        const char* start = names.data() + header.sh_name;
        const std::string_view name(start, strnlen(start, names.size() - header.sh_name));
        if (name == ".modinfo" && !sections.modinfo)
            sections.modinfo = header;
        else if (name == ".gnu.linkonce.this_module")
            sections.has_this_module = true;
    }
    return sections;
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

    // Identification first: a wrong file should be called what it is, not "truncated".
    unsigned char ident[EI_NIDENT] = {};
    if (size >= SELFMAG) {
        if (auto r = read_at(fd, 0, ident, std::min<std::uint64_t>(size, EI_NIDENT), origin); !r)
            return std::move(r).error();
    }
    if (size < SELFMAG || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
        return fail(PatchErrc::not_elf, ENOEXEC, origin,
                    "is not an ELF file, so it cannot be a kernel module; " +
                        writing_patches_hint);
    if (size < sizeof(Elf64_Ehdr) && ident[EI_CLASS] == ELFCLASS64)
        return malformed(origin, "the ELF header is cut short");
    if (ident[EI_CLASS] != ELFCLASS64 || ident[EI_DATA] != ELFDATA2LSB)
        return fail(PatchErrc::wrong_architecture, ENOEXEC, origin,
                    std::string("is a ") +
                        (ident[EI_CLASS] == ELFCLASS32   ? "32-bit"
                         : ident[EI_CLASS] == ELFCLASS64 ? "64-bit"
                                                         : "non-64-bit") +
                        (ident[EI_DATA] == ELFDATA2MSB ? " big-endian" : "") +
                        " ELF file; livepatchd patches x86-64 kernels: build the patch for x86_64");

    Elf64_Ehdr ehdr{};
    if (auto r = read_at(fd, 0, &ehdr, sizeof ehdr, origin); !r)
        return std::move(r).error();
    if (ehdr.e_machine != EM_X86_64) {
        const std::string_view arch = machine_name(ehdr.e_machine);
        return fail(PatchErrc::wrong_architecture, ENOEXEC, origin,
                    "is built for " +
                        (arch.empty() ? "ELF machine " + std::to_string(ehdr.e_machine)
                                      : std::string(arch)) +
                        ", not x86-64; build the patch for x86_64");
    }
    if (ehdr.e_type != ET_REL)
        return fail(PatchErrc::not_a_module, ENOEXEC, origin,
                    "is " + std::string(elf_type_name(ehdr.e_type)) +
                        ", not a kernel module (a relocatable object, ET_REL); " +
                        writing_patches_hint);

    auto sections = find_sections(fd, ehdr, size, origin);
    if (!sections)
        return std::move(sections).error();
    if (!sections->modinfo)
        return fail(PatchErrc::not_a_module, ENOEXEC, origin,
                    "has no .modinfo section, so it is an object file but not a kernel module; "
                    "link it into a .ko with the kernel's build system (kbuild), " +
                        writing_patches_hint);
    const Elf64_Shdr& modinfo_header = *sections->modinfo;
    if (modinfo_header.sh_type == SHT_NOBITS ||
        !fits(modinfo_header.sh_offset, modinfo_header.sh_size, size))
        return malformed(origin, "the .modinfo section lies beyond the end of the file");
    if (modinfo_header.sh_size > modinfo_max_size)
        return malformed(origin, "the .modinfo section is " +
                                     std::to_string(modinfo_header.sh_size) + " bytes long");
    std::string modinfo_text(modinfo_header.sh_size, '\0');
    if (auto r = read_at(fd, modinfo_header.sh_offset, modinfo_text.data(), modinfo_text.size(),
                         origin);
        !r)
        return std::move(r).error();
    if (!sections->has_this_module)
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
            why += "its modinfo says lpshim_patch=" + *marker + ", not lpshim_patch=Y";
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
                    "its modinfo name \"" + name->substr(0, 80) +
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
    patch.vermagic = *vermagic;
    patch.built_for = std::string(kernel_release_of(*vermagic));
    if (const std::string* description = find_value(patch.modinfo, "description"))
        patch.description = *description;
    if (const std::string* srcversion = find_value(patch.modinfo, "srcversion"))
        patch.srcversion = *srcversion;
    return patch;
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
