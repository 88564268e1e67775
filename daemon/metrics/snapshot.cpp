// SPDX-License-Identifier: GPL-2.0-only
#include "metrics/snapshot.hpp"

namespace livepatchd::metrics {

void DurationHistogram::observe(std::uint64_t usec)
{
    const double value = static_cast<double>(usec) / 1e6;
    for (std::size_t i = 0; i < duration_buckets_seconds.size(); ++i)
        if (value <= duration_buckets_seconds[i]) {
            ++buckets[i];
            break;
        }
    ++count;
    sum_usec += usec;
}

} // namespace livepatchd::metrics
