// SPDX-License-Identifier: GPL-2.0-only
//
// Reconciler: one test per rule of reconciler.hpp, each with the inputs that make it decide.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "fake_kernel_view.hpp"
#include "service/reconciler.hpp"

using namespace livepatchd;
using namespace livepatchd::test;
using namespace std::chrono_literals;

namespace {

const std::string this_kernel = "6.12.57+deb12-amd64";
const std::string this_boot = "cccccccccccccccccccccccccccccccc";
const std::string previous_boot = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const std::string older_boot = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

InstalledPatch installed(const std::string& name, const std::string& built_for = this_kernel)
{
    InstalledPatch patch;
    patch.name = name;
    patch.built_for = built_for;
    patch.sha256 = std::string(64, '0');
    return patch;
}

// A desired patch last applied in the previous boot, which then ran past the guard.
DesiredPatch applied_before(const std::string& name)
{
    return DesiredPatch{name, 1'700'000'000'000'000, previous_boot, true, false};
}

struct Scenario {
    DesiredState desired;
    std::vector<InstalledPatch> store;
    FakeKernelView kernel;
    bool config_boot_apply = true;
    std::chrono::seconds crash_guard = 300s;
    std::string command_line;

    std::vector<Action> run() const
    {
        ReconcileInput input{desired, store, kernel, this_kernel, this_boot,
                             config_boot_apply, crash_guard,
                             parse_kernel_command_line(command_line)};
        auto actions = reconcile(input);
        if (!actions)
            FAIL("reconcile failed: " << actions.error().message);
        return *actions;
    }

    // The single action for a single desired patch.
    Action only() const
    {
        auto actions = run();
        REQUIRE(actions.size() == 1);
        return actions[0];
    }
};

Scenario one_patch(DesiredPatch patch)
{
    Scenario s;
    s.store.push_back(installed(patch.name));
    s.desired.patches.push_back(std::move(patch));
    return s;
}

bool contains(const std::string& text, std::string_view part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a boot apply of a patch that survived the previous boot")
{
    const Action action = one_patch(applied_before("lp_a")).only();
    CHECK(action == Action{ActionKind::apply, "lp_a", "boot apply", false});
}

TEST_CASE("rule 1: applied in the kernel -> already applied")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.kernel.applied("lp_a");
    CHECK(s.only() == Action{ActionKind::already_applied, "lp_a", "", false});
    // Even with every boot gate closed: nothing to undo.
    s.command_line = "livepatchd.apply=0";
    CHECK(s.only().kind == ActionKind::already_applied);
}

TEST_CASE("rule 2: a transition in progress -> wait, either way")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.kernel.add("lp_a", true, true);
    CHECK(s.only() ==
          Action{ActionKind::wait, "lp_a", "being applied (transition in progress)", false});
    s.kernel.kernel_patches.clear();
    s.kernel.add("lp_a", false, true);
    CHECK(s.only().kind == ActionKind::wait);
    CHECK(contains(s.only().reason, "being reverted"));
}

TEST_CASE("rule 3: not in the store, or unreadable there -> skip")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.store.clear();
    Action action = s.only();
    CHECK(action.kind == ActionKind::skip);
    CHECK(contains(action.reason, "not in the patch store"));

    s = one_patch(applied_before("lp_a"));
    s.store[0].problem = "/var/lib/livepatchd/patches/lp_a.ko: is not an ELF file";
    action = s.only();
    CHECK(action.kind == ActionKind::skip);
    CHECK(action.reason == "cannot be applied: /var/lib/livepatchd/patches/lp_a.ko: is not an "
                           "ELF file");
}

TEST_CASE("rule 4: built for another kernel -> skip")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.store[0].built_for = "6.1.0-56-amd64";
    const Action action = s.only();
    CHECK(action.kind == ActionKind::skip);
    CHECK(action.reason == "built for another kernel: 6.1.0-56-amd64, this kernel is "
                           "6.12.57+deb12-amd64; install a build of the patch for this kernel");
}

TEST_CASE("rule 5a: livepatchd.apply=0 -> skip at boot")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.command_line = "ro quiet livepatchd.apply=0";
    const Action action = s.only();
    CHECK(action.kind == ActionKind::skip);
    CHECK(action.reason.starts_with("livepatchd.apply=0 on the kernel command line"));
    CHECK(contains(action.reason, "'livepatchctl apply lp_a'"));
}

TEST_CASE("rule 5b: boot.apply false -> skip, unless livepatchd.apply=1")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.config_boot_apply = false;
    CHECK(s.only().kind == ActionKind::skip);
    CHECK(s.only().reason.starts_with("boot.apply is false in the configuration"));
    s.command_line = "livepatchd.apply=1";
    CHECK(s.only().kind == ActionKind::apply);
}

TEST_CASE("rule 5c: the crash-loop guard")
{
    DesiredPatch crashed{"lp_a", 1'700'000'000'000'000, previous_boot, false, false};

    SUBCASE("the boot that applied it ended without a clean shutdown within the window")
    {
        Scenario s = one_patch(crashed);
        s.desired.clean_shutdown_boot_id = older_boot;
        const Action action = s.only();
        CHECK(action.kind == ActionKind::skip);
        CHECK(action.reason ==
              "crash-loop guard: boot " + previous_boot +
                  " ended without a clean shutdown within 300 s of applying the patch; once the "
                  "cause is known, apply it with 'livepatchctl apply lp_a' or boot with "
                  "livepatchd.apply=1 (journalctl -b " +
                  previous_boot + " shows that boot)");
    }
    SUBCASE("it holds at later boots too, until an explicit apply")
    {
        Scenario s = one_patch(DesiredPatch{"lp_a", 1, older_boot, false, false});
        s.desired.clean_shutdown_boot_id = previous_boot; // the boot in between was fine
        CHECK(s.only().kind == ActionKind::skip);
    }
    SUBCASE("a clean shutdown of that boot: an admin's reboot, not a crash")
    {
        Scenario s = one_patch(crashed);
        s.desired.clean_shutdown_boot_id = previous_boot;
        CHECK(s.only().kind == ActionKind::apply);
    }
    SUBCASE("the boot ran past the window")
    {
        crashed.survived_guard = true;
        CHECK(one_patch(crashed).only().kind == ActionKind::apply);
    }
    SUBCASE("an oops after the apply holds even after a clean shutdown")
    {
        crashed.survived_guard = true;
        crashed.oops_after_apply = true;
        Scenario s = one_patch(crashed);
        s.desired.clean_shutdown_boot_id = previous_boot;
        CHECK(s.only().kind == ActionKind::skip);
        CHECK(s.only().reason.starts_with("crash-loop guard: the kernel oopsed in boot " +
                                          previous_boot + " after the patch was applied"));
    }
    SUBCASE("crash_guard_seconds 0 turns it off")
    {
        Scenario s = one_patch(crashed);
        s.crash_guard = 0s;
        CHECK(s.only().kind == ActionKind::apply);
    }
    SUBCASE("livepatchd.apply=1 overrides it")
    {
        Scenario s = one_patch(crashed);
        s.command_line = "livepatchd.apply=1";
        CHECK(s.only().kind == ActionKind::apply);
    }
    SUBCASE("never applied yet: no guard")
    {
        CHECK(one_patch(DesiredPatch{"lp_a", 0, "", false, false}).only().kind ==
              ActionKind::apply);
    }
    SUBCASE("per patch: only the patch applied in the crashed boot is held")
    {
        Scenario s = one_patch(applied_before("lp_a"));
        s.desired.patches.push_back(crashed);
        s.desired.patches.back().name = "lp_b";
        s.store.push_back(installed("lp_b"));
        const auto actions = s.run();
        REQUIRE(actions.size() == 2);
        CHECK(actions[0].kind == ActionKind::apply);
        CHECK(actions[1].kind == ActionKind::skip);
    }
}

TEST_CASE("boot gates do not touch a patch applied in this boot (a daemon restart)")
{
    Scenario s = one_patch(DesiredPatch{"lp_a", 1, this_boot, false, false});
    s.command_line = "livepatchd.apply=0";
    s.config_boot_apply = false;
    const Action action = s.only();
    CHECK(action.kind == ActionKind::apply);
    CHECK(action.reason == "applied earlier in this boot but not in the kernel now");
}

TEST_CASE("rule 6: never stack out of the desired order")
{
    Scenario s;
    s.desired.patches = {applied_before("lp_a"), applied_before("lp_b")};
    s.store = {installed("lp_a"), installed("lp_b")};
    s.kernel.applied("lp_b");
    const auto actions = s.run();
    REQUIRE(actions.size() == 2);
    CHECK(actions[0].kind == ActionKind::skip);
    CHECK(actions[0].reason ==
          "lp_b, which comes after it in the desired order, is applied: applying lp_a now would "
          "stack it above lp_b; revert lp_b first, then apply both");
    CHECK(actions[1].kind == ActionKind::already_applied);
}

TEST_CASE("a skipped patch does not hold back the ones after it")
{
    Scenario s;
    s.desired.patches = {applied_before("lp_old"), applied_before("lp_new")};
    s.store = {installed("lp_old", "6.1.0-56-amd64"), installed("lp_new")};
    const auto actions = s.run();
    REQUIRE(actions.size() == 2);
    CHECK(actions[0].kind == ActionKind::skip);
    CHECK(actions[1] == Action{ActionKind::apply, "lp_new", "boot apply", false});
}

TEST_CASE("rule 7: a module left loaded by an earlier unpatch is unloaded first")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.kernel.modules.insert("lp_a");
    CHECK(s.only() == Action{ActionKind::apply, "lp_a", "boot apply", true});
}

TEST_CASE("patches in the kernel that are not desired are reported, after the desired ones")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.kernel.applied("kpatch_foreign").applied("lp_a");
    const auto actions = s.run();
    REQUIRE(actions.size() == 2);
    CHECK(actions[0].kind == ActionKind::already_applied);
    CHECK(actions[1].kind == ActionKind::unmanaged);
    CHECK(actions[1].patch == "kpatch_foreign");

    Scenario empty;
    empty.kernel.applied("kpatch_foreign");
    CHECK(empty.only().kind == ActionKind::unmanaged);
}

TEST_CASE("the order of actions is the desired order")
{
    Scenario s;
    for (const char* name : {"lp_z", "lp_a", "lp_m"}) {
        s.desired.patches.push_back(applied_before(name));
        s.store.push_back(installed(name));
    }
    const auto actions = s.run();
    REQUIRE(actions.size() == 3);
    CHECK(actions[0].patch == "lp_z");
    CHECK(actions[1].patch == "lp_a");
    CHECK(actions[2].patch == "lp_m");
}

TEST_CASE("an unreadable kernel view is an error, not an empty kernel")
{
    Scenario s = one_patch(applied_before("lp_a"));
    s.kernel.failure = Error{EACCES, "/sys/kernel/lpshim: cannot read: Permission denied"};
    ReconcileInput input{s.desired, s.store, s.kernel, this_kernel, this_boot, true, 300s, {}};
    auto actions = reconcile(input);
    REQUIRE(!actions);
    CHECK(actions.error().errnum == EACCES);
}

TEST_CASE("action kinds have stable names")
{
    CHECK(to_string(ActionKind::apply) == "apply");
    CHECK(to_string(ActionKind::already_applied) == "already-applied");
    CHECK(to_string(ActionKind::skip) == "skip");
    CHECK(to_string(ActionKind::wait) == "wait");
    CHECK(to_string(ActionKind::unmanaged) == "unmanaged");
}
