// SPDX-License-Identifier: GPL-2.0-only
//
// The remediation ladder's decisions (RemediationPolicy, why_not_stop) and what it reads from
// /proc (parse_proc_stat, parse_cgroup_units).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "remediation/kick_log.hpp"
#include "remediation/remediation.hpp"
#include "remediation/task_facts.hpp"

#include <systemd/sd-login.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

using namespace livepatchd;
using namespace std::chrono_literals;

namespace {

constexpr pid_t self = 4242;

TaskFacts sleeper(std::uint32_t tid, std::uint32_t tgid = 0)
{
    TaskFacts f;
    f.task = {tid, tgid ? tgid : tid, "cat", "sleeping-in-function", "lpshim_target_sleep"};
    f.state = 'S';
    f.units = {"system.slice", "app.service"};
    return f;
}

std::vector<RemedyKind> kinds(const std::vector<Remedy>& remedies)
{
    std::vector<RemedyKind> k;
    for (const Remedy& r : remedies)
        k.push_back(r.kind);
    return k;
}

} // namespace

TEST_CASE("the default ladder: grace, kicks every interval, one stop per process")
{
    RemediationPolicy policy(RemediationConfig{}, self);
    const std::vector<TaskFacts> pending{sleeper(10), sleeper(11, 10), sleeper(20)};
    CHECK(policy.decide(100ms, pending, nullptr).empty()); // grace (200 ms)
    CHECK(kinds(policy.decide(200ms, pending, nullptr)) == std::vector{RemedyKind::kick});
    CHECK(policy.decide(400ms, pending, nullptr).empty()); // next kick at 700 ms
    // From 600 ms, stop each process once: 10 (tasks 10 and 11) and 20.
    auto at600 = policy.decide(600ms, pending, nullptr);
    REQUIRE(kinds(at600) == std::vector{RemedyKind::stop_continue, RemedyKind::stop_continue});
    CHECK(at600[0].target.task.tgid == 10);
    CHECK(at600[1].target.task.tgid == 20);
    CHECK(kinds(policy.decide(700ms, pending, nullptr)) == std::vector{RemedyKind::kick});
    CHECK(policy.decide(800ms, pending, nullptr).empty());
    policy.reset(); // a new transition starts over
    CHECK(kinds(policy.decide(600ms, pending, nullptr)) ==
          std::vector{RemedyKind::kick, RemedyKind::stop_continue, RemedyKind::stop_continue});
}

TEST_CASE("each rung can be turned off, and remediation as a whole")
{
    RemediationConfig off;
    off.enabled = false;
    CHECK(RemediationPolicy(off, self).decide(10s, {sleeper(10)}, nullptr).empty());

    RemediationConfig no_kick;
    no_kick.kick.enabled = false;
    CHECK(kinds(RemediationPolicy(no_kick, self).decide(1s, {sleeper(10)}, nullptr)) ==
          std::vector{RemedyKind::stop_continue});

    RemediationConfig no_stop;
    no_stop.stop_continue.enabled = false;
    CHECK(kinds(RemediationPolicy(no_stop, self).decide(1s, {sleeper(10)}, nullptr)) ==
          std::vector{RemedyKind::kick});

    // No stop inside the grace, whatever after_ms says.
    RemediationConfig early;
    early.stop_continue.after_ms = 0ms;
    CHECK(RemediationPolicy(early, self).decide(100ms, {sleeper(10)}, nullptr).empty());
}

TEST_CASE("the kick needs only how many tasks are pending, not their facts")
{
    // livepatchd reads no /proc before the stop rung (and none for a process stopped already):
    // thousands of pending tasks cost no per-task work then.
    RemediationPolicy policy(RemediationConfig{}, self);
    CHECK(policy.decide(200ms, 0, {}, nullptr).empty());
    CHECK(kinds(policy.decide(200ms, 3, {}, nullptr)) == std::vector{RemedyKind::kick});
    // The stop rung stops what it has facts for, and only that.
    const auto at700 = policy.decide(700ms, 30000, {sleeper(20)}, nullptr);
    REQUIRE(kinds(at700) == std::vector{RemedyKind::kick, RemedyKind::stop_continue});
    CHECK(at700[1].target.task.tgid == 20);
}

TEST_CASE("never stopped: kthreads, pid 1, livepatchd, stopped, traced, D, excluded")
{
    StopContinueConfig sc;
    sc.exclude_units = {"app.service"};
    sc.exclude_commands = {"postgres"};

    auto kthread = sleeper(10);
    kthread.kind = TaskKind::kthread;
    CHECK(why_not_stop(kthread, {}, self)->find("kernel thread") != std::string::npos);
    auto init = sleeper(1);
    CHECK(why_not_stop(init, {}, self) == "it is PID 1");
    auto us = sleeper(self);
    CHECK(why_not_stop(us, {}, self) == "it is livepatchd itself");
    for (char stopped : {'T', 't'}) {
        auto s = sleeper(10);
        s.state = stopped;
        CHECK(why_not_stop(s, {}, self)->find("stopped already") != std::string::npos);
    }
    auto traced = sleeper(10);
    traced.traced = true;
    CHECK(why_not_stop(traced, {}, self) == "it is being traced");
    auto d = sleeper(10);
    d.state = 'D';
    CHECK(why_not_stop(d, {}, self)->find("uninterruptible") != std::string::npos);
    auto running = sleeper(10);
    running.task.reason = "running";
    CHECK(why_not_stop(running, {}, self)->find("not asleep") != std::string::npos);
    CHECK(why_not_stop(sleeper(10), sc, self) ==
          "its unit app.service is in stop_continue.exclude_units");
    auto pg = sleeper(10);
    pg.units = {};
    pg.task.comm = "postgres";
    CHECK(why_not_stop(pg, sc, self) == "its command postgres is in stop_continue.exclude_commands");
    CHECK_FALSE(why_not_stop(sleeper(10), {}, self));

    // The policy reports each refused task once.
    RemediationPolicy policy(RemediationConfig{}, self);
    std::vector<std::pair<std::uint32_t, std::string>> refused;
    CHECK(kinds(policy.decide(1s, {kthread}, &refused)) == std::vector{RemedyKind::kick});
    CHECK(refused.size() == 1);
    (void)policy.decide(2s, {kthread}, &refused);
    CHECK(refused.size() == 1);
}

TEST_CASE("/proc/<pid>/stat, /proc/<pid>/status and slices")
{
    const auto stat = parse_proc_stat(
        "383 (c a t) x) S 1 383 383 0 -1 4194560 89 0 0 0 0 0 0 0 20 0 1 0 4711 5484544 "
        "230 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
    REQUIRE(stat);
    CHECK(stat->state == 'S');
    CHECK(stat->flags == 4194560);
    CHECK(stat->start_time == 4711);
    CHECK_FALSE(parse_proc_stat("383 (cat S 1"));
    CHECK_FALSE(parse_proc_stat("383 (cat) S 1 2 3"));

    CHECK(slice_chain("system.slice") == std::vector<std::string>{"system.slice"});
    CHECK(slice_chain("user-1000.slice") ==
          std::vector<std::string>{"user.slice", "user-1000.slice"});
    CHECK(slice_chain("a-b-c.slice") ==
          std::vector<std::string>{"a.slice", "a-b.slice", "a-b-c.slice"});
    CHECK(slice_chain("-.slice").empty());
    CHECK(slice_chain("foo.service").empty());

    const std::string status = "Name:\tcat\nUmask:\t0022\nState:\tS (sleeping)\nTracerPid:\t42\n"
                               "Uid:\t1000\t0\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n";
    CHECK(parse_tracer_pid(status) == 42u);
    CHECK(parse_status_uids(status) == std::pair<std::uint32_t, std::uint32_t>{1000, 0});
    CHECK_FALSE(parse_status_uids("Name:\tcat\n"));
    CHECK(parse_nspid_depth("Name:\tcat\nNSpid:\t4711\n") == 1u);
    CHECK(parse_nspid_depth("Name:\tcat\nNSpid:\t4711\t1\n") == 2u); // a container's init
    CHECK_FALSE(parse_nspid_depth("Name:\tcat\n"));
}

TEST_CASE("never stopped, whatever the configuration: the journal, the bus, polkit, logind")
{
    const StopContinueConfig config;
    for (const char* unit : {"systemd-journald.service", "dbus.service", "dbus-broker.service",
                             "polkit.service", "systemd-logind.service", "init.scope"}) {
        TaskFacts f = sleeper(100);
        f.units = {"system.slice", unit};
        const auto why = why_not_stop(f, config, self);
        REQUIRE(why);
        CHECK(why->find("one livepatchd never stops") != std::string::npos);
    }
    for (const char* comm : {"systemd-journal", "dbus-daemon", "dbus-broker", "polkitd",
                             "systemd-logind"}) {
        TaskFacts f = sleeper(100);
        f.task.comm = comm;
        f.units = {"user.slice", "x.scope"};
        CHECK(why_not_stop(f, config, self));
    }
    CHECK_FALSE(why_not_stop(sleeper(100), config, self));
}

TEST_CASE("processes of another pid namespace are stopped only when configured")
{
    TaskFacts f = sleeper(100);
    f.other_pid_namespace = true;
    StopContinueConfig config;
    const auto why = why_not_stop(f, config, self);
    REQUIRE(why);
    CHECK(why->find("another pid namespace") != std::string::npos);
    config.other_pid_namespaces = true;
    CHECK_FALSE(why_not_stop(f, config, self));
}

TEST_CASE("the stall: no unprivileged user can make livepatchd revert a patch")
{
    TaskFacts root_sleeper = sleeper(10);
    root_sleeper.uid = 0;
    root_sleeper.euid = 0;
    TaskFacts user_sleeper = sleeper(20);
    user_sleeper.uid = 1000;
    user_sleeper.euid = 1000;
    TaskFacts user_in_d = user_sleeper;
    user_in_d.state = 'D';
    TaskFacts root_in_d = root_sleeper; // a root process stuck on a user's FUSE mount
    root_in_d.state = 'D';
    TaskFacts kthread = sleeper(2);
    kthread.kind = TaskKind::kthread;
    TaskFacts unknown = sleeper(30); // uid not read

    // Only root's interruptible tasks and kernel threads left: the configured revert.
    CHECK(decide_stall(StallAction::revert, "patched", {root_sleeper, kthread}).action ==
          StallAction::revert);
    // Nothing blocks it any more: lpshim's next pass completes it; nothing to revert for.
    CHECK(decide_stall(StallAction::revert, "patched", std::vector<TaskFacts>{}).action == StallAction::wait);
    CHECK(decide_stall(StallAction::force, "patched", std::vector<TaskFacts>{}).action == StallAction::force);
    for (const TaskFacts& f : {user_sleeper, user_in_d, root_in_d, unknown}) {
        CAPTURE(f.task.tid);
        const StallDecision d = decide_stall(StallAction::revert, "patched", {root_sleeper, f});
        CHECK(d.action == StallAction::wait);
        CHECK(d.reason.find("never reverted") != std::string::npos);
    }
    // A blocker on its way out (a zombie, or gone from /proc before the kernel's next pass):
    // its leaving may complete the transition, so the decision waits for the next look.
    for (const char state : {'Z', 'X'}) {
        TaskFacts leaving = user_sleeper;
        leaving.uid = leaving.euid = 0;
        leaving.state = state;
        const StallDecision d = decide_stall(StallAction::revert, "patched", {root_sleeper, leaving});
        CHECK(d.action == StallAction::wait);
        CHECK(d.reason.find("is exiting") != std::string::npos);
    }
    // Reversing an unpatching transition keeps a patch applied: a user's task may cause it.
    CHECK(decide_stall(StallAction::revert, "unpatched", {user_in_d}).action ==
          StallAction::revert);
    // But not with nothing left to block it, or a blocker on its way out: the revert the
    // operator asked for completes at lpshim's next pass (review of the issue-18 change).
    CHECK(decide_stall(StallAction::revert, "unpatched", std::vector<TaskFacts>{}).action == StallAction::wait);
    TaskFacts zombie = user_sleeper;
    zombie.state = 'Z';
    CHECK(decide_stall(StallAction::revert, "unpatched", {zombie}).action == StallAction::wait);
    // Force and wait are the admin's.
    CHECK(decide_stall(StallAction::force, "patched", {user_in_d}).action == StallAction::force);
    CHECK(decide_stall(StallAction::wait, "patched", {root_sleeper}).action == StallAction::wait);
}

TEST_CASE("the units of a real process come from sd-login")
{
    // This test's own process: whatever its cgroup, the facts hold what sd-login says, in the
    // order slices, unit, user unit.
    PendingTask self_task;
    self_task.tid = static_cast<std::uint32_t>(getpid());
    self_task.tgid = self_task.tid;
    self_task.reason = "sleeping-in-function";
    auto facts = read_task_facts(self_task);
    REQUIRE(facts);
    char* slice = nullptr;
    if (sd_pid_get_slice(getpid(), &slice) >= 0 && slice && std::string(slice) != "-.slice") {
        REQUIRE(!facts->units.empty());
        CHECK(std::find(facts->units.begin(), facts->units.end(), std::string(slice)) !=
              facts->units.end());
    }
    std::free(slice);
    CHECK(facts->uid == getuid());
    CHECK(facts->euid == geteuid());
    CHECK_FALSE(facts->other_pid_namespace);
}

// Issue 18: a stall look at 10,000 threads of one process asked sd-login for each thread's
// units (three /proc/<tid>/cgroup reads each, under the kernel's cgroup_mutex); once per
// process is enough, as a thread's units are its process's.
namespace {

// A thread of this process, asleep until the object goes; its tid in tid.
struct SleepingThread {
    SleepingThread()
    {
        std::promise<pid_t> started;
        thread = std::thread([&started, this] {
            started.set_value(gettid());
            done.get_future().wait();
        });
        tid = started.get_future().get();
    }
    ~SleepingThread()
    {
        done.set_value();
        thread.join();
    }
    std::promise<void> done;
    std::thread thread;
    pid_t tid = 0;
};

PendingTask pending_thread(pid_t tid)
{
    PendingTask task;
    task.tgid = static_cast<std::uint32_t>(getpid());
    task.tid = static_cast<std::uint32_t>(tid);
    task.reason = "sleeping-in-function";
    return task;
}

} // namespace

TEST_CASE("a look reads the units of a process once, for the threads that were there")
{
    const SleepingThread older;
    // Started a clock tick (USER_HZ) or more before the look, as the stat's start time says.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    TaskFactsLook look;
    auto first = look.read(pending_thread(getpid()));
    auto second = look.read(pending_thread(older.tid));
    REQUIRE(first);
    REQUIRE(second);
    CHECK(look.reads() == 2);
    CHECK(look.unit_reads() == 1);
    CHECK(second->task.tid == static_cast<std::uint32_t>(older.tid));
    CHECK(second->units == first->units);
    const auto alone = read_task_facts(pending_thread(getpid()));
    REQUIRE(alone);
    CHECK(first->units == alone->units);
    CHECK(look.longest_read_usec() > 0);
    CHECK(look.longest_read_parts().starts_with("stat "));

    // A thread that started after the units were read may be of another process that got
    // the pid: its units are read again.
    const SleepingThread newer;
    auto third = look.read(pending_thread(newer.tid));
    REQUIRE(third);
    CHECK(look.unit_reads() == 2);
    CHECK(third->units == first->units);

    // A read is used for a second at most: a process may have been moved to another unit.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    REQUIRE(look.read(pending_thread(older.tid)));
    CHECK(look.unit_reads() == 3);

    // The stall's look does not read them at all.
    TaskFactsLook stall_look(TaskFactsLook::Units::skip);
    auto bare = stall_look.read(pending_thread(getpid()));
    REQUIRE(bare);
    CHECK(bare->units.empty());
    CHECK(stall_look.unit_reads() == 0);
    CHECK(bare->uid == getuid());
}

// Issue 18: the kernel keeps 15 bytes of a command name and may cut its last character in
// two; --check-config then suggests the whole characters before the cut, and that entry must
// match the name as livepatchd holds it (printable(): the cut bytes as \xNN).
TEST_CASE("an exclude_commands entry matches a command name the kernel cut inside a character")
{
    const std::string e7 = "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"; // 14 bytes
    StopContinueConfig sc;
    sc.exclude_commands = {e7};
    auto cut = sleeper(10);
    cut.units = {};
    cut.task.comm = e7 + "\\xc3"; // "éééééééé..." as the kernel keeps it: 14 + 1 bytes
    CHECK(why_not_stop(cut, sc, self) ==
          "its command " + cut.task.comm + " is in stop_continue.exclude_commands");

    // A four-byte character cut after three bytes, after 12 bytes of name.
    sc.exclude_commands = {"abcdefghijkl"};
    cut.task.comm = "abcdefghijkl\\xf0\\x9f\\x98";
    CHECK(why_not_stop(cut, sc, self));

    // Not a cut at the kernel's limit: a shorter name, a whole character, or other bytes.
    for (const std::string& comm : {e7.substr(0, 12) + "\\xc3", e7 + "\\xc3\\xa9", e7 + "\\x41",
                                    e7 + "\\xa9", e7 + "x"}) {
        CAPTURE(comm);
        sc.exclude_commands = {comm.substr(0, comm.find('\\') == std::string::npos ? 14 : comm.find('\\'))};
        cut.task.comm = comm;
        CHECK_FALSE(why_not_stop(cut, sc, self));
    }
}

TEST_CASE("stacks per round: only the stopped and the refused tasks, not every pending one")
{
    // issue 18 (bpf review 1): a stack walk per stopped process, of every pending task, kept
    // the loop busy for seconds at 10k pending tasks. One round asks once, for these only.
    RemediationPolicy policy(RemediationConfig{}, self);
    TaskFacts kthread = sleeper(30);
    kthread.kind = TaskKind::kthread;
    std::vector<TaskFacts> pending{sleeper(10), sleeper(11, 10), sleeper(20), kthread};
    for (std::uint32_t tid = 100; tid < 1100; tid++) {
        TaskFacts busy = sleeper(tid);
        busy.state = 'R'; // running: stopped too, in this round's order
        pending.push_back(busy);
    }
    std::vector<std::pair<std::uint32_t, std::string>> refused;
    const auto remedies = policy.decide(600ms, pending, &refused);
    const std::set<std::uint32_t> shown = tasks_to_show(remedies, refused);
    std::set<std::uint32_t> expected{30}; // refused: a kthread
    for (const Remedy& r : remedies)
        if (r.kind == RemedyKind::stop_continue)
            expected.insert(r.target.task.tid);
    CHECK(shown == expected);
    CHECK(shown.count(11) == 0); // same process as 10: not stopped again, not walked
    CHECK(shown.size() < pending.size());
    // A round that does nothing walks nothing.
    refused.clear();
    CHECK(tasks_to_show(policy.decide(650ms, pending, &refused), refused).empty());
}

TEST_CASE("KickLog: the kicks since a task was first seen, within a bounded memory")
{
    KickLog log(3);
    CHECK(log.since(0).kicks == 0);
    log.record(100);
    log.record(200);
    CHECK(log.since(150).kicks == 1);
    CHECK(log.since(200).kicks == 1); // a kick at the very time it was seen counts
    CHECK(log.since(201).kicks == 0);
    CHECK_FALSE(log.since(0).more);
    log.record(300);
    log.record(400); // the kick at 100 is let go: three are kept
    const KickLog::Count early = log.since(50);
    CHECK(early.kicks == 3);
    CHECK(early.more); // pending since before 200: kicked at 100 too, which is no longer kept
    const KickLog::Count late = log.since(250);
    CHECK(late.kicks == 2);
    CHECK_FALSE(late.more);
    const KickLog::Count after_dropped = log.since(150); // seen after the kick let go
    CHECK(after_dropped.kicks == 3);
    CHECK_FALSE(after_dropped.more);
    log.clear();
    CHECK(log.since(0).kicks == 0);
    CHECK_FALSE(log.since(0).more);
}
