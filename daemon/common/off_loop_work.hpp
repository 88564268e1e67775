// SPDX-License-Identifier: GPL-2.0-only
//
// OffLoopWork: runs one piece of blocking work (reading and hashing a file, saving one durably,
// a system call that takes long) on a thread of its own, then its continuation on the sd-event
// loop, so that the loop goes on serving while the work runs. One at a time: its user keeps
// whatever the work touches away from the loop until the continuation has run
// (PatchOperations::busy()). An OffLoopQueue that holds one work.
//
// The continuation sees everything the work wrote. The work must not throw. Destroying an
// OffLoopWork waits for a running work; its continuation does not run then.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <memory>

#include "common/off_loop_queue.hpp"
#include "common/result.hpp"

namespace livepatchd {

class OffLoopWork {
public:
    static Result<std::unique_ptr<OffLoopWork>> create(sd_event* event);
    OffLoopWork(const OffLoopWork&) = delete;
    OffLoopWork& operator=(const OffLoopWork&) = delete;

    // Starts work on the thread, and then once it has returned, on the loop. Not while one
    // runs.
    void run(std::function<void()> work, std::function<void()> then);
    bool running() const { return running_; }
    // Waits for the running work, if any, and runs its continuation now (before the loop ends).
    // A continuation's exception stops there (the caller's shutdown goes on).
    void finish_now() { queue_->flush(); }

private:
    explicit OffLoopWork(std::unique_ptr<OffLoopQueue> queue) : queue_(std::move(queue)) {}

    std::unique_ptr<OffLoopQueue> queue_;
    bool running_ = false; // from run() until its continuation starts
};

} // namespace livepatchd
