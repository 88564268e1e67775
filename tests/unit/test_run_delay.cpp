// SPDX-License-Identifier: GPL-2.0-only
//
// RunDelayClock: the run delay of the event loop's thread, for its DISPATCH_USEC lines, read
// from the kernel's schedstat and checked like any other input.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

TEST_CASE("this thread's usage counts its sleeps and its page faults")
{
    const auto before = ThreadUsage::now();
    REQUIRE(before);
    // A sleep is a voluntary switch; fresh anonymous pages fault in as they are first written.
    ::usleep(1000);
    constexpr std::size_t pages = 64;
    const long page = ::sysconf(_SC_PAGESIZE);
    void* area = ::mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    REQUIRE(area != MAP_FAILED);
    for (std::size_t i = 0; i < pages; i++)
        static_cast<volatile char*>(area)[i * page] = 1;
    const auto after = ThreadUsage::now();
    ::munmap(area, pages * page);
    REQUIRE(after);
    const ThreadUsage used = after->since(*before);
    CHECK(used.sleeps >= 1);
    CHECK(used.minor_faults + used.major_faults >= pages);
}

TEST_CASE("a usage count that went back grew by nothing")
{
    const ThreadUsage before{.user_usec = 500, .system_usec = 200, .minor_faults = 3,
                             .major_faults = 1, .sleeps = 7};
    const ThreadUsage after{.user_usec = 480, .system_usec = 900, .minor_faults = 5,
                            .major_faults = 1, .sleeps = 9};
    const ThreadUsage used = after.since(before);
    CHECK(used.user_usec == 0);
    CHECK(used.system_usec == 700);
    CHECK(used.minor_faults == 2);
    CHECK(used.major_faults == 0);
    CHECK(used.sleeps == 2);
}
