// SPDX-License-Identifier: GPL-2.0-only
//
// SysfsKernelView over a directory tree laid out as lpshim's sysfs ABI (shim-kmod/core.c).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "kernel/kernel_view.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using namespace livepatchd::test;

namespace {

void write_patch(const TempDir& sys, const std::string& name, int enabled, int transition,
                 int replace, int order)
{
    const std::string base = "kernel/lpshim/" + name + "/";
    sys.write(base + "enabled", std::to_string(enabled) + "\n");
    sys.write(base + "transition", std::to_string(transition) + "\n");
    sys.write(base + "replace", std::to_string(replace) + "\n");
    sys.write(base + "immediate", "0\n");
    sys.write(base + "stack_order", std::to_string(order) + "\n");
    sys.write(base + "force", "");
    sys.write("module/" + name + "/initstate", "live\n");
}

} // namespace

TEST_CASE("no lpshim: no patches, no version")
{
    TempDir sys;
    SysfsKernelView view(sys.path);
    CHECK(!view.shim_loaded());
    CHECK(view.shim_version().empty());
    auto patches = view.patches();
    REQUIRE(patches);
    CHECK(patches->empty());
    CHECK(!view.module_loaded("lp_a"));
}

TEST_CASE("patches, their objects and functions, in stack order")
{
    TempDir sys;
    sys.write("module/lpshim/version", "0.1.0\n");
    sys.write("module/lpshim/initstate", "live\n");
    write_patch(sys, "lp_top", 1, 1, 0, 2);
    write_patch(sys, "lp_base", 1, 0, 1, 1);
    sys.write("kernel/lpshim/lp_base/vmlinux/patched", "1\n");
    std::filesystem::create_directories(sys.path / "kernel/lpshim/lp_base/vmlinux/cmdline_proc_show,1");
    std::filesystem::create_directories(sys.path / "kernel/lpshim/lp_base/vmlinux/meminfo_proc_show,2");
    sys.write("kernel/lpshim/lp_base/lpshim_target/patched", "0\n");
    std::filesystem::create_directories(sys.path / "kernel/lpshim/lp_base/lpshim_target/lpshim_target_fn,1");
    // A built-in module: a /sys/module directory without initstate.
    std::filesystem::create_directories(sys.path / "module/printk");

    SysfsKernelView view(sys.path);
    CHECK(view.shim_loaded());
    CHECK(view.shim_version() == "0.1.0");
    CHECK(view.module_loaded("lp_top"));
    CHECK(!view.module_loaded("printk"));
    auto patches = view.patches();
    REQUIRE(patches);
    REQUIRE(patches->size() == 2);

    const KernelPatch& base = (*patches)[0];
    CHECK(base.name == "lp_base");
    CHECK(base.applied());
    CHECK(base.replace);
    CHECK(base.stack_order == 1);
    REQUIRE(base.objects.size() == 2);
    CHECK(base.objects[0] == KernelObject{"lpshim_target", false, {{"lpshim_target_fn", 1}}});
    CHECK(base.objects[1] ==
          KernelObject{"vmlinux", true, {{"cmdline_proc_show", 1}, {"meminfo_proc_show", 2}}});

    const KernelPatch& top = (*patches)[1];
    CHECK(top.name == "lp_top");
    CHECK(top.enabled);
    CHECK(top.transition);
    CHECK(!top.applied());
}
