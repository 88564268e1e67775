// SPDX-License-Identifier: GPL-2.0-only
#include "service/pending_list_pool.hpp"

#include "common/clock.hpp"
#include "common/fault.hpp"
#include "common/journal.hpp"

#include <malloc.h>

#include <algorithm>
#include <string>
#include <utility>

namespace livepatchd {

PendingListPool::~PendingListPool()
{
    sd_event_source_disable_unref(source_);
}

std::vector<PendingTask> PendingListPool::take(std::size_t n)
{
    std::vector<PendingTask> list;
    if (spare_.capacity() / 4 <= n)
        list = std::move(spare_);
    spare_ = std::vector<PendingTask>(); // (not "= {}": that keeps the capacity)
    list.reserve(n);
    return list;
}

void PendingListPool::give_back(std::vector<PendingTask> list) noexcept
{
    keeping_ = true;
    if (list.empty()) {
        keep(std::move(list));
        return;
    }
    if (!source_ && event_) {
        // (No room for the source: destroyed at once, below.)
        if (sd_event_add_defer(event_, &source_, on_turn, this) < 0 ||
            sd_event_source_set_priority(source_, priority) < 0)
            source_ = sd_event_source_disable_unref(source_);
    }
    if (!source_) {
        list.clear();
        keep(std::move(list));
        return;
    }
    try {
        emptying_.push_back(std::move(list));
    } catch (...) {
        list.clear(); // (out of memory for the queue's growth: emptied now)
        keep(std::move(list));
        return;
    }
    (void)sd_event_source_set_enabled(source_, SD_EVENT_ON);
}

void PendingListPool::release() noexcept
{
    keeping_ = false;
    spare_ = std::vector<PendingTask>(); // (not "= {}": that keeps the capacity)
    if (emptying_.empty())
        trim();
}

void PendingListPool::trim() noexcept
{
    if (trim_) {
        try {
            trim_();
            return;
        } catch (...) {
        }
    }
    trim_heap();
}

void PendingListPool::trim_heap() noexcept
{
    // The lists' storage and strings were freed in the middle of the heap (glibc serves large
    // blocks from it once a large one was freed): without a trim the idle daemon keeps those
    // pages until a later allocation reuses them.
    try {
        fault_point("pending-lists-trim");
    } catch (...) {
    }
    const std::uint64_t start = monotonic_usec();
    malloc_trim(0);
    // How long it held the arenas' locks, for a reader of a slow dispatch after it.
    if (const std::uint64_t took = monotonic_usec() - start; took >= 20'000)
        journal::log(LogLevel::debug, "the heap's trim after the looks' lists took " +
                                          std::to_string(took) + " us");
}

int PendingListPool::on_turn(sd_event_source*, void* userdata) noexcept
{
    static_cast<PendingListPool*>(userdata)->empty_a_slice();
    return 0;
}

void PendingListPool::empty_a_slice() noexcept
{
    if (emptying_.empty()) {
        (void)sd_event_source_set_enabled(source_, SD_EVENT_OFF);
        return;
    }
    std::vector<PendingTask>& list = emptying_.front();
    // From the end: nothing moves.
    list.resize(list.size() - std::min(list.size(), slice_tasks));
    if (!list.empty())
        return;
    std::vector<PendingTask> empty = std::move(list);
    emptying_.erase(emptying_.begin());
    keep(std::move(empty));
    if (emptying_.empty()) {
        (void)sd_event_source_set_enabled(source_, SD_EVENT_OFF);
        if (!keeping_)
            trim(); // the transition ended while this list was emptied
    }
}

void PendingListPool::keep(std::vector<PendingTask> empty) noexcept
{
    // The larger storage is kept; the other is freed (one block each: quick).
    if (keeping_ && empty.capacity() > spare_.capacity())
        spare_ = std::move(empty);
}

} // namespace livepatchd
