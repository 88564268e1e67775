// SPDX-License-Identifier: GPL-2.0-only
//
// OffLoopQueue: works run on its thread in the order posted, their continuations on the loop
// after them; a queue below the loop runs its works at a nice value 10 above the loop's; a
// work can tell whether others wait behind it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string>
#include <vector>

#include "common/off_loop_queue.hpp"
#include "event_loop.hpp"

using namespace livepatchd;

namespace {

// The calling thread's nice value (Linux keeps one per thread).
int thread_nice()
{
    errno = 0;
    const int value = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    REQUIRE(errno == 0);
    return value;
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

TEST_CASE("a queue below the loop runs its works at a nice value 10 above the loop's")
{
    EventLoop loop;
    const int loop_nice = thread_nice();
    CHECK(nice_of_works(loop, OffLoopQueue::Priority::as_loop) == loop_nice);
    CHECK(nice_of_works(loop, OffLoopQueue::Priority::below_loop) == std::min(loop_nice + 10, 19));
    CHECK(thread_nice() == loop_nice); // the loop's own is left as it was
}

TEST_CASE("a work sees whether works wait behind it")
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
            first_saw = q.has_queued();
        },
        nullptr);
    q.post([&] { second_saw = q.has_queued(); }, nullptr);
    gate.unlock();
    q.flush();
    CHECK(first_saw);
    CHECK_FALSE(second_saw);
}
