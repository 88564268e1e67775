// SPDX-License-Identifier: GPL-2.0-only
//
// The kernel command line (livepatchd.apply=), boot ids, and reading them from files.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>

#include "kernel/boot_info.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using namespace livepatchd::test;

TEST_CASE("livepatchd.apply on the kernel command line")
{
    const std::string debian = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-56-amd64 root=UUID=x ro quiet";
    CHECK(!parse_kernel_command_line(debian).apply);
    CHECK(parse_kernel_command_line(debian + " livepatchd.apply=0").apply == false);
    CHECK(parse_kernel_command_line("livepatchd.apply=1 " + debian).apply == true);
    CHECK(parse_kernel_command_line("livepatchd.apply").apply == true);
    for (const char* no : {"0", "no", "n", "false", "f", "off", "OFF", "False"})
        CHECK(parse_kernel_command_line(std::string("livepatchd.apply=") + no).apply == false);
    for (const char* yes : {"1", "yes", "y", "true", "t", "on", "YES"})
        CHECK(parse_kernel_command_line(std::string("livepatchd.apply=") + yes).apply == true);
}

TEST_CASE("the last occurrence wins, '-' and '_' are one, quotes group")
{
    CHECK(parse_kernel_command_line("livepatchd.apply=0 livepatchd.apply=1").apply == true);
    CHECK(parse_kernel_command_line("livepatchd.apply=1 livepatchd.apply=0").apply == false);
    CHECK(parse_kernel_command_line("livepatchd.apply=0\n").apply == false);
    // Not our parameter: a longer name, or inside another parameter's quoted value.
    CHECK(!parse_kernel_command_line("livepatchd.applyx=0").apply);
    CHECK(!parse_kernel_command_line("xlivepatchd.apply=0").apply);
    CHECK(!parse_kernel_command_line("dyndbg=\"file x.c livepatchd.apply=0\"").apply);
    CHECK(parse_kernel_command_line("\"livepatchd.apply=0\"").apply == false);
    CHECK(parse_kernel_command_line("livepatchd.apply=\"off\"").apply == false);
}

TEST_CASE("a value that is not a boolean is reported and ignored")
{
    const BootFlags flags = parse_kernel_command_line("livepatchd.apply=0 livepatchd.apply=maybe");
    CHECK(flags.apply == false);
    REQUIRE(flags.warnings.size() == 1);
    CHECK(flags.warnings[0] ==
          "the kernel command line says livepatchd.apply=maybe, which is not a boolean (use "
          "livepatchd.apply=0 or livepatchd.apply=1), ignoring");
}

TEST_CASE("boot ids")
{
    CHECK(is_boot_id("5f0b1c2d3e4f4a5b8c6d7e8f9a0b1c2d"));
    CHECK(!is_boot_id("5F0B1C2D3E4F4A5B8C6D7E8F9A0B1C2D"));
    CHECK(!is_boot_id("5f0b1c2d"));
}

TEST_CASE("reading the boot id and the command line")
{
    TempDir dir;
    // sd_id128_get_boot(): this boot's, in the form livepatchd stores.
    auto id = read_boot_id();
    REQUIRE(id);
    CHECK(is_boot_id(*id));
    auto cmdline = read_kernel_command_line(dir.write("cmdline", "ro livepatchd.apply=0\n"));
    REQUIRE(cmdline);
    CHECK(parse_kernel_command_line(*cmdline).apply == false);
    CHECK(!running_kernel_release().empty());
}

TEST_CASE("the kernel's oops count: oops_count, else TAINT_DIE, else the error")
{
    // TAINT_DIE never clears: a daemon that read only it missed every oops of a boot after
    // the first (one before livepatchd started, unrelated to any patch, hid them all).
    TempDir dir;
    const auto missing = dir.path / "no-such-file";
    CHECK(read_oops_count(dir.write("oops_count", "3\n"), missing).value() == 3);
    CHECK(read_oops_count(missing, dir.write("tainted", "128\n")).value() == 1); // TAINT_DIE
    CHECK(read_oops_count(missing, dir.write("tainted2", "4097\n")).value() == 0);
    auto bad = read_oops_count(dir.write("bad", "3 oopses\n"), missing);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().errnum == EBADMSG);
    CHECK(bad.error().message.find("/bad: not a number: \"3 oopses\"") != std::string::npos);
    CHECK_FALSE(read_oops_count(dir.write("empty", ""), missing));
    auto neither = read_oops_count(missing, missing);
    REQUIRE_FALSE(neither);
    CHECK(neither.error().errnum == ENOENT);
}
