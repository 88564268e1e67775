// SPDX-License-Identifier: GPL-2.0-only
//
// parse_pending_task_line: lpshim's /sys/kernel/debug/lpshim/tasks lines, checked like any
// input from the kernel.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "kernel/pending_tasks.hpp"
#include "bpf/libbpf_messages.hpp"
#include "bpf/pending_map_size.hpp"
#include "../../bpf/pending_tasks_rules.h" // the BPF programs' own rules

#include <map>
#include <set>

#include <cerrno>

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
                             "12 10 a-comm-that-is-far-too-long-even-for-fifteen-escaped-bytes-of-four running f",
                             "12 10 cat running [lpshim_target]", "4242 4242 a r f"})
        CHECK_MESSAGE(!parse_pending_task_line(line), line);
}

TEST_CASE("a task's name cannot hide it from the list or forge another")
{
    // lpshim escapes control bytes: a name with a newline stays on its line.
    auto escaped = parse_pending_tasks("4242 4242 a\\n777 777 x sleeping-in-function pipe_read\n");
    REQUIRE(escaped);
    REQUIRE(escaped->size() == 1);
    CHECK((*escaped)[0].tid == 4242);
    CHECK((*escaped)[0].comm == "a\\n777 777 x");

    // Raw, as an lpshim that did not escape would print it: the list is refused, not read
    // without the task and with a forged one.
    for (const char* text : {"1 1 init running 0x0\n4242 4242 a\n777 777 x sleeping-in-function pipe_read\n",
                             "4242 4242 b\n\n1 1 init running 0x0\n"}) {
        CAPTURE(text);
        const auto list = parse_pending_tasks(text);
        REQUIRE_FALSE(list);
        CHECK(list.error().errnum == EBADMSG);
        CHECK(list.error().message.find("malformed line") != std::string::npos);
    }
    auto fine = parse_pending_tasks("1 1 init running 0x0\n2 2 kthreadd not-checked-yet 0x0\n");
    REQUIRE(fine);
    CHECK(fine->size() == 2);
    // A task that named itself "" stays in the list.
    auto nameless = parse_pending_tasks("4242 4242  sleeping-in-function pipe_read\n");
    REQUIRE(nameless);
    REQUIRE(nameless->size() == 1);
    CHECK((*nameless)[0].comm.empty());
    CHECK((*nameless)[0].reason == "sleeping-in-function");
    auto empty = parse_pending_tasks("");
    REQUIRE(empty);
    CHECK(empty->empty());
}

TEST_CASE("the BPF map of pending tasks holds as many as the system's task limit, within a bound")
{
    // issue 18 (bpf review 2): a fixed 16,384-entry LRU map evicted pending tasks silently
    // (from about 8k live entries on 64 CPUs). It is sized from kernel.threads-max now.
    CHECK(pending_map_entries("63704\n") == 63704);
    CHECK(pending_map_entries("30000") == 30000);
    CHECK(pending_map_entries("15000\n") > 10000);
    CHECK(pending_map_entries("100\n") == pending_map_min_entries);
    CHECK(pending_map_entries("4194304\n") == pending_map_max_entries);
    CHECK(pending_map_entries("99999999999999999999\n") == pending_map_max_entries);
    CHECK(pending_map_entries("x\n") == pending_map_max_entries);
    CHECK(pending_map_entries(std::nullopt) == pending_map_max_entries);
    CHECK(pending_map_max_entries >= 30000u); // the acceptance's 30,000 pending tasks fit
}

TEST_CASE("a BPF load failure names its cause: the verifier, or the privileges")
{
    // issue 18 (bpf review 6): a verifier rejection (EACCES) was reported as "are you root?".
    const std::string rejected =
        bpf_failure_text(13, "load BPF object pending_tasks", "Permission denied", "dump_pending_tasks");
    CHECK(rejected.find("verifier rejected BPF program 'dump_pending_tasks'") != std::string::npos);
    CHECK(rejected.find("are you root") == std::string::npos);
    CHECK(rejected.find("journalctl") != std::string::npos);
    const std::string denied =
        bpf_failure_text(1, "load BPF object pending_tasks", "Operation not permitted", "");
    CHECK(denied.find("are you root? needs CAP_BPF and CAP_PERFMON") != std::string::npos);
    CHECK(bpf_failure_text(2, "attach", "No such file or directory", "") ==
          "failed to attach: No such file or directory");
}

namespace {

// The pending map as the BPF programs keep it, driven by pending_tasks_rules.h.
struct PendingMapModel {
    std::map<__u32, pending_task> map;
    __u32 epoch = 0;
    __s32 target = -1;

    void start(__s32 to) { target = to; epoch++; }
    void end() { target = -1; epoch++; }
    void blocked(__u32 tid, __u32 attempt)
    {
        const auto it = map.find(tid);
        pending_task* p = it == map.end() ? nullptr : &it->second;
        switch (pending_rule_blocked(p, epoch)) {
        case PENDING_STEP_UPDATE: p->transition = epoch; p->attempts = attempt + 1; break;
        case PENDING_STEP_INSERT:
            map[tid] = pending_task{.first_seen_ns = 1, .function = 0, .transition = epoch,
                                    .attempts = attempt + 1, .reason = 1, .flags = 0};
            break;
        default: break;
        }
    }
    void switched(__u32 tid, __s32 state)
    {
        const auto it = map.find(tid);
        switch (pending_rule_switch(it == map.end() ? nullptr : &it->second, state, target)) {
        case PENDING_STEP_TOMBSTONE:
            map[tid] = pending_task{.first_seen_ns = 0, .function = 0, .transition = epoch,
                                    .attempts = 0, .reason = 0, .flags = PENDING_TASK_F_SWITCHED};
            break;
        case PENDING_STEP_DELETE: map.erase(tid); break;
        default: break;
        }
    }
    std::set<__u32> listed()
    {
        std::set<__u32> tids;
        for (auto it = map.begin(); it != map.end();) {
            const enum pending_step step = pending_rule_report(&it->second, epoch);
            if (step == PENDING_STEP_UPDATE)
                tids.insert(it->first);
            it = step == PENDING_STEP_DELETE ? map.erase(it) : std::next(it);
        }
        return tids;
    }
    __u32 attempts(__u32 tid) { return map.at(tid).attempts; }
};

} // namespace

TEST_CASE("the pending map: a switch that races ahead of its pass's report keeps the task off the list")
{
    // issue 18 (bpf review 3): the pass reports task 7 blocked (running) under its runqueue
    // lock while task 7 switches on its way to user mode on another CPU; when the switch's
    // program ran first it deleted nothing and the report inserted a fresh entry: a switched
    // task stayed listed, counted, and could be SIGSTOPped.
    PendingMapModel m;
    m.start(1);
    m.blocked(5, 0);
    m.switched(7, 1); // its switch's program first...
    m.blocked(7, 0);  // ...then the racing report of the same pass
    CHECK(m.listed() == std::set<__u32>{5});
    m.switched(5, 1);
    CHECK(m.listed().empty());
}

TEST_CASE("the pending map: a late switch to the old target after a reversal keeps the task listed")
{
    PendingMapModel m;
    m.start(1);
    m.blocked(9, 0);
    m.start(0);       // reversed: going back to unpatched, a new epoch
    m.blocked(9, 0);  // pending again, in the reversed transition
    m.switched(9, 1); // the switch to patched of before the reversal, arriving late
    CHECK(m.listed() == std::set<__u32>{9});
}

TEST_CASE("the pending map: attempts is lpshim's pass, not the number of reports")
{
    // issue 18 (bpf review 5): lpshim also reports a pending task at every sched_switch of
    // it; those reports carry the pass they happen in, and must not count as passes.
    PendingMapModel m;
    m.start(1);
    m.blocked(3, 0);
    for (int i = 0; i < 50; i++)
        m.blocked(3, 2); // pass 3, many context switches
    CHECK(m.attempts(3) == 3);
}

TEST_CASE("the pending map: leftovers of an earlier transition are not listed and are given back")
{
    PendingMapModel m;
    m.start(1);
    m.blocked(11, 0);
    m.switched(12, 1);
    m.end();
    m.start(0);
    CHECK(m.listed().empty());
    CHECK(m.map.empty()); // both given back: a plain hash map does not fill with them
}

TEST_CASE("the pending map: a tracker attached during a transition sees its switches")
{
    // Review of the issue-18 change: livepatchd restarted during a (stalled) transition
    // attaches its programs after that transition's start, so the target stayed unknown (-1)
    // and every switch was taken for a late one of before a reversal: switched tasks stayed
    // listed for the rest of the transition, and the stop rung could SIGSTOP them.
    PendingMapModel m; // no start seen
    m.blocked(100, 4);
    m.blocked(200, 4);
    m.blocked(300, 4);
    m.switched(100, 1);
    m.switched(200, 1);
    CHECK(m.listed() == std::set<__u32>{300});
    // A reversal from then on is seen (a start): its rules hold again.
    m.start(0);
    m.blocked(300, 0);
    m.switched(300, 1); // late, of before the reversal
    CHECK(m.listed() == std::set<__u32>{300});
}
