// SPDX-License-Identifier: GPL-2.0-only
//
// RetiredEntries: the entries of a map the service is done with, destroyed a slice per turn of
// the loop after its timers and the bus. The stall's facts hold thousands of tasks' facts (eight
// or so allocations each); under emulation, clearing 10,000 of them took a look 49 ms.
#pragma once

#include <systemd/sd-event.h>

#include <cstddef>
#include <cstdint>
#include <deque>

namespace livepatchd {

template <typename Map>
class RetiredEntries {
public:
    // Entries destroyed per turn of the loop.
    static constexpr std::size_t slice_entries = 1024;
    // As PendingListPool's turns: after the timers and the bus, before other idle work.
    static constexpr std::int64_t priority = SD_EVENT_PRIORITY_IDLE - 1;

    explicit RetiredEntries(sd_event* event) noexcept : event_(event) {}
    RetiredEntries(const RetiredEntries&) = delete;
    RetiredEntries& operator=(const RetiredEntries&) = delete;
    ~RetiredEntries() { sd_event_source_disable_unref(source_); }

    // map is empty on return; its entries are destroyed in later turns (at once without a
    // loop, or without room for the turns' source). Moving the map allocates nothing but,
    // rarely, room for one more map in the queue.
    void retire(Map& map) noexcept
    {
        if (map.empty())
            return;
        if (!source_ && event_ &&
            (sd_event_add_defer(event_, &source_, on_turn, this) < 0 ||
             sd_event_source_set_priority(source_, priority) < 0))
            source_ = sd_event_source_disable_unref(source_);
        if (source_) {
            try {
                retired_.push_back(std::move(map)); // (unchanged if it throws)
                map = Map(); // (moved from: valid, but not said to be empty)
                (void)sd_event_source_set_enabled(source_, SD_EVENT_ON);
                return;
            } catch (...) {
            }
        }
        map = Map(); // at once: no turns, or no room in the queue
    }

    // For tests: entries not destroyed yet.
    std::size_t size() const
    {
        std::size_t entries = 0;
        for (const Map& map : retired_)
            entries += map.size();
        return entries;
    }

private:
    static int on_turn(sd_event_source*, void* userdata) noexcept
    {
        auto* self = static_cast<RetiredEntries*>(userdata);
        // The oldest first, a map at a time; an emptied one goes with its buckets.
        std::size_t n = 0;
        while (n < slice_entries && !self->retired_.empty()) {
            Map& map = self->retired_.front();
            for (; n < slice_entries && !map.empty(); ++n)
                map.erase(map.begin());
            if (map.empty())
                self->retired_.pop_front();
        }
        if (self->retired_.empty())
            (void)sd_event_source_set_enabled(self->source_, SD_EVENT_OFF);
        return 0;
    }

    sd_event* event_;
    sd_event_source* source_ = nullptr; // the turns, while entries are left
    std::deque<Map> retired_; // the oldest first
};

} // namespace livepatchd
