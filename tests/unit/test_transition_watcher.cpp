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
    CHECK(e[0].outcome == "patched");
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
    CHECK(e[0].outcome == "patched");
    // A revert during it: reversed, then the way back is watched.
    (void)w.watch("lp_b", "patched", 6 * s);
    e = w.watch("lp_b", "unpatched", 7 * s);
    CHECK(kinds(e) == std::vector{Kind::reversed, Kind::started});
    e = w.update({}, 8 * s);
    REQUIRE(kinds(e) == std::vector{Kind::ended});
    CHECK(e[0].outcome == "unpatched");
}

TEST_CASE("a restarted daemon resumes the start of the transition under way (same boot only)")
{
    // Issue 17: a crash-looping daemon restarted the stall timeout at every start.
    const std::string boot = "0123456789abcdef0123456789abcdef";
    const WatchedTransition before{"lp_a", "patched", 100 * s, false};
    const std::string record = to_transition_record(before, boot);
    const auto resumed = parse_transition_record(record, boot);
    REQUIRE(resumed);
    CHECK(*resumed == before);
    CHECK_FALSE(parse_transition_record(record, "fedcba9876543210fedcba9876543210"));
    CHECK_FALSE(parse_transition_record("{\"boot_id\":", boot));

    TransitionWatcher w(30s);
    w.resume(*resumed);
    CHECK(w.update(moving("lp_a", true), 120 * s).empty()); // no second "started"
    CHECK(kinds(w.update(moving("lp_a", true), 130 * s)) == std::vector{Kind::stalled});
}
