// SPDX-License-Identifier: GPL-2.0-only
//
// parse_pending_task_line: lpshim's /sys/kernel/debug/lpshim/tasks lines, checked like any
// input from the kernel.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "kernel/pending_tasks.hpp"

using namespace livepatchd;

TEST_CASE("a task asleep in a module's function")
{
    auto task = parse_pending_task_line(
        "383 383 cat sleeping-in-function lpshim_target_sleep [lpshim_target]\n");
    REQUIRE(task);
    CHECK(task->tid == 383);
    CHECK(task->tgid == 383);
    CHECK(task->comm == "cat");
    CHECK(task->reason == "sleeping-in-function");
    CHECK(task->function == "lpshim_target_sleep [lpshim_target]");
}

TEST_CASE("a comm with spaces, a vmlinux function, and no function")
{
    auto spaced = parse_pending_task_line("12 10 kworker 0:1 H running cmdline_proc_show");
    REQUIRE(spaced);
    CHECK(spaced->comm == "kworker 0:1 H");
    CHECK(spaced->reason == "running");
    CHECK(spaced->function == "cmdline_proc_show");

    auto none = parse_pending_task_line("7 7 rcu_gp not-checked-yet 0x0");
    REQUIRE(none);
    CHECK(none->function.empty());
}

TEST_CASE("lines that are not a task are refused")
{
    for (const char* line : {"", "\n", "12", "12 10 cat running", "x 10 cat running f",
                             "12 -1 cat running f", "99999999999 1 cat running f",
                             "12 10 a-comm-that-is-too-long running f",
                             "12 10 cat running [lpshim_target]"})
        CHECK_MESSAGE(!parse_pending_task_line(line), line);
}
