// SPDX-License-Identifier: GPL-2.0-only
//
// The kicks of the watched transition, for a blocker's "kicked N time(s)": lpshim's kick wakes
// every pending task, so a task was kicked by each kick since it was first seen pending. Kept
// as their times on CLOCK_MONOTONIC, oldest first, at most `capacity` of them: a transition
// stalled for a day at kick.interval_ms 10 would keep 8.6 million.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>

namespace livepatchd {

class KickLog {
public:
    explicit KickLog(std::size_t capacity = 4096) : capacity_(capacity ? capacity : 1) {}

    void clear()
    {
        times_.clear();
        dropped_ = false;
        last_dropped_usec_ = 0;
    }

    // A kick at usec, no earlier than the last one recorded.
    void record(std::uint64_t usec)
    {
        if (times_.size() == capacity_) {
            last_dropped_usec_ = times_.front();
            times_.pop_front();
            dropped_ = true;
        }
        times_.push_back(usec);
    }

    struct Count {
        std::size_t kicks = 0; // kept kicks at or after the time asked
        bool more = false;     // and some of those let go may have been too
    };
    Count since(std::uint64_t first_usec) const
    {
        const auto from = std::lower_bound(times_.begin(), times_.end(), first_usec);
        return {static_cast<std::size_t>(std::distance(from, times_.end())),
                dropped_ && first_usec <= last_dropped_usec_};
    }

private:
    std::size_t capacity_;
    std::deque<std::uint64_t> times_;
    bool dropped_ = false;               // some kicks were let go
    std::uint64_t last_dropped_usec_ = 0; // the newest of them
};

} // namespace livepatchd
