// SPDX-License-Identifier: GPL-2.0-only
//
// collect_patch_status: the one view of a patch that ListPatches and the Patch objects show.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "service/status.hpp"

using namespace livepatchd;

namespace {

InstalledPatch installed(const std::string& name)
{
    InstalledPatch patch;
    patch.name = name;
    patch.installed_at_usec = 100;
    patch.built_for = "6.1.0-56-amd64";
    patch.sha256 = std::string(64, 'a');
    return patch;
}

KernelPatch in_kernel(const std::string& name, bool enabled, bool transition, unsigned order)
{
    KernelPatch patch;
    patch.name = name;
    patch.enabled = enabled;
    patch.transition = transition;
    patch.stack_order = order;
    patch.objects = {{"vmlinux", true, {{"cmdline_proc_show", 1}}},
                     {"lpshim_target", false, {{"lpshim_target_fn", 2}}}};
    return patch;
}

const std::map<std::string, std::string, std::less<>> no_reasons;
const std::set<std::string, std::less<>> none_forced;

} // namespace

TEST_CASE("each state, from store, desired state and kernel")
{
    DesiredState desired;
    desired.append("lp_skipped").applied_at_usec = 7;
    desired.append("lp_applied").applied_at_usec = 8;
    desired.append("lp_applying").applied_at_usec = 9;
    const std::vector<InstalledPatch> store{installed("lp_applied"), installed("lp_applying"),
                                            installed("lp_installed"), installed("lp_reverting"),
                                            installed("lp_skipped")};
    const std::vector<KernelPatch> kernel{in_kernel("lp_reverting", false, true, 1),
                                          in_kernel("lp_applied", true, false, 2),
                                          in_kernel("lp_applying", true, true, 3),
                                          in_kernel("kpatch_foreign", true, false, 4)};
    const std::map<std::string, std::string, std::less<>> reasons{
        {"lp_skipped", "built for another kernel"}};
    const std::set<std::string, std::less<>> forced{"lp_applied"};

    const auto all = collect_patch_status(store, desired, kernel, reasons, forced);
    REQUIRE(all.size() == 6);
    const auto find = [&](std::string_view name) {
        for (const PatchStatus& s : all)
            if (s.name == name)
                return s;
        FAIL("no status for " << name);
        return PatchStatus{};
    };
    CHECK(all[0].name == "kpatch_foreign"); // by name

    const PatchStatus applied = find("lp_applied");
    CHECK(applied.state == PatchState::applied);
    CHECK(applied.enabled);
    CHECK(applied.stack_order == 2);
    CHECK(applied.applied_at_usec == 8);
    CHECK(applied.installed_at_usec == 100);
    CHECK(applied.forced);
    CHECK(applied.functions == std::vector<PatchFunction>{
                                   {"vmlinux", "cmdline_proc_show", 1},
                                   {"lpshim_target", "lpshim_target_fn", 2}});

    CHECK(find("lp_applying").state == PatchState::applying);
    CHECK(find("lp_reverting").state == PatchState::reverting);
    CHECK(find("lp_installed").state == PatchState::installed);
    CHECK(find("lp_installed").functions.empty());

    const PatchStatus skipped = find("lp_skipped");
    CHECK(skipped.state == PatchState::skipped);
    CHECK(skipped.skip_reason == "built for another kernel");
    CHECK(skipped.applied_at_usec == 7);
    CHECK(!skipped.forced);

    const PatchStatus foreign = find("kpatch_foreign");
    CHECK(foreign.state == PatchState::applied);
    CHECK(foreign.installed_at_usec == 0);
    CHECK(foreign.sha256.empty());
}

TEST_CASE("a wanted patch with no reason recorded yet")
{
    DesiredState desired;
    desired.append("lp_a");
    const auto all = collect_patch_status({installed("lp_a")}, desired, {}, no_reasons, none_forced);
    REQUIRE(all.size() == 1);
    CHECK(all[0].state == PatchState::skipped);
    CHECK(all[0].skip_reason == "wanted, but not applied yet");
}

TEST_CASE("the transition as sysfs shows it")
{
    CHECK(transition_from_kernel({}) == TransitionStatus{});
    CHECK(transition_from_kernel({in_kernel("lp_a", true, false, 1)}).state == ServiceState::idle);
    const TransitionStatus applying =
        transition_from_kernel({in_kernel("lp_a", true, false, 1), in_kernel("lp_b", true, true, 2)});
    CHECK(applying.state == ServiceState::transitioning);
    CHECK(applying.patch == "lp_b");
    CHECK(applying.target == "patched");
    CHECK(transition_from_kernel({in_kernel("lp_a", false, true, 1)}).target == "unpatched");
}

TEST_CASE("names of states")
{
    CHECK(to_string(PatchState::skipped) == "skipped");
    CHECK(to_string(PatchState::reverting) == "reverting");
    CHECK(to_string(ServiceState::stalled) == "stalled");
    CHECK(to_string(ServiceState::idle) == "idle");
}

TEST_CASE("the objects a patch needs through livepatch relocations come from the store")
{
    InstalledPatch with_relocations = installed("lp_static");
    with_relocations.livepatch_objects = {{"vmlinux", 12}, {"loop", 3}};
    const std::vector<InstalledPatch> store{with_relocations, installed("lp_plain")};
    const std::vector<KernelPatch> kernel{in_kernel("lp_static", true, false, 1)};
    const auto all = collect_patch_status(store, DesiredState{}, kernel, no_reasons, none_forced);
    REQUIRE(all.size() == 2);
    for (const PatchStatus& s : all) {
        if (s.name == "lp_static")
            CHECK(s.livepatch_objects == std::vector<LivepatchObject>{{"vmlinux", 12}, {"loop", 3}});
        else
            CHECK(s.livepatch_objects.empty());
    }
}
