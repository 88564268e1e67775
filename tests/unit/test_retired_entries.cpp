// SPDX-License-Identifier: GPL-2.0-only
//
// RetiredEntries: a map's entries are taken at once and destroyed a slice per turn of the loop.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <systemd/sd-event.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "service/retired_entries.hpp"
#include "event_loop.hpp"

using namespace livepatchd;

namespace {

// Counts its live copies: an entry destroyed is seen.
struct Counted {
    explicit Counted(std::shared_ptr<int> live) : live(std::move(live)) { ++*this->live; }
    Counted(const Counted&) = delete;
    Counted(Counted&& other) noexcept : live(other.live) { ++*live; }
    ~Counted() { --*live; }
    std::shared_ptr<int> live;
};
using Map = std::unordered_map<std::uint32_t, Counted>;

void fill(Map& map, std::uint32_t first, std::uint32_t count, const std::shared_ptr<int>& live)
{
    for (std::uint32_t i = first; i < first + count; i++)
        map.emplace(i, Counted(live));
}

} // namespace

TEST_CASE("a map retired is empty at once, its entries destroyed a slice per turn")
{
    EventLoop loop;
    auto live = std::make_shared<int>(0);
    RetiredEntries<Map> retired(loop.event);
    Map map;
    fill(map, 0, 2500, live);
    retired.retire(map);
    CHECK(map.empty());
    CHECK(*live == 2500); // nothing destroyed in the call
    CHECK(loop.turn());
    CHECK(*live == 2500 - 1024);
    CHECK(loop.turn());
    CHECK(*live == 2500 - 2048);
    CHECK(loop.turn());
    CHECK(*live == 0);
    CHECK(retired.size() == 0);
    CHECK_FALSE(loop.turn()); // its turns are off once empty
}

TEST_CASE("a map retired while another is being destroyed waits its turn, whatever its keys")
{
    EventLoop loop;
    auto live = std::make_shared<int>(0);
    RetiredEntries<Map> retired(loop.event);
    Map map;
    fill(map, 0, 1500, live);
    retired.retire(map);
    CHECK(loop.turn());
    CHECK(*live == 1500 - 1024);
    // The same tids again (a task's facts are by tid), and others: none destroyed in the call.
    fill(map, 0, 1000, live);
    fill(map, 5000, 10, live);
    retired.retire(map);
    CHECK(map.empty());
    CHECK(*live == 476 + 1010);
    CHECK(retired.size() == 476 + 1010);
    CHECK(loop.turn()); // the first map's rest, then the second's first 548
    CHECK(*live == 1486 - 1024);
    while (loop.turn()) {
    }
    CHECK(*live == 0);
    // Once empty, a retire turns the turns on again.
    fill(map, 0, 3, live);
    retired.retire(map);
    CHECK(*live == 3);
    CHECK(loop.turn());
    CHECK(*live == 0);
}

TEST_CASE("without a loop, a map's entries are destroyed in the call")
{
    auto live = std::make_shared<int>(0);
    RetiredEntries<Map> retired(nullptr);
    Map map;
    fill(map, 0, 100, live);
    retired.retire(map);
    CHECK(map.empty());
    CHECK(*live == 0);
}
