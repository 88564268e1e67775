// SPDX-License-Identifier: GPL-2.0-only
#include "common/off_loop_queue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "common/dispatch_label.hpp"

namespace livepatchd {

Result<std::unique_ptr<OffLoopQueue>> OffLoopQueue::create(sd_event* event, const char* label,
                                                           Priority priority)
{
    std::unique_ptr<OffLoopQueue> created(new OffLoopQueue());
    created->label_ = label;
    created->priority_ = priority;
    created->done_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!created->done_fd_)
        return Error{errno, std::string("cannot create an eventfd: ") + std::strerror(errno)};
    sd_event_source* source = nullptr;
    const int r = sd_event_add_io(event, &source, created->done_fd_.get(), EPOLLIN, on_done,
                                  created.get());
    if (r < 0)
        return Error{-r, std::string("cannot watch an eventfd: ") + std::strerror(-r)};
    created->source_.reset(source);
    try {
        created->thread_ = std::thread([queue = created.get()] { queue->serve(); });
    } catch (const std::system_error& e) {
        return Error{e.code().value(), std::string("cannot start a thread: ") + e.what()};
    }
    return created;
}

OffLoopQueue::~OffLoopQueue()
{
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void OffLoopQueue::post(std::function<void()> work, std::function<void()> then)
{
    {
        std::lock_guard lock(mutex_);
        queued_.push_back(Item{std::move(work), std::move(then)});
    }
    changed_.notify_all();
}

bool OffLoopQueue::has_queued()
{
    std::lock_guard lock(mutex_);
    return !queued_.empty();
}

void OffLoopQueue::serve()
{
    // This thread's nice value only (glibc's nice() sets the calling thread's). Should it
    // fail, the works run as the loop does.
    if (priority_ == Priority::below_loop)
        (void)::nice(10);
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [this] { return closing_ || !queued_.empty(); });
        if (queued_.empty())
            return; // closing, and every work posted has run
        std::list<Item> running;
        running.splice(running.begin(), queued_, queued_.begin());
        busy_ = true;
        lock.unlock();
        try {
            running.front().work();
        } catch (...) {
            // Must not throw; if one does, the works after it still run.
        }
        lock.lock();
        busy_ = false;
        done_.splice(done_.end(), running);
        changed_.notify_all();
        // Written once per work and read before the loop runs continuations: a counter that
        // cannot overflow in practice, and one wake-up for any number of them.
        (void)::eventfd_write(done_fd_.get(), 1);
    }
}

void OffLoopQueue::run_continuations() noexcept
{
    eventfd_t ignored = 0;
    (void)::eventfd_read(done_fd_.get(), &ignored);
    std::list<Item> ready;
    {
        std::lock_guard lock(mutex_);
        ready.swap(done_);
    }
    for (Item& item : ready) {
        try {
            if (item.then)
                item.then();
        } catch (...) {
            // A continuation's failures are its own to report; the others still run.
        }
    }
}

void OffLoopQueue::flush() noexcept
{
    {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return queued_.empty() && !busy_; });
    }
    run_continuations();
}

int OffLoopQueue::on_done(sd_event_source*, int, std::uint32_t, void* userdata) noexcept
{
    auto* self = static_cast<OffLoopQueue*>(userdata);
    label_dispatch(self->label_);
    self->run_continuations();
    return 0;
}

} // namespace livepatchd
