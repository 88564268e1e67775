// SPDX-License-Identifier: GPL-2.0-only
//
// OffLoopQueue: works run on its thread in the order posted, their continuations on the loop
// after them; a queue below the loop runs its works at a nice value 10 above the loop's; a
// work can tell whether others wait behind it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <cerrno>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/loop_activity.hpp"
#include "common/off_loop_queue.hpp"
#include "event_loop.hpp"

using namespace livepatchd;
using namespace std::chrono_literals;

namespace {

// The calling thread's nice value (Linux keeps one per thread).
int thread_nice()
{
    errno = 0;
    const int value = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    REQUIRE(errno == 0);
    return value;
}

// Whether this process has CAP_SYS_NICE in effect (/proc/self/status, CapEff, bit 23).
bool has_cap_sys_nice()
{
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("CapEff:", 0) == 0)
            return (std::stoull(line.substr(7), nullptr, 16) >> 23) & 1;
    return false;
}

// The nice value a work of a queue of this priority runs at.
int nice_of_works(EventLoop& loop, OffLoopQueue::Priority priority)
{
    auto queue = OffLoopQueue::create(loop.event, "a test", priority);
    REQUIRE(queue);
    int seen = -100;
    (*queue)->post([&seen] { seen = thread_nice(); }, nullptr);
    (*queue)->flush();
    return seen;
}

// One timed work, posted alone.
void post_timed(OffLoopQueue& queue, OffLoopQueue::Due due, std::function<void()> work)
{
    OffLoopQueue::Batch batch;
    batch.add(std::move(due), std::move(work), nullptr);
    queue.post(std::move(batch));
}

} // namespace

TEST_CASE("works run in the order posted, each one's continuation on the loop after it")
{
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test");
    REQUIRE(queue);
    std::vector<std::string> order; // the works write it only before flush() returns
    const pid_t loop_thread = ::gettid();
    std::vector<pid_t> continued_on;
    for (int i = 0; i < 3; i++)
        (*queue)->post([&order, i] { order.push_back("work " + std::to_string(i)); },
                       [&order, &continued_on, i] {
                           order.push_back("then " + std::to_string(i));
                           continued_on.push_back(::gettid());
                       });
    (*queue)->flush();
    // Each continuation after its own work (the works may all run before the first of them).
    for (int i = 0; i < 3; i++) {
        const auto work = std::find(order.begin(), order.end(), "work " + std::to_string(i));
        const auto then = std::find(order.begin(), order.end(), "then " + std::to_string(i));
        REQUIRE(work != order.end());
        REQUIRE(then != order.end());
        CHECK(work < then);
        if (i > 0)
            CHECK(std::find(order.begin(), order.end(), "work " + std::to_string(i - 1)) < work);
    }
    CHECK(continued_on == std::vector<pid_t>(3, loop_thread));
}

TEST_CASE("a work without a continuation does not wake the loop")
{
    // The signals' SIGSTOP has nothing for the loop: woken for it, the loop would dispatch
    // inside the storm of wakeups the SIGSTOP sets off (387 ms at 30,000 threads, s47).
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test");
    REQUIRE(queue);
    std::atomic<bool> ran = false;
    (*queue)->post([&ran] { ran = true; }, nullptr);
    // (Turned meanwhile: the post may have been kept for a retry, if the thread had the lock.)
    for (int i = 0; i < 200 && !ran; ++i)
        (void)sd_event_run(loop.event, 1'000);
    REQUIRE(ran);
    CHECK(sd_event_run(loop.event, 100'000) == 0); // nothing to dispatch
    // The next one with a continuation wakes it, once.
    bool continued = false;
    (*queue)->post([] {}, [&continued] { continued = true; });
    CHECK(sd_event_run(loop.event, 1'000'000) > 0);
    CHECK(continued);
}

TEST_CASE("a loop in flush() is not one about to run its continuations")
{
    // A SIGSTOP waits while the queue has woken the loop for continuations not yet run; the
    // loop in flush() runs them only once that SIGSTOP's work is over: it must not count as
    // woken meanwhile, or the two wait for each other until the SIGSTOP's 500 ms are up.
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test");
    REQUIRE(queue);
    OffLoopQueue& q = **queue;
    q.post([] {}, [] {});
    for (int i = 0; i < 200 && !q.loop_woken(); ++i)
        std::this_thread::sleep_for(1ms);
    REQUIRE(q.loop_woken());
    bool woken_during_flush = true;
    q.post(
        [&] {
            for (int i = 0; i < 2000 && q.loop_woken(); ++i)
                std::this_thread::sleep_for(1ms);
            woken_during_flush = q.loop_woken();
        },
        nullptr);
    q.flush();
    CHECK_FALSE(woken_during_flush);
    CHECK_FALSE(q.loop_woken());
}

TEST_CASE("a queue below the loop runs its works at a nice value 10 above the loop's")
{
    EventLoop loop;
    const int loop_nice = thread_nice();
    CHECK(nice_of_works(loop, OffLoopQueue::Priority::as_loop) == loop_nice);
    CHECK(nice_of_works(loop, OffLoopQueue::Priority::below_loop) == std::min(loop_nice + 10, 19));
    CHECK(thread_nice() == loop_nice); // the loop's own is left as it was
}

TEST_CASE("a work sees whether works are due behind it")
{
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test");
    REQUIRE(queue);
    OffLoopQueue& q = **queue;
    std::mutex gate;
    gate.lock(); // the first work waits here until the second is queued
    bool first_saw = false, second_saw = true;
    q.post(
        [&] {
            std::lock_guard open(gate);
            first_saw = q.has_due();
        },
        nullptr);
    q.post([&] { second_saw = q.has_due(); }, nullptr);
    gate.unlock();
    q.flush();
    CHECK(first_saw);
    CHECK_FALSE(second_saw);
}

TEST_CASE("a timed work runs when due, after the works due before it, and at once when brought forward")
{
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test");
    REQUIRE(queue);
    OffLoopQueue& q = **queue;
    std::mutex mutex;
    std::vector<std::string> order; // under mutex
    const auto note = [&](std::string what) {
        std::lock_guard lock(mutex);
        order.push_back(std::move(what));
    };
    const auto noted = [&] {
        std::lock_guard lock(mutex);
        return order;
    };
    const std::uint64_t start = monotonic_usec();
    std::uint64_t timed_ran = 0; // written by the work, read after flush()
    auto due = OffLoopQueue::make_due();
    post_timed(q, due, [&] {
        timed_ran = monotonic_usec();
        note("timed");
    });
    q.post([&] { note("after"); }, nullptr);
    q.flush(); // not due: flush does not wait for it
    CHECK(noted() == std::vector<std::string>{"after"});
    OffLoopQueue::lower(due, start + 150'000);
    OffLoopQueue::lower(due, start + 10'000'000); // never later than asked before
    q.wake();
    for (int i = 0; i < 100 && noted().size() < 2; ++i)
        std::this_thread::sleep_for(10ms); // the loop does not run: the thread times it
    q.flush();
    CHECK(noted() == std::vector<std::string>{"after", "timed"});
    CHECK(timed_ran >= start + 150'000);
    CHECK(timed_ran < start + 400'000);

    // Brought forward to now, it runs at once; among works due, the order posted.
    auto later = OffLoopQueue::make_due();
    q.post([&] { note("first"); }, nullptr);
    post_timed(q, later, [&] { note("brought forward"); });
    q.post([&] { note("last"); }, nullptr);
    OffLoopQueue::lower(later, 0);
    q.wake();
    q.flush();
    CHECK(noted() == std::vector<std::string>{"after", "timed", "first", "brought forward", "last"});
}

TEST_CASE("destroying the queue runs its timed works at once, due or not")
{
    EventLoop loop;
    bool ran = false;
    {
        auto queue = OffLoopQueue::create(loop.event, "a test");
        REQUIRE(queue);
        post_timed(**queue, OffLoopQueue::make_due(), [&] { ran = true; });
    }
    CHECK(ran);
}

TEST_CASE("a real-time queue's works run SCHED_FIFO 2, above the loop, when the kernel allows it")
{
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test", OffLoopQueue::Priority::realtime);
    REQUIRE(queue);
    int policy = -1;
    sched_param param{};
    (*queue)->post([&] { (void)::pthread_getschedparam(::pthread_self(), &policy, &param); },
                   nullptr);
    (*queue)->flush();
    if ((*queue)->realtime()) {
        CHECK(policy == SCHED_FIFO);
        CHECK(param.sched_priority == 2);
    } else {
        CHECK(policy == SCHED_OTHER);
    }
    // Where the kernel must allow it: CAP_SYS_NICE, or RLIMIT_RTPRIO (the unit's
    // LimitRTPRIO=2), and no real-time group scheduling to refuse it (none: Debian's kernels).
    rlimit rtprio{};
    REQUIRE(::getrlimit(RLIMIT_RTPRIO, &rtprio) == 0);
    if ((has_cap_sys_nice() || rtprio.rlim_cur >= 2) &&
        !std::filesystem::exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us") &&
        !std::filesystem::exists("/sys/fs/cgroup/cpu.rt_runtime_us"))
        CHECK((*queue)->realtime());
    CHECK(::sched_getscheduler(0) == SCHED_OTHER); // the loop's own policy is left as it was
}

TEST_CASE("a work sees whether a timed work is due behind it, apart from the others")
{
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test");
    REQUIRE(queue);
    OffLoopQueue& q = **queue;
    std::mutex gate;
    gate.lock(); // the first work waits here until the others are queued
    bool due = false, timed_due = true, timed_due_later = false;
    auto timed = OffLoopQueue::make_due();
    q.post(
        [&] {
            std::lock_guard open(gate);
            due = q.has_due();             // the untimed work behind
            timed_due = q.has_timed_due(); // the timed one is not due yet
            OffLoopQueue::lower(timed, 0);
            timed_due_later = q.has_timed_due();
        },
        nullptr);
    q.post([] {}, nullptr);
    post_timed(q, timed, [] {});
    gate.unlock();
    q.flush();
    CHECK(due);
    CHECK_FALSE(timed_due);
    CHECK(timed_due_later);
}

namespace {

// The queue's thread holds its lock for 300 ms at its next chance once asked to, as a thread
// below the loop preempted there waits for a CPU in a storm of new threads (s56: 221 ms).
std::atomic<bool> hold_next = false;
std::atomic<bool> holding = false;

void hold_the_lock()
{
    if (!hold_next.exchange(false))
        return;
    holding = true;
    std::this_thread::sleep_for(300ms);
    holding = false;
}

// hold_the_lock() as the queues' holding hook while it lives.
struct HoldingHook {
    HoldingHook() { OffLoopQueue::set_holding_hook(hold_the_lock); }
    ~HoldingHook() { OffLoopQueue::set_holding_hook(nullptr); }
    HoldingHook(const HoldingHook&) = delete;
    HoldingHook& operator=(const HoldingHook&) = delete;
};

} // namespace

namespace {

// The loop's dispatches and posts while a queue of this priority's thread holds its lock.
void check_never_waits(OffLoopQueue::Priority priority)
{
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test", priority);
    REQUIRE(queue);
    OffLoopQueue& q = **queue;
    const HoldingHook hook;
    std::vector<std::string> order;
    q.post([] { hold_next = true; }, [&order] { order.push_back("then A"); });
    std::uint64_t longest_dispatch = 0, post_took = 0;
    bool posted = false, woken_while_kept = false;
    const std::uint64_t until = monotonic_usec() + 3'000'000;
    while (order.size() < 2 && monotonic_usec() < until) {
        if (!posted && holding) {
            const std::uint64_t before = monotonic_usec();
            q.post([] {}, [&order] { order.push_back("then B"); });
            post_took = monotonic_usec() - before;
            posted = true;
            // The work kept for a retry: the loop is about to dispatch (a SIGSTOP waits).
            woken_while_kept = q.loop_woken() && loop_retrying.load() == 1;
        }
        int r = sd_event_prepare(loop.event);
        if (r == 0)
            r = sd_event_wait(loop.event, 2'000); // 2 ms: to see the hold begin
        if (r > 0) {
            const std::uint64_t before = monotonic_usec();
            REQUIRE(sd_event_dispatch(loop.event) >= 0);
            longest_dispatch = std::max(longest_dispatch, monotonic_usec() - before);
        }
    }
    CHECK(posted); // the hold was seen
    CHECK(order == std::vector<std::string>{"then A", "then B"});
    CHECK(post_took < 50'000);
    CHECK(longest_dispatch < 50'000);
    CHECK(woken_while_kept);
    CHECK_FALSE(q.loop_woken()); // every retry ran, every wake-up was read
    CHECK(loop_retrying.load() == 0);
}

} // namespace

TEST_CASE("the loop never waits while the queue's thread holds its lock")
{
    // The loop woken for a continuation, or posting, while the queue's thread is preempted with
    // its lock held, must not wait for it: at 30,000 new threads that took 221 ms (below the
    // loop, s56). So for every priority: the signals' thread is an ordinary one after a SIGCONT.
    for (const auto priority : {OffLoopQueue::Priority::below_loop, OffLoopQueue::Priority::as_loop,
                                OffLoopQueue::Priority::realtime}) {
        CAPTURE(static_cast<int>(priority));
        check_never_waits(priority);
    }
}

TEST_CASE("a real-time queue's wake() reaches its thread without another turn of the loop")
{
    // The signals' queue: a loop ending (SIGTERM: every hold's SIGCONT brought forward, then
    // sd_event_exit) turns no more, so a wake() must not be left for a retry on the loop.
    EventLoop loop;
    auto queue = OffLoopQueue::create(loop.event, "a test", OffLoopQueue::Priority::realtime);
    REQUIRE(queue);
    OffLoopQueue& q = **queue;
    const HoldingHook hook;
    std::atomic<bool> timed_ran = false;
    auto due = OffLoopQueue::make_due();
    post_timed(q, due, [&timed_ran] { timed_ran = true; });
    q.post([] { hold_next = true; }, nullptr);
    // (Turned meanwhile: the post may have been kept for a retry.)
    for (int i = 0; i < 1000 && !holding; ++i)
        (void)sd_event_run(loop.event, 1'000);
    REQUIRE(holding);
    OffLoopQueue::lower(due, 0);
    q.wake();
    for (int i = 0; i < 1000 && !timed_ran; ++i)
        std::this_thread::sleep_for(1ms); // the loop does not turn
    CHECK(timed_ran);
}
