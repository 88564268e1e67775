// SPDX-License-Identifier: GPL-2.0-only
//
// PatchStore: install, remove and list over a scratch state directory; the path rules for
// files callers name; what a crash can leave behind and how open() tidies it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "elf_builder.hpp"
#include "store/patch_store.hpp"
#include "store/digest.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using namespace livepatchd::test;
namespace fs = std::filesystem;

namespace {

const std::string this_kernel = "6.1.0-56-amd64";
constexpr std::uint64_t install_time = 1'700'000'000'123'456;

PatchStore open_store(const TempDir& dir)
{
    auto store = PatchStore::open(dir.path / "state", [] { return install_time; });
    if (!store)
        FAIL("cannot open the store: " << store.error().message);
    return std::move(store).value();
}

std::string patch_bytes(const std::string& name)
{
    ElfSpec spec;
    spec.modinfo = patch_modinfo(name);
    return build_elf(spec);
}

std::string sha256_of(std::string_view bytes)
{
    Sha256 hash;
    hash.update(bytes);
    return hash.hex_digest();
}

// What livepatchctl does: open the file with the caller's rights, pass the fd.
PatchResult<InstalledPatch> install_path(PatchStore& store, const std::string& path,
                                         const std::string& release = this_kernel)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd)
        return PatchError(PatchErrc::io, errno, path + ": cannot open the file");
    return store.install(std::move(fd), path, release);
}

PatchError install_error(PatchStore& store, const std::string& path, PatchErrc expected,
                         const std::string& release = this_kernel)
{
    auto result = install_path(store, path, release);
    if (result)
        FAIL("installed " << path << ", expected " << to_string(expected));
    CHECK_MESSAGE(result.error().code == expected,
                  "got " << to_string(result.error().code) << ": " << result.error().message);
    return result.error();
}

// The names in the store's directory, temporaries included.
std::vector<std::string> store_files(const TempDir& dir)
{
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir.path / "state" / "patches"))
        names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    return names;
}

bool contains(const std::string& text, std::string_view part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("install copies the checked module and records it")
{
    TempDir dir;
    PatchStore store = open_store(dir);
    const std::string bytes = patch_bytes("lp_fix_cve");
    const fs::path source = dir.write("src/lp_fix_cve.ko", bytes);

    auto installed = install_path(store, source.native());
    REQUIRE_MESSAGE(installed, installed.error().message);
    CHECK(installed->name == "lp_fix_cve");
    CHECK(installed->file == dir.path / "state/patches/lp_fix_cve.ko");
    CHECK(installed->installed_at_usec == install_time);
    CHECK(installed->sha256 == sha256_of(bytes));
    CHECK(installed->size == bytes.size());
    CHECK(installed->source == source.native());
    CHECK(installed->built_for == this_kernel);
    CHECK(installed->vermagic == default_vermagic);
    CHECK(installed->description == "fix for CVE-2099-0001");
    CHECK(installed->problem.empty());

    CHECK(dir.read("state/patches/lp_fix_cve.ko") == bytes);
    struct stat st {};
    REQUIRE(::stat(installed->file.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(store_files(dir) == std::vector<std::string>{"lp_fix_cve.json", "lp_fix_cve.ko"});

    const auto record = nlohmann::json::parse(dir.read("state/patches/lp_fix_cve.json"));
    CHECK(record.at("sha256") == sha256_of(bytes));
    CHECK(record.at("installed_at_usec") == install_time);

    auto found = store.find("lp_fix_cve");
    REQUIRE(found);
    CHECK(*found == *installed);
}

TEST_CASE("AlreadyInstalled: a second patch of the same name is refused, the first kept")
{
    TempDir dir;
    PatchStore store = open_store(dir);
    const std::string first = patch_bytes("lp_a");
    REQUIRE(install_path(store, dir.write("one/lp_a.ko", first).native()));

    ElfSpec spec;
    spec.modinfo = patch_modinfo("lp_a") + modinfo_text({{"version", "2"}});
    const PatchError error = install_error(store, dir.write("two/lp_a.ko", build_elf(spec)),
                                           PatchErrc::already_installed);
    CHECK(error.errnum == EEXIST);
    CHECK(contains(error.message, "a patch named lp_a is already installed (sha256 " +
                                      sha256_of(first) + ")"));
    CHECK(contains(error.message, "remove it"));
    CHECK(dir.read("state/patches/lp_a.ko") == first);
    CHECK(store_files(dir) == std::vector<std::string>{"lp_a.json", "lp_a.ko"});
}

TEST_CASE("a refused file leaves nothing in the store")
{
    TempDir dir;
    PatchStore store = open_store(dir);
    const fs::path patch = dir.write("lp_a.ko", patch_bytes("lp_a"));

    const PatchError mismatch =
        install_error(store, patch.native(), PatchErrc::kernel_mismatch, "6.12.57+deb12-amd64");
    CHECK(mismatch.message.starts_with(patch.native() + ": built for 6.1.0-56-amd64"));
    install_error(store, dir.write("text.ko", "hello").native(), PatchErrc::not_elf);
    ElfSpec spec;
    spec.modinfo = modinfo_text({{"name", "e1000e"}, {"vermagic", default_vermagic}});
    install_error(store, dir.write("e1000e.ko", build_elf(spec)).native(),
                  PatchErrc::not_a_patch);

    CHECK(store_files(dir).empty());
    auto listed = store.list();
    REQUIRE(listed);
    CHECK(listed->empty());
}

TEST_CASE("what a caller may pass: a regular file open for reading")
{
    TempDir dir;
    PatchStore store = open_store(dir);
    const fs::path patch = dir.write("real/lp_a.ko", patch_bytes("lp_a"));
    SUBCASE("directories and FIFOs")
    {
        CHECK(contains(install_error(store, dir.path.native(), PatchErrc::not_regular_file)
                           .message,
                       "is a directory"));
        const fs::path fifo = dir.path / "fifo.ko";
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        CHECK(contains(install_error(store, fifo.native(), PatchErrc::not_regular_file).message,
                       "is a FIFO"));
    }
    SUBCASE("an O_PATH or write-only fd")
    {
        for (const int flags : {O_PATH, O_WRONLY}) {
            UniqueFd fd(::open(patch.c_str(), flags | O_CLOEXEC));
            REQUIRE(fd);
            auto result = store.install(std::move(fd), patch.native(), this_kernel);
            REQUIRE(!result);
            CHECK(result.error().code == PatchErrc::invalid_path);
            CHECK(contains(result.error().message, "not open for reading"));
        }
    }
    CHECK(store_files(dir).empty());
}

TEST_CASE("install from an fd opened by someone else (the D-Bus hook)")
{
    TempDir dir;
    PatchStore store = open_store(dir);
    const fs::path patch = dir.write("lp_a.ko", patch_bytes("lp_a"));
    UniqueFd fd(::open(patch.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    auto installed = store.install(std::move(fd), "/as/the/caller/named/it.ko", this_kernel);
    REQUIRE_MESSAGE(installed, installed.error().message);
    CHECK(installed->source == "/as/the/caller/named/it.ko");
}

TEST_CASE("remove, list and find")
{
    TempDir dir;
    PatchStore store = open_store(dir);
    for (const std::string name : {"lp_c", "lp_a", "lp_b"})
        REQUIRE(install_path(store, dir.write(name + ".ko", patch_bytes(name)).native()));

    auto listed = store.list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 3);
    CHECK((*listed)[0].name == "lp_a");
    CHECK((*listed)[1].name == "lp_b");
    CHECK((*listed)[2].name == "lp_c");

    REQUIRE(store.remove("lp_b"));
    CHECK(store_files(dir) ==
          std::vector<std::string>{"lp_a.json", "lp_a.ko", "lp_c.json", "lp_c.ko"});
    auto again = store.remove("lp_b");
    REQUIRE(!again);
    CHECK(again.error().code == PatchErrc::not_installed);
    CHECK(again.error().message ==
          "no patch named lp_b is installed; 'livepatchctl list' shows the installed ones");

    auto invalid = store.remove("../lp_a");
    REQUIRE(!invalid);
    CHECK(invalid.error().code == PatchErrc::invalid_name);
    CHECK(store.find("lp_a"));
    CHECK(store.find("lp_b").error().code == PatchErrc::not_installed);
    CHECK(store.find("").error().code == PatchErrc::invalid_name);
}

TEST_CASE("reopening tidies what a crash left; a module without its record is not trusted")
{
    TempDir dir;
    const std::string bytes = patch_bytes("lp_a");
    {
        PatchStore store = open_store(dir);
        REQUIRE(install_path(store, dir.write("lp_a.ko", bytes).native()));
        REQUIRE(install_path(store, dir.write("lp_b.ko", patch_bytes("lp_b")).native()));
    }
    // A crash during install: a temporary; between the module and its record: no record;
    // during remove: a record without its module.
    dir.write("state/patches/.#lp_c.koXXXXXXXX", "partial");
    fs::remove(dir.path / "state/patches/lp_a.json");
    fs::remove(dir.path / "state/patches/lp_b.ko");

    PatchStore store = open_store(dir);
    CHECK(store_files(dir) == std::vector<std::string>{"lp_a.ko"});
    auto found = store.find("lp_a");
    REQUIRE(found);
    CHECK(contains(found->problem, "has no record of its install"));
    auto checked = store.open_checked("lp_a", this_kernel);
    REQUIRE(!checked);
    CHECK(checked.error().code == PatchErrc::tampered);
    CHECK(store.remove("lp_a"));
}

TEST_CASE("a record that does not match its module is not trusted")
{
    TempDir dir;
    const std::string bytes = patch_bytes("lp_a");
    {
        PatchStore store = open_store(dir);
        REQUIRE(install_path(store, dir.write("lp_a.ko", bytes).native()));
    }
    dir.write("state/patches/lp_a.json", R"({"name": "lp_a", "size": 1})");
    PatchStore store = open_store(dir);
    auto found = store.find("lp_a");
    REQUIRE(found);
    CHECK(!found->problem.empty());
    CHECK(!store.open_checked("lp_a", this_kernel));
}

TEST_CASE("a damaged module in the store is listed with its problem, so it can be removed")
{
    TempDir dir;
    dir.write("state/patches/lp_bad.ko", "not an ELF file");
    PatchStore store = open_store(dir);
    auto listed = store.list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].name == "lp_bad");
    CHECK(!(*listed)[0].problem.empty());
    CHECK(!dir.exists("state/patches/lp_bad.json"));
    CHECK(store.remove("lp_bad"));
    CHECK(store.list()->empty());
}

TEST_CASE("open_checked: the stored file is hashed and checked again; a change is Tampered")
{
    TempDir dir;
    PatchStore store = open_store(dir);
    std::string bytes = patch_bytes("lp_a");
    REQUIRE(install_path(store, dir.write("lp_a.ko", bytes).native()));
    {
        auto checked = store.open_checked("lp_a", this_kernel);
        REQUIRE_MESSAGE(checked, checked.error().message);
        CHECK(checked->fd.valid());
        CHECK(checked->patch.sha256 == sha256_of(bytes));
    }
    SUBCASE("one byte changed, same size")
    {
        const auto at = bytes.find("lpshim_patch=Y");
        REQUIRE(at != std::string::npos);
        bytes[at] = 'L';
        dir.write("state/patches/lp_a.ko", bytes);
        auto checked = store.open_checked("lp_a", this_kernel);
        REQUIRE(!checked);
        CHECK(checked.error().code == PatchErrc::tampered);
        CHECK(contains(checked.error().message, "has changed since it was installed"));
    }
    SUBCASE("another kernel")
    {
        auto checked = store.open_checked("lp_a", "6.12.57+deb12-amd64");
        REQUIRE(!checked);
        CHECK(checked.error().code == PatchErrc::kernel_mismatch);
    }
}

TEST_CASE("the objects a patch needs through livepatch relocations are recorded and read back")
{
    TempDir dir;
    ElfSpec spec;
    spec.modinfo = patch_modinfo("lp_static") + modinfo_text({{"livepatch", "Y"}});
    spec.klp_sections = {
        {".klp.rela.vmlinux.text",
         {{".klp.sym.vmlinux.saved_command_line,0", R_X86_64_PC32},
          {".klp.sym.vmlinux.total_swap_pages,0", R_X86_64_PC32}}},
        {".klp.rela.loop.text", {{".klp.sym.loop.lo_rw_aio,0", R_X86_64_PLT32}}},
    };
    const std::vector<LivepatchObject> expected{{"vmlinux", 2}, {"loop", 1}};
    {
        PatchStore store = open_store(dir);
        auto installed = install_path(store, dir.write("src/lp_static.ko", build_elf(spec)).native());
        REQUIRE_MESSAGE(installed, installed.error().message);
        CHECK(installed->livepatch_objects == expected);
    }
    const auto record = nlohmann::json::parse(dir.read("state/patches/lp_static.json"));
    CHECK(record.at("livepatch_objects").size() == 2);
    PatchStore reopened = open_store(dir);
    auto found = reopened.find("lp_static");
    REQUIRE(found);
    CHECK(found->livepatch_objects == expected);
    // A patch of exported symbols only needs none.
    REQUIRE(install_path(reopened, dir.write("src/lp_plain.ko", patch_bytes("lp_plain")).native()));
    auto plain = reopened.find("lp_plain");
    REQUIRE(plain);
    CHECK(plain->livepatch_objects.empty());
}
