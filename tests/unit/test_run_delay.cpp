// SPDX-License-Identifier: GPL-2.0-only
//
// RunDelayClock: the run delay of the event loop's thread, for its DISPATCH_USEC lines, read
// from the kernel's schedstat and checked like any other input.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>

#include "common/run_delay.hpp"

using namespace livepatchd;

TEST_CASE("the run delay is the second field of a schedstat line")
{
    CHECK(run_delay_ns_of("1734000 52000 17\n") == 52000u);
    CHECK(run_delay_ns_of("0 0 0\n") == 0u);
    CHECK(run_delay_ns_of("1 18446744073709551615 2") == 18446744073709551615u);
}

TEST_CASE("a schedstat line that is not three numbers gives none")
{
    CHECK_FALSE(run_delay_ns_of(""));
    CHECK_FALSE(run_delay_ns_of("1734000"));
    CHECK_FALSE(run_delay_ns_of("1734000 "));
    CHECK_FALSE(run_delay_ns_of("1734000 x 17"));
    CHECK_FALSE(run_delay_ns_of("1734000 -5 17"));
    CHECK_FALSE(run_delay_ns_of("1734000 52000x 17"));
    CHECK_FALSE(run_delay_ns_of("1 18446744073709551616 2")); // more than 64 bits
    CHECK_FALSE(run_delay_ns_of("5 6"));
    CHECK_FALSE(run_delay_ns_of("x 5 6"));
    CHECK_FALSE(run_delay_ns_of("5 6 x"));
    CHECK_FALSE(run_delay_ns_of("5 6 7 8"));
    CHECK_FALSE(run_delay_ns_of("5  6 7"));
    CHECK_FALSE(run_delay_ns_of("5 6 7\n\n"));
}

TEST_CASE("this thread's run delay is read and never goes back")
{
    struct stat st{};
    if (::stat("/proc/thread-self/schedstat", &st) != 0)
        return; // a kernel without CONFIG_SCHED_INFO: usec() is empty, nothing to compare
    const RunDelayClock clock = RunDelayClock::of_this_thread();
    const auto first = clock.usec();
    REQUIRE(first);
    const auto second = clock.usec();
    REQUIRE(second);
    CHECK(*second >= *first);
}
