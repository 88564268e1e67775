// SPDX-License-Identifier: GPL-2.0-only
#include "common/off_loop_work.hpp"

#include <sys/eventfd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <stdexcept>
#include <system_error>

#include "common/dispatch_label.hpp"
#include "common/journal.hpp"

namespace livepatchd {

Result<std::unique_ptr<OffLoopWork>> OffLoopWork::create(sd_event* event)
{
    std::unique_ptr<OffLoopWork> created(new OffLoopWork());
    created->done_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!created->done_fd_)
        return Error{errno, std::string("cannot create an eventfd: ") + std::strerror(errno)};
    sd_event_source* source = nullptr;
    const int r = sd_event_add_io(event, &source, created->done_fd_.get(), EPOLLIN, on_done,
                                  created.get());
    if (r < 0)
        return Error{-r, std::string("cannot watch an eventfd: ") + std::strerror(-r)};
    created->source_.reset(source);
    return created;
}

OffLoopWork::~OffLoopWork()
{
    if (thread_.joinable())
        thread_.join();
}

void OffLoopWork::run(std::function<void()> work, std::function<void()> then)
{
    if (running())
        throw std::logic_error("OffLoopWork::run: a work is running already");
    // Shared: still here to run on the loop if no thread can be made.
    auto shared = std::make_shared<std::function<void()>>(std::move(work));
    try {
        thread_ = std::thread([this, shared] {
            (*shared)();
            // Written once per work, read before the next: the counter cannot overflow.
            (void)::eventfd_write(done_fd_.get(), 1);
        });
    } catch (...) {
        // No thread (EAGAIN, ENOMEM): both on the loop, now, as before there were threads.
        // Nothing was kept: a failure here leaves nothing running.
        if (!thread_failed_) {
            thread_failed_ = true;
            try {
                journal::log(LogLevel::warning, "cannot start a thread for an operation's "
                                                "blocking work; it runs on the event loop");
            } catch (...) {
            }
        }
        (*shared)();
        then();
        return;
    }
    // Only now: on_done() cannot run before the loop's next turn.
    then_ = std::move(then);
}

void OffLoopWork::finish_now()
{
    if (!running())
        return;
    if (thread_.joinable())
        thread_.join();
    eventfd_t ignored = 0;
    (void)::eventfd_read(done_fd_.get(), &ignored);
    auto then = std::move(then_);
    then_ = nullptr;
    then();
}

int OffLoopWork::on_done(sd_event_source*, int, std::uint32_t, void* userdata) noexcept
{
    label_dispatch("the end of an operation's blocking work");
    auto* self = static_cast<OffLoopWork*>(userdata);
    try {
        self->finish_now();
    } catch (...) {
        // The continuation's own failures are its own to report; the loop goes on.
    }
    return 0;
}

} // namespace livepatchd
