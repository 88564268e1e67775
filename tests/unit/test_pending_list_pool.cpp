// SPDX-License-Identifier: GPL-2.0-only
//
// PendingListPool: a list the look is done with is emptied a slice per turn of the loop, and
// its storage makes the next list; none is kept once the transition is over.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <systemd/sd-event.h>

#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "common/fault.hpp"
#include "service/pending_list_pool.hpp"
#include "event_loop.hpp"

using namespace livepatchd;

namespace {

std::vector<PendingTask> tasks(PendingListPool& pool, std::size_t n)
{
    std::vector<PendingTask> list = pool.take(n);
    for (std::size_t i = 0; i < n; i++)
        list.push_back(PendingTask{.tid = static_cast<std::uint32_t>(i + 1),
                                   .tgid = 1,
                                   .comm = "sleepers",
                                   .reason = "sleeping-in-function",
                                   .function = "lpshim_target_sleep [lpshim_target]"});
    return list;
}

} // namespace

TEST_CASE("a list given back is emptied a slice per turn, and its storage makes the next list")
{
    EventLoop loop;
    PendingListPool pool(loop.event);
    const std::size_t n = 2 * PendingListPool::slice_tasks + 100; // three slices
    std::vector<PendingTask> list = tasks(pool, n);
    const PendingTask* storage = list.data();

    pool.give_back(std::move(list));
    // Nothing destroyed in the caller's turn.
    CHECK(pool.emptying() == 1);
    CHECK(pool.kept_capacity() == 0);
    CHECK(loop.turn());
    CHECK(loop.turn());
    CHECK(pool.emptying() == 1); // two slices: not empty yet
    CHECK(loop.turn());
    CHECK(pool.emptying() == 0);
    CHECK(pool.kept_capacity() >= n);
    CHECK_FALSE(loop.turn()); // nothing left to do: the source is off

    std::vector<PendingTask> next = pool.take(n);
    CHECK(next.empty());
    CHECK(next.data() == storage);
    CHECK(pool.kept_capacity() == 0); // taken
}

TEST_CASE("the larger storage is kept when several lists are given back")
{
    EventLoop loop;
    PendingListPool pool(loop.event);
    std::vector<PendingTask> small = tasks(pool, 10);
    std::vector<PendingTask> large = tasks(pool, 5000);
    const PendingTask* large_storage = large.data();
    pool.give_back(std::move(small));
    pool.give_back(std::move(large));
    CHECK(pool.emptying() == 2);
    while (loop.turn()) {
    }
    CHECK(pool.emptying() == 0);
    CHECK(pool.take(2000).data() == large_storage);
}

TEST_CASE("storage more than four times too large is freed, not reused")
{
    EventLoop loop;
    PendingListPool pool(loop.event);
    std::vector<PendingTask> list = tasks(pool, 5000);
    const PendingTask* storage = list.data();
    pool.give_back(std::move(list));
    while (loop.turn()) {
    }
    std::vector<PendingTask> few = pool.take(10);
    CHECK(few.data() != storage);
    CHECK(pool.kept_capacity() == 0);
}

TEST_CASE("a walk's turns queued back to back do not starve the emptying")
{
    EventLoop loop;
    // Another idle-priority source that stays on, older than the pool's (PendingTaskLister's
    // walk while requests keep coming).
    int walk_turns = 0;
    sd_event_source* walk = nullptr;
    REQUIRE(sd_event_add_defer(
                loop.event, &walk,
                [](sd_event_source*, void* turns) noexcept {
                    ++*static_cast<int*>(turns);
                    return 0;
                },
                &walk_turns) >= 0);
    REQUIRE(sd_event_source_set_priority(walk, SD_EVENT_PRIORITY_IDLE) >= 0);
    REQUIRE(sd_event_source_set_enabled(walk, SD_EVENT_ON) >= 0);
    CHECK(loop.turn());
    CHECK(walk_turns == 1);

    PendingListPool pool(loop.event);
    std::vector<PendingTask> list = tasks(pool, 2 * PendingListPool::slice_tasks + 100);
    pool.give_back(std::move(list));
    for (int i = 0; i < 10; i++)
        CHECK(loop.turn());
    CHECK(pool.emptying() == 0);
    CHECK(pool.kept_capacity() > 0);
    CHECK(walk_turns > 1); // and the walk goes on
    sd_event_source_disable_unref(walk);
}

TEST_CASE("no storage is kept once released, until the next take")
{
    EventLoop loop;
    PendingListPool pool(loop.event);
    std::vector<PendingTask> list = tasks(pool, 3000);
    pool.give_back(std::move(list));
    pool.release(); // the transition ended while the list was being emptied
    while (loop.turn()) {
    }
    CHECK(pool.emptying() == 0);
    CHECK(pool.kept_capacity() == 0);

    // A list made after the end (a listing for the bus, answered late) keeps nothing.
    std::vector<PendingTask> late = tasks(pool, 3000);
    pool.give_back(std::move(list)); // (empty: moved from above) nothing to empty
    pool.release();
    late.clear();
    CHECK(pool.kept_capacity() == 0);

    // A new transition's look keeps again.
    std::vector<PendingTask> again = tasks(pool, 3000);
    pool.give_back(std::move(again));
    while (loop.turn()) {
    }
    CHECK(pool.kept_capacity() >= 3000);
}

TEST_CASE("a list taken after the end, while one is still emptied, keeps nothing")
{
    EventLoop loop;
    PendingListPool pool(loop.event);
    pool.give_back(tasks(pool, 3000)); // the transition's last look
    pool.release();                    // its end
    std::vector<PendingTask> listing = tasks(pool, 10); // a queued request answered after it
    while (loop.turn()) {
    }
    CHECK(pool.emptying() == 0);
    CHECK(pool.kept_capacity() == 0);
}

TEST_CASE("without a loop, a list given back is emptied at once")
{
    PendingListPool pool(nullptr);
    std::vector<PendingTask> list = tasks(pool, 100);
    const PendingTask* storage = list.data();
    pool.give_back(std::move(list));
    CHECK(pool.emptying() == 0);
    CHECK(pool.take(100).data() == storage);
}

TEST_CASE("the heap's trim at a transition's end is handed to the service's thread")
{
    // malloc_trim(0) took 79 ms of the loop's dispatch at 30,000 tasks' lists (s57).
    std::vector<std::string> at_once; // the fault points reached on this thread
    set_fault_hook([&at_once](std::string_view name) { at_once.emplace_back(name); });
    struct Unhook {
        ~Unhook() { set_fault_hook(nullptr); }
    } unhook;
    EventLoop loop;
    int handed = 0;
    {
        PendingListPool pool(loop.event, [&handed] { ++handed; });
        pool.give_back(tasks(pool, 10));
        while (loop.turn()) {
        }
        pool.release();
    }
    CHECK(handed == 1);
    CHECK(at_once.empty());
    // Without a thread (or when handing it over throws), at once.
    {
        PendingListPool pool(loop.event, [] { throw std::bad_alloc(); });
        pool.release();
    }
    CHECK(at_once == std::vector<std::string>{"pending-lists-trim"});
}
