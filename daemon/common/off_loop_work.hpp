// SPDX-License-Identifier: GPL-2.0-only
//
// OffLoopWork: runs one piece of blocking work (reading and hashing a file, saving one durably,
// a system call that takes long) on a thread of its own, then its continuation on the sd-event
// loop, so that the loop goes on serving while the work runs. One at a time: its user keeps
// whatever the work touches away from the loop until the continuation has run
// (PatchOperations::busy()).
//
// The thread is joined before the continuation runs, so the continuation sees everything the
// work wrote. The work must not throw. Destroying an OffLoopWork waits for a running work; its
// continuation does not run then.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <memory>
#include <thread>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

class OffLoopWork {
public:
    static Result<std::unique_ptr<OffLoopWork>> create(sd_event* event);
    OffLoopWork(const OffLoopWork&) = delete;
    OffLoopWork& operator=(const OffLoopWork&) = delete;
    ~OffLoopWork();

    // Starts work on a thread, and then once it has returned, on the loop. Without a thread
    // (none could be created), both run now, on the caller's. Not while one runs.
    void run(std::function<void()> work, std::function<void()> then);
    bool running() const { return static_cast<bool>(then_); }
    // Waits for the running work, if any, and runs its continuation now (before the loop ends).
    void finish_now();

private:
    OffLoopWork() = default;
    static int on_done(sd_event_source* source, int fd, std::uint32_t revents,
                       void* userdata) noexcept;

    UniqueFd done_fd_; // an eventfd: the thread writes it when the work has returned
    std::unique_ptr<sd_event_source, sd_event_source* (*)(sd_event_source*)> source_{
        nullptr, sd_event_source_disable_unref};
    std::thread thread_;
    std::function<void()> then_; // set while a work runs
    bool thread_failed_ = false;  // said once in the journal
};

} // namespace livepatchd
