// SPDX-License-Identifier: GPL-2.0-only
//
// PatchFile: every outcome of checking a patch module, on ELF files the tests build, and the
// wording that tells the admin what to do.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "allocation_budget.hpp"
#include "elf_builder.hpp"
#include "store/patch_file.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using namespace livepatchd::test;

namespace {

const std::string this_kernel = "6.1.0-56-amd64";

PatchFile validate_ok(const TempDir& dir, const std::string& bytes,
                      const std::string& release = this_kernel)
{
    const auto path = dir.write("patch.ko", bytes);
    auto result = PatchFile::validate(path, release);
    if (!result)
        FAIL("unexpected error: " << result.error().message);
    return *result;
}

PatchError validate_error(const TempDir& dir, const std::string& bytes, PatchErrc expected,
                          const std::string& release = this_kernel)
{
    const auto path = dir.write("patch.ko", bytes);
    auto result = PatchFile::validate(path, release);
    if (result)
        FAIL("accepted a file that should be " << to_string(expected));
    const PatchError& error = result.error();
    CHECK_MESSAGE(error.code == expected, "got " << to_string(error.code) << ": " << error.message);
    // Every message names the file it is about.
    CHECK(error.message.starts_with(path.native() + ": "));
    return error;
}

bool contains(const std::string& text, std::string_view part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a well-formed patch module is accepted and described")
{
    TempDir dir;
    const PatchFile patch = validate_ok(dir, build_elf());
    CHECK(patch.name == "lp_fix_cve");
    CHECK(patch.vermagic == default_vermagic);
    CHECK(patch.built_for == "6.1.0-56-amd64");
    CHECK(patch.description == "fix for CVE-2099-0001");
    CHECK(patch.srcversion == "0123456789ABCDEF012345");
    CHECK(patch.modinfo.size() == 8);
    CHECK(patch.modinfo[2] == ModinfoEntry{"lpshim_patch", "Y"});
}

TEST_CASE("more than 0xff00 sections: counts in section 0 are followed")
{
    TempDir dir;
    ElfSpec spec;
    spec.extended_numbering = true;
    CHECK(validate_ok(dir, build_elf(spec)).name == "lp_fix_cve");
}

TEST_CASE("KernelMismatch: the message names both releases and the headers to build against")
{
    TempDir dir;
    const PatchError error =
        validate_error(dir, build_elf(), PatchErrc::kernel_mismatch, "6.12.57+deb12-amd64");
    CHECK(error.errnum == ENOEXEC);
    CHECK(contains(error.message,
                   "built for 6.1.0-56-amd64, but this kernel is 6.12.57+deb12-amd64; rebuild it "
                   "against linux-headers-6.12.57+deb12-amd64"));
    CHECK(to_string(error.code) == "KernelMismatch");
}

TEST_CASE("the release is the first word of vermagic, not a prefix match")
{
    TempDir dir;
    ElfSpec spec;
    spec.modinfo = patch_modinfo("lp_a", "6.1.0-56-amd64-rt SMP PREEMPT_RT");
    validate_error(dir, build_elf(spec), PatchErrc::kernel_mismatch, "6.1.0-56-amd64");
    spec.modinfo = patch_modinfo("lp_a", "6.1.0-56-amd64");
    CHECK(validate_ok(dir, build_elf(spec)).built_for == "6.1.0-56-amd64");
}

TEST_CASE("NotElf: text, empty and tiny files")
{
    TempDir dir;
    for (const std::string& bytes : {std::string("#!/bin/sh\necho not a module\n"), std::string(),
                                     std::string("\x7f" "EL", 3)}) {
        CAPTURE(bytes);
        const PatchError error = validate_error(dir, bytes, PatchErrc::not_elf);
        CHECK(contains(error.message, "is not an ELF file"));
        CHECK(contains(error.message, "lpshim/lpshim.h"));
        // The content of the file is never echoed back (the caller may not be its owner).
        CHECK(!contains(error.message, "echo"));
    }
}

TEST_CASE("WrongArchitecture: 32-bit, big-endian and other machines")
{
    TempDir dir;
    ElfSpec spec;
    spec.elf_class = ELFCLASS32;
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::wrong_architecture).message,
                   "32-bit"));

    spec = {};
    spec.data = ELFDATA2MSB;
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::wrong_architecture).message,
                   "big-endian"));

    spec = {};
    spec.machine = EM_AARCH64;
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::wrong_architecture).message,
                   "is built for aarch64, not x86-64"));

    spec.machine = 4242;
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::wrong_architecture).message,
                   "ELF machine 4242"));
}

TEST_CASE("NotAModule: executables, shared objects, objects without module sections")
{
    TempDir dir;
    ElfSpec spec;
    spec.type = ET_EXEC;
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::not_a_module).message,
                   "is an executable, not a kernel module"));
    spec.type = ET_DYN;
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::not_a_module).message,
                   "shared object"));

    spec = {};
    spec.modinfo = std::nullopt;
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::not_a_module).message,
                   "no .modinfo section"));

    spec = {};
    spec.this_module = false;
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::not_a_module).message,
                   "no .gnu.linkonce.this_module"));

    std::string file = build_elf();
    Elf64_Ehdr ehdr = elf_header(file);
    ehdr.e_shoff = 0;
    set_elf_header(file, ehdr);
    CHECK(contains(validate_error(dir, file, PatchErrc::not_a_module).message,
                   "no section headers"));
}

TEST_CASE("Malformed: headers pointing outside the file, truncation")
{
    TempDir dir;
    const std::string good = build_elf();

    SUBCASE("section headers beyond the end")
    {
        std::string file = good;
        Elf64_Ehdr ehdr = elf_header(file);
        ehdr.e_shoff = file.size() + 4096;
        set_elf_header(file, ehdr);
        validate_error(dir, file, PatchErrc::malformed);
    }
    SUBCASE("section header table longer than the file")
    {
        std::string file = good;
        Elf64_Ehdr ehdr = elf_header(file);
        ehdr.e_shnum = 60000;
        set_elf_header(file, ehdr);
        validate_error(dir, file, PatchErrc::malformed);
    }
    SUBCASE("huge offsets do not wrap around")
    {
        std::string file = good;
        Elf64_Ehdr ehdr = elf_header(file);
        ehdr.e_shoff = ~Elf64_Off{0} - 8;
        set_elf_header(file, ehdr);
        validate_error(dir, file, PatchErrc::malformed);
    }
    SUBCASE("wrong section header size")
    {
        std::string file = good;
        Elf64_Ehdr ehdr = elf_header(file);
        ehdr.e_shentsize = 40;
        set_elf_header(file, ehdr);
        CHECK(contains(validate_error(dir, file, PatchErrc::malformed).message,
                       "section header size is 40"));
    }
    SUBCASE("section name table index out of range")
    {
        std::string file = good;
        Elf64_Ehdr ehdr = elf_header(file);
        ehdr.e_shstrndx = 99;
        set_elf_header(file, ehdr);
        validate_error(dir, file, PatchErrc::malformed);
    }
    SUBCASE(".modinfo beyond the end")
    {
        std::string file = good;
        Elf64_Shdr modinfo = section_header(file, 1);
        modinfo.sh_offset = file.size() - 2;
        set_section_header(file, 1, modinfo);
        CHECK(contains(validate_error(dir, file, PatchErrc::malformed).message, ".modinfo"));
    }
    SUBCASE(".modinfo without data (SHT_NOBITS)")
    {
        ElfSpec spec;
        spec.modinfo_nobits = true;
        validate_error(dir, build_elf(spec), PatchErrc::malformed);
    }
    SUBCASE("a 64-bit ELF header cut short")
    {
        const PatchError error = validate_error(dir, good.substr(0, 30), PatchErrc::malformed);
        CHECK(contains(error.message, "damaged or truncated"));
    }
    SUBCASE("the file cut in the middle of the section headers")
    {
        validate_error(dir, good.substr(0, good.size() - 10), PatchErrc::malformed);
    }
}

TEST_CASE("NotAPatch: a module without the marker, with another value, an upstream livepatch")
{
    TempDir dir;
    ElfSpec spec;
    spec.modinfo = modinfo_text({{"license", "GPL"}, {"name", "e1000e"},
                                 {"vermagic", default_vermagic}});
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::not_a_patch).message,
                   "no lpshim_patch=Y"));

    spec.modinfo = modinfo_text({{"lpshim_patch", "N"}, {"name", "lp_a"},
                                 {"vermagic", default_vermagic}});
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::not_a_patch).message,
                   "lpshim_patch=N, not lpshim_patch=Y"));

    spec.modinfo = modinfo_text({{"livepatch", "Y"}, {"name", "livepatch_sample"},
                                 {"vermagic", default_vermagic}});
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::not_a_patch).message,
                   "kernel's own livepatch (livepatch=Y)"));
}

TEST_CASE("InvalidModinfo: name and vermagic")
{
    TempDir dir;
    ElfSpec spec;

    spec.modinfo = modinfo_text({{"lpshim_patch", "Y"}, {"vermagic", default_vermagic}});
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::invalid_modinfo).message,
                   "no name="));

    for (const std::string& bad : {std::string("lp-dash"), std::string("lp/slash"),
                                   std::string(".."), std::string(56, 'a'), std::string()}) {
        CAPTURE(bad);
        spec.modinfo = patch_modinfo(bad);
        CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::invalid_modinfo).message,
                       "is not a kernel module name"));
    }

    spec.modinfo = modinfo_text({{"lpshim_patch", "Y"}, {"name", "lp_a"}});
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::invalid_modinfo).message,
                   "no vermagic="));

    spec.modinfo = patch_modinfo("lp_a", "   ");
    CHECK(contains(validate_error(dir, build_elf(spec), PatchErrc::invalid_modinfo).message,
                   "vermagic= is empty"));
}

TEST_CASE("the first of repeated modinfo keys counts, as in the kernel")
{
    TempDir dir;
    ElfSpec spec;
    spec.modinfo = patch_modinfo("lp_first") + modinfo_text({{"name", "lp_second"}});
    CHECK(validate_ok(dir, build_elf(spec)).name == "lp_first");
}

TEST_CASE("NotRegularFile, TooLarge and unreadable paths")
{
    TempDir dir;
    auto as_directory = PatchFile::validate(dir.path, this_kernel);
    REQUIRE(!as_directory);
    CHECK(as_directory.error().code == PatchErrc::not_regular_file);

    const auto big = dir.path / "big.ko";
    {
        const int fd = ::open(big.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(::ftruncate(fd, static_cast<off_t>(patch_file_max_size) + 1) == 0); // sparse
        ::close(fd);
    }
    auto too_large = PatchFile::validate(big, this_kernel);
    REQUIRE(!too_large);
    CHECK(too_large.error().code == PatchErrc::too_large);
    CHECK(too_large.error().errnum == EFBIG);

    auto missing = PatchFile::validate(dir.path / "missing.ko", this_kernel);
    REQUIRE(!missing);
    CHECK(missing.error().code == PatchErrc::io);
    CHECK(missing.error().errnum == ENOENT);
    CHECK(missing.error().message ==
          (dir.path / "missing.ko").native() + ": cannot open the file: No such file or directory");

    const auto fifo = dir.path / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto from_fifo = PatchFile::validate(fifo, this_kernel); // must not hang
    REQUIRE(!from_fifo);
    CHECK(from_fifo.error().code == PatchErrc::not_regular_file);
}

TEST_CASE("parse_modinfo: padding, entries without '=', no final NUL")
{
    using namespace std::string_literals;
    const auto entries = parse_modinfo("a=1\0\0\0junk\0=novalue\0b=x=y\0c="s + "\0\0d=last"s);
    REQUIRE(entries.size() == 4);
    CHECK(entries[0] == ModinfoEntry{"a", "1"});
    CHECK(entries[1] == ModinfoEntry{"b", "x=y"});
    CHECK(entries[2] == ModinfoEntry{"c", ""});
    CHECK(entries[3] == ModinfoEntry{"d", "last"});
    CHECK(parse_modinfo("").empty());
}

TEST_CASE("kernel_release_of and is_valid_patch_name")
{
    CHECK(kernel_release_of("6.1.0-56-amd64 SMP preempt") == "6.1.0-56-amd64");
    CHECK(kernel_release_of("  6.12.57+deb12-amd64") == "6.12.57+deb12-amd64");
    CHECK(kernel_release_of("6.1.0") == "6.1.0");
    CHECK(kernel_release_of("").empty());

    CHECK(is_valid_patch_name("lp_fix_cve"));
    CHECK(is_valid_patch_name("A9_z"));
    CHECK(is_valid_patch_name(std::string(patch_name_max, 'x')));
    CHECK(!is_valid_patch_name(std::string(patch_name_max + 1, 'x')));
    CHECK(!is_valid_patch_name(""));
    CHECK(!is_valid_patch_name("lp-fix"));
    CHECK(!is_valid_patch_name("lp.fix"));
    CHECK(!is_valid_patch_name("../etc"));
}

TEST_CASE("every named outcome has a D-Bus-style name")
{
    CHECK(to_string(PatchErrc::not_elf) == "NotElf");
    CHECK(to_string(PatchErrc::not_a_patch) == "NotAPatch");
    CHECK(to_string(PatchErrc::already_installed) == "AlreadyInstalled");
    CHECK(to_string(PatchErrc::not_installed) == "NotInstalled");
}

namespace {

std::string with_livepatch_modinfo()
{
    return patch_modinfo() + modinfo_text({{"livepatch", "Y"}});
}

} // namespace

TEST_CASE("livepatch relocations: the objects and how many non-exported symbols each needs")
{
    TempDir dir;
    ElfSpec spec;
    spec.modinfo = with_livepatch_modinfo();
    spec.klp_sections = {
        {".klp.rela.vmlinux.text",
         {{".klp.sym.vmlinux.saved_command_line,0", R_X86_64_PC32},
          {".klp.sym.vmlinux.hugetlb_report_meminfo,0", R_X86_64_PLT32},
          {".klp.sym.vmlinux.saved_command_line,0", R_X86_64_PC32}}},
        {".klp.rela.loop.text", {{".klp.sym.loop.lo_rw_aio,0", R_X86_64_PLT32}}},
        {".klp.rela.vmlinux.rodata", {{".klp.sym.vmlinux.dup_fn,2", R_X86_64_64}}},
    };
    const PatchFile patch = validate_ok(dir, build_elf(spec));
    REQUIRE(patch.livepatch_objects.size() == 2);
    CHECK(patch.livepatch_objects[0] == LivepatchObject{"vmlinux", 3});
    CHECK(patch.livepatch_objects[1] == LivepatchObject{"loop", 1});
}

TEST_CASE("livepatch relocations: long names cost what the checks read, not their length")
{
    // Every section may name the same string, and one relocation's symbol the same long name:
    // a crafted file must not make the daemon (as root, after authorization) copy a name once
    // per section or relocation. Here 16 sections named with 1 MiB each, all valid. (Read from
    // a file, as the daemon does: libelf's own buffers are malloc'ed, outside the budget.)
    TempDir dir;
    ElfSpec spec;
    spec.modinfo = with_livepatch_modinfo();
    const std::string long_section = ".klp.rela.vmlinux." + std::string(1 << 20, 't');
    for (int i = 0; i < 16; ++i)
        spec.klp_sections.push_back({long_section, {{".klp.sym.vmlinux.f" + std::to_string(i) + ",0",
                                                     R_X86_64_PC32}}});
    const auto long_sections = dir.write("long.ko", build_elf(spec));
    std::optional<PatchResult<PatchFile>> result;
    {
        AllocationBudget budget(512 * 1024);
        result.emplace(PatchFile::validate(long_sections, this_kernel));
    }
    REQUIRE(*result);
    REQUIRE((*result)->livepatch_objects.size() == 1);
    CHECK((*result)->livepatch_objects[0] == LivepatchObject{"vmlinux", 16});

    // A symbol name of 1 MiB is refused, naming its start, in the same bounds.
    spec.klp_sections = {{".klp.rela.vmlinux.text",
                          {{".klp.sym.vmlinux." + std::string(1 << 20, 's') + ",0", R_X86_64_PC32}}}};
    const auto long_symbol = dir.write("long-symbol.ko", build_elf(spec));
    {
        AllocationBudget budget(512 * 1024);
        result.emplace(PatchFile::validate(long_symbol, this_kernel));
    }
    REQUIRE_FALSE(*result);
    CHECK((*result).error().code == PatchErrc::invalid_relocations);
    CHECK(contains((*result).error().message, "livepatch symbol '.klp.sym.vmlinux.sss"));
    CHECK((*result).error().message.size() < 1024);
}

TEST_CASE("livepatch relocations: none in a patch of exported symbols only")
{
    TempDir dir;
    CHECK(validate_ok(dir, build_elf()).livepatch_objects.empty());
}

TEST_CASE("InvalidRelocations: what the kernel or lpshim would refuse at load")
{
    TempDir dir;
    ElfSpec spec;
    spec.modinfo = with_livepatch_modinfo();
    const auto refused = [&](const KlpRelaSpec& section, std::string_view why,
                             std::vector<std::string> plain = {}) {
        spec.klp_sections = {section};
        spec.plain_symbols = std::move(plain);
        const PatchError error = validate_error(dir, build_elf(spec), PatchErrc::invalid_relocations);
        CHECK_MESSAGE(contains(error.message, why), error.message);
        CHECK(contains(error.message, "docs/klp-convert.md"));
    };
    refused({".klp.rela..text", {{".klp.sym.vmlinux.x,0", R_X86_64_PC32}}},
            "livepatch relocation section '.klp.rela..text' is not named .klp.rela.<object>.<section>");
    refused({".klp.rela.loop", {{".klp.sym.loop.x,0", R_X86_64_PC32}}},
            "section '.klp.rela.loop' is not named");
    // An object is a module's name (or vmlinux): a byte outside one is refused here, before
    // the store records it (its record's JSON refused it after the module was in place).
    refused({".klp.rela.lo\xffop.text", {{".klp.sym.lo\xffop.x,0", R_X86_64_PC32}}},
            "is not named .klp.rela.<object>.<section>");
    refused({".klp.rela.vmlinux.text", {{".klp.sym.vmlinux.x,0", R_X86_64_PC32}}, SHT_REL},
            "'.klp.rela.vmlinux.text' is not SHT_RELA");
    refused({".klp.rela.vmlinux.text", {{".klp.sym.vmlinux.x,0", R_X86_64_GOTPCREL}}},
            "relocation 0 of '.klp.rela.vmlinux.text' has type 9, which the kernel does not apply");
    refused({".klp.rela.vmlinux.text", {{"saved_command_line", R_X86_64_PC32}}},
            "refers to 'saved_command_line', which is not a livepatch symbol (SHN_LIVEPATCH)",
            {"saved_command_line"});
    refused({".klp.rela.vmlinux.text", {{".klp.sym.vmlinux.saved_command_line", R_X86_64_PC32}}},
            "livepatch symbol '.klp.sym.vmlinux.saved_command_line' is not named "
            ".klp.sym.<object>.<name>,<position>");
    refused({".klp.rela.vmlinux.text", {{".klp.sym.vmlinux.x,-1", R_X86_64_PC32}}},
            "livepatch symbol '.klp.sym.vmlinux.x,-1' is not named");
    refused({".klp.rela.loop.text", {{".klp.sym.vmlinux.saved_command_line,0", R_X86_64_PC32}}},
            "livepatch symbol '.klp.sym.vmlinux.saved_command_line,0' is not in 'loop', the "
            "object of section '.klp.rela.loop.text'");
}

TEST_CASE("InvalidRelocations: relocations without livepatch=Y")
{
    TempDir dir;
    ElfSpec spec;
    spec.klp_sections = {{".klp.rela.vmlinux.text", {{".klp.sym.vmlinux.x,0", R_X86_64_PC32}}}};
    const PatchError error = validate_error(dir, build_elf(spec), PatchErrc::invalid_relocations);
    CHECK(contains(error.message, "has livepatch relocations (references to symbols that are not "
                                  "exported) but its modinfo has no livepatch=Y"));
    CHECK(to_string(PatchErrc::invalid_relocations) == "InvalidRelocations");
}
