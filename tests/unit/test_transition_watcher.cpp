// SPDX-License-Identifier: GPL-2.0-only
//
// TransitionWatcher: snapshots of the kernel and CLOCK_MONOTONIC in, events out. The wall
// clock is not an input at all, so no step of it can change a decision; a restarted daemon
// resumes the start time of the transition under way.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "fake_kernel_view.hpp"
#include "service/transition_watcher.hpp"

using namespace livepatchd;
using namespace livepatchd::test;
using namespace std::chrono_literals;
using Kind = TransitionChange::Kind;

namespace {

constexpr std::uint64_t s = 1'000'000;

std::vector<KernelPatch> moving(const std::string& name, bool to_patched)
{
    FakeKernelView k;
    k.add(name, to_patched, true);
    return k.kernel_patches;
}

std::vector<Kind> kinds(const std::vector<TransitionChange>& events)
{
    std::vector<Kind> k;
    for (const auto& e : events)
        k.push_back(e.kind);
    return k;
}

} // namespace

TEST_CASE("a transition starts, stalls once at the timeout, and ends where the kernel says")
{
    TransitionWatcher w(30s);
    auto e = w.update(moving("lp_a", true), 100 * s);
    REQUIRE(kinds(e) == std::vector{Kind::started});
    CHECK(e[0].patch == "lp_a");
    CHECK(e[0].target == "patched");
    CHECK(w.update(moving("lp_a", true), 129 * s).empty());
    CHECK(w.status().state == ServiceState::transitioning);
    e = w.update(moving("lp_a", true), 130 * s);
    REQUIRE(kinds(e) == std::vector{Kind::stalled});
    CHECK(e[0].usec == 30 * s);
    CHECK(w.status().state == ServiceState::stalled);
    CHECK(w.update(moving("lp_a", true), 200 * s).empty()); // once
    FakeKernelView done;
    done.applied("lp_a");
    e = w.update(done.kernel_patches, 201 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "completed");
    CHECK(e[0].state == "patched");
    CHECK(e[0].usec == 101 * s);
    CHECK(!w.watched());
}

TEST_CASE("time is only the monotonic clock given: nothing else moves a decision")
{
    // Issue 17: elapsed time came from CLOCK_REALTIME, and a step of -1 h underflowed into an
    // instant stall (and revert). Here time that does not advance, or a caller's clock that
    // goes backwards, never makes a transition stall.
    TransitionWatcher w(30s);
    (void)w.update(moving("lp_a", true), 3600 * s);
    CHECK(w.update(moving("lp_a", true), 10 * s).empty()); // "earlier": elapsed is 0
    CHECK(w.elapsed_usec(10 * s) == 0);
    CHECK(w.status().state == ServiceState::transitioning);
    CHECK(w.update(moving("lp_a", true), 3629 * s).empty());
    CHECK(kinds(w.update(moving("lp_a", true), 3630 * s)) == std::vector{Kind::stalled});
}

TEST_CASE("an action's transition is followed even if the kernel completed it at once")
{
    TransitionWatcher w(30s);
    auto e = w.watch("lp_a", "patched", 5 * s);
    CHECK(kinds(e) == std::vector{Kind::started});
    FakeKernelView done;
    done.applied("lp_a");
    e = w.update(done.kernel_patches, 5 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "completed");
    // A revert during it (issue 18): the same transition goes back, and ends "reversed"
    // where it started; no second start.
    (void)w.watch("lp_b", "patched", 6 * s);
    e = w.reverse("lp_b", "unpatched", 7 * s);
    CHECK(kinds(e) == std::vector{Kind::reversed});
    CHECK(w.status().target == "unpatched");
    CHECK(w.update(moving("lp_b", false), 7 * s).empty());
    e = w.update({}, 8 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].target == "patched");
    CHECK(e[0].outcome == "reversed");
    CHECK(e[0].state == "unpatched");
    CHECK(e[0].usec == 2 * s);
}

TEST_CASE("one end per start: an action's start reported late by lpshim is not a new one")
{
    // Issue 18: a transition lpshim completed before the service looked was reported twice:
    // its start came again from the tracepoint (BPF), after the look that saw it end.
    TransitionWatcher w(30s);
    w.expect_kernel_start("lp_a", "unpatched");
    CHECK(kinds(w.watch("lp_a", "unpatched", 1 * s)) == std::vector{Kind::started});
    auto e = w.update({}, 1 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "completed");
    CHECK(e[0].state == "unpatched");
    CHECK(w.kernel_started("lp_a", "unpatched", 2 * s).empty());
    CHECK(w.update({}, 2 * s).empty());
    // A start nobody here caused (echo 0 > enabled by hand) is followed.
    CHECK(kinds(w.kernel_started("lp_b", "unpatched", 3 * s)) == std::vector{Kind::started});
    // Apply, then Revert before the first start came through: both matched off in order.
    TransitionWatcher v(30s);
    v.expect_kernel_start("lp_c", "patched");
    (void)v.watch("lp_c", "patched", 1 * s);
    v.expect_kernel_start("lp_c", "unpatched");
    CHECK(kinds(v.reverse("lp_c", "unpatched", 1 * s)) == std::vector{Kind::reversed});
    CHECK(v.kernel_started("lp_c", "patched", 2 * s).empty());
    CHECK(v.kernel_started("lp_c", "unpatched", 2 * s).empty());
    CHECK(v.status().target == "unpatched");
}

TEST_CASE("forced: it reached its target with tasks switched unchecked, unless it went back")
{
    TransitionWatcher w(30s);
    (void)w.watch("lp_a", "patched", 1 * s);
    w.forced("lp_other"); // not this transition
    w.forced("lp_a");
    FakeKernelView done;
    done.applied("lp_a");
    auto e = w.update(done.kernel_patches, 2 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "forced");
    // A reversal that was forced back ends reversed: the patch is not where it was sent.
    (void)w.watch("lp_b", "unpatched", 3 * s);
    (void)w.reverse("lp_b", "patched", 4 * s);
    w.forced("lp_b");
    FakeKernelView back;
    back.applied("lp_b");
    e = w.update(back.kernel_patches, 5 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].target == "unpatched");
    CHECK(e[0].outcome == "reversed");
}

TEST_CASE("a restarted daemon resumes the start of the transition under way (same boot only)")
{
    // Issue 17: a crash-looping daemon restarted the stall timeout at every start.
    const std::string boot = "0123456789abcdef0123456789abcdef";
    const WatchedTransition before{"lp_a", "patched", 100 * s, false, {}, false};
    const std::string record = to_transition_record(before, boot);
    const auto resumed = parse_transition_record(record, boot);
    REQUIRE(resumed);
    CHECK(*resumed == before);
    CHECK_FALSE(parse_transition_record(record, "fedcba9876543210fedcba9876543210"));
    CHECK_FALSE(parse_transition_record("{\"boot_id\":", boot));
    // A reversed, forced transition stays so across a restart.
    const WatchedTransition turned{"lp_a", "patched", 100 * s, false, "unpatched", true};
    CHECK(parse_transition_record(to_transition_record(turned, boot), boot) == turned);

    TransitionWatcher w(30s);
    w.resume(*resumed);
    CHECK(w.update(moving("lp_a", true), 120 * s).empty()); // no second "started"
    CHECK(kinds(w.update(moving("lp_a", true), 130 * s)) == std::vector{Kind::stalled});
}

TEST_CASE("on_stall revert reverses the transition whichever way it goes")
{
    // Issue 18: a stalled unpatch transition was not reverted at all, while the journal and
    // TransitionStalled said "on_stall is revert".
    WatchedTransition applying{"lp_a", "patched", 0, true, {}, false};
    WatchedTransition reverting{"lp_a", "unpatched", 0, true, {}, false};
    CHECK(stall_step(StallAction::revert, applying) == StallStep::reverse_to_unpatched);
    CHECK(stall_step(StallAction::revert, reverting) == StallStep::reverse_to_patched);
    CHECK(stall_step(StallAction::force, reverting) == StallStep::force);
    CHECK(stall_step(StallAction::wait, applying) == StallStep::wait);
    // Already going back because an operator asked (a Revert during the apply): on_stall never
    // turns it around again, or it would put back a patch the operator reverted (review of the
    // issue-18 change).
    applying.heading = "unpatched";
    CHECK(stall_step(StallAction::revert, applying) == StallStep::wait);
    reverting.heading = "patched";
    CHECK(stall_step(StallAction::revert, reverting) == StallStep::wait);
    CHECK(stall_step(StallAction::force, applying) == StallStep::force);
}

TEST_CASE("an apply that lpshim completed at once, then a revert before any look: two transitions")
{
    // Found by the bus test of livepatchctl watch: the revert was taken for a reversal of the
    // apply, because no look at the kernel came between them.
    TransitionWatcher w(30s);
    CHECK(kinds(w.watch("lp_a", "patched", 1 * s)) == std::vector{Kind::started});
    auto e = w.watch("lp_a", "unpatched", 1 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended, Kind::started});
    CHECK(e[0].target == "patched");
    CHECK(e[0].outcome == "completed");
    CHECK(e[0].state == "patched");
    CHECK(e[1].target == "unpatched");
}

TEST_CASE("a start lpshim sent before the watcher learned of a later one is stale")
{
    // Review of the issue-18 change: a transition started by hand and seen by a look, whose
    // start event came after it ended, was started again by that event (twice signalled), and
    // one coming while another transition was watched ended that one early.
    TransitionWatcher w(30s);
    CHECK(kinds(w.update(moving("lp_a", false), 10 * s)) == std::vector{Kind::started});
    CHECK(kinds(w.update({}, 11 * s)) == std::vector{Kind::ended});
    CHECK(w.kernel_started("lp_a", "unpatched", 9 * s).empty()); // sent at 9 s, seen at 10 s
    CHECK(!w.watched());
    (void)w.watch("lp_b", "patched", 20 * s);
    CHECK(w.kernel_started("lp_a", "unpatched", 15 * s).empty());
    REQUIRE(w.watched());
    CHECK(w.watched()->patch == "lp_b");
    // After the last one learned of, a start is news: a reversal by hand here.
    CHECK(kinds(w.kernel_started("lp_b", "unpatched", 21 * s)) == std::vector{Kind::reversed});
    // A reversal seen by a look makes earlier starts stale too.
    TransitionWatcher v(30s);
    (void)v.watch("lp_c", "patched", 1 * s);
    CHECK(kinds(v.update(moving("lp_c", false), 5 * s)) == std::vector{Kind::reversed});
    CHECK(kinds(v.update({}, 6 * s)) == std::vector{Kind::ended});
    CHECK(v.kernel_started("lp_c", "unpatched", 4 * s).empty());
    CHECK(!v.watched());
}

TEST_CASE("an apply that ended before the write taken for its reversal: two transitions")
{
    // Review of the issue-18 change: Revert looked at sysfs (in transition), the apply
    // completed, then its write of 0 started a transition to unpatched; it was reported as
    // the apply "reversed". lpshim's end event of the apply is from before the write.
    TransitionWatcher w(30s);
    (void)w.watch("lp_a", "patched", 1 * s);
    CHECK(kinds(w.reverse("lp_a", "unpatched", 3 * s)) == std::vector{Kind::reversed});
    auto e = w.kernel_ended("lp_a", "patched", 0, 2 * s, 3 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended, Kind::started});
    CHECK(e[0].target == "patched");
    CHECK(e[0].outcome == "completed");
    CHECK(e[0].state == "patched");
    CHECK(e[0].usec == 1 * s);
    CHECK(e[1].target == "unpatched");
    CHECK(w.status().target == "unpatched");
    CHECK(w.update(moving("lp_a", false), 4 * s).empty());
    e = w.update({}, 5 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].target == "unpatched");
    CHECK(e[0].outcome == "completed");
    CHECK(e[0].usec == 2 * s);
    // A real reversal ends where it goes back to: reversed.
    TransitionWatcher v(30s);
    (void)v.watch("lp_b", "patched", 1 * s);
    (void)v.reverse("lp_b", "unpatched", 2 * s);
    e = v.kernel_ended("lp_b", "unpatched", 0, 3 * s, 4 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "reversed");
    CHECK(v.update({}, 4 * s).empty());
}

TEST_CASE("an end with forced tasks: forced, however the force was written")
{
    TransitionWatcher w(30s);
    (void)w.watch("lp_a", "patched", 1 * s);
    CHECK(w.kernel_ended("lp_other", "patched", 2, 2 * s, 2 * s).empty());
    auto e = w.kernel_ended("lp_a", "patched", 2, 2 * s, 2 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "forced");
    FakeKernelView done;
    done.applied("lp_a");
    CHECK(w.update(done.kernel_patches, 3 * s).empty());
}

TEST_CASE("lpshim's events read in one go: START(A), END(A), START(A or B) is one end, then a start")
{
    // issue 18 (bpf review 4): the END's payload was ignored, so a hand-applied patch reverted
    // by hand before the service read the ring buffer was taken for one reversed transition:
    // no TransitionFinished "completed" for the apply, no desired-state update.
    TransitionWatcher w(30s);
    CHECK(kinds(w.kernel_started("lp_a", "patched", 1 * s)) == std::vector{Kind::started});
    auto e = w.kernel_ended("lp_a", "patched", 0, 2 * s, 3 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "completed");
    CHECK(e[0].state == "patched");
    e = w.kernel_started("lp_a", "unpatched", 2 * s + 1);
    REQUIRE(kinds(e) == std::vector{Kind::started});
    CHECK(e[0].target == "unpatched");
    // Then another patch right after: A's end, then B's start.
    e = w.kernel_ended("lp_a", "unpatched", 0, 2 * s + 2, 3 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "completed");
    CHECK(kinds(w.kernel_started("lp_b", "patched", 2 * s + 3)) == std::vector{Kind::started});
    CHECK(w.status().patch == "lp_b");

    // An END with forced tasks: forced. An END of an earlier transition of the same patch (its
    // time before this one started, or the other state) ends nothing.
    TransitionWatcher v(30s);
    (void)v.watch("lp_c", "unpatched", 10 * s);
    CHECK(v.kernel_ended("lp_c", "patched", 0, 9 * s, 11 * s).empty());
    CHECK(v.kernel_ended("lp_c", "patched", 0, 10 * s, 11 * s).empty());
    CHECK(v.kernel_ended("lp_d", "unpatched", 0, 10 * s, 11 * s).empty());
    e = v.kernel_ended("lp_c", "unpatched", 3, 10 * s + 5, 11 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "forced");
    CHECK(!v.watched());
}

TEST_CASE("an apply that completed inside its own write, then a revert by hand: two transitions")
{
    // Review of the issue-18 change: with no task to wait for, lpshim ends the transition
    // inside the write to enabled, so its END is from before the time the watcher took after
    // the write; it was dropped as an earlier transition's, and a revert by hand before the
    // next look was then reported as the apply "reversed".
    TransitionWatcher w(30s);
    w.expect_kernel_start("lp_a", "patched");
    CHECK(kinds(w.watch("lp_a", "patched", 10 * s)) == std::vector{Kind::started});
    CHECK(w.kernel_started("lp_a", "patched", 10 * s - 500).empty()); // in the write: matched off
    auto e = w.kernel_ended("lp_a", "patched", 0, 10 * s - 400, 10 * s + 100);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "completed");
    e = w.kernel_started("lp_a", "unpatched", 10 * s + 50); // echo 0 > enabled
    REQUIRE(kinds(e) == std::vector{Kind::started});
    CHECK(e[0].target == "unpatched");
    // An END from before that transition's own start stays an earlier one's.
    TransitionWatcher v(30s);
    v.expect_kernel_start("lp_b", "patched");
    (void)v.watch("lp_b", "patched", 20 * s);
    CHECK(v.kernel_started("lp_b", "patched", 20 * s - 500).empty());
    CHECK(v.kernel_ended("lp_b", "patched", 0, 19 * s, 20 * s + 100).empty());
}
