// SPDX-License-Identifier: GPL-2.0-only
//
// Whether the event loop is busy (dispatching, or about to), for a thread that would rather act
// while it waits in its poll: a SIGSTOP to thousands of threads holds every CPU for a while, and
// a dispatch it catches lasts as long. Written by the loop only (Service::run: false around its
// wait when sd_event_prepare() found nothing ready, true otherwise); false where no Service
// runs (tests). A hint read by other threads; false is stored with release, so that a thread
// that reads it false (acquire) sees loop_retrying as the dispatches before left it.
#pragma once

#include <atomic>

namespace livepatchd {

inline std::atomic<bool> loop_busy = false;

// How many OffLoopQueues have the loop try again within a millisecond to take their lock (held
// by their thread): the loop waits in its poll, but is about to dispatch. Written on the loop.
inline std::atomic<int> loop_retrying = 0;

} // namespace livepatchd
