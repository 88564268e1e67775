// SPDX-License-Identifier: GPL-2.0-only
#include "common/off_loop_queue.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>

#include "common/clock.hpp"
#include "common/dispatch_label.hpp"

namespace livepatchd {

namespace {
std::atomic<void (*)()> holding_hook = nullptr;
} // namespace

void OffLoopQueue::set_holding_hook(void (*hook)()) noexcept
{
    holding_hook.store(hook);
}

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
    if (priority == Priority::realtime) {
        // Before any work is posted. EPERM without CAP_SYS_NICE or RLIMIT_RTPRIO >= 1 (the
        // unit's LimitRTPRIO=1; RestrictRealtime=yes would refuse it too).
        const sched_param param{.sched_priority = 1};
        created->realtime_ =
            ::pthread_setschedparam(created->thread_.native_handle(), SCHED_FIFO, &param) == 0;
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

void OffLoopQueue::Batch::add(Due due, std::function<void()> work, std::function<void()> then)
{
    items_.push_back(Item{std::move(work), std::move(then), std::move(due)});
}

void OffLoopQueue::post(std::function<void()> work, std::function<void()> then)
{
    Batch batch;
    batch.add(nullptr, std::move(work), std::move(then));
    post(std::move(batch));
}

void OffLoopQueue::post(Batch&& batch) noexcept
{
    {
        // Only a splice under the lock, which the signal thread (real-time) also takes: a loop
        // preempted while it holds it keeps that thread waiting.
        std::lock_guard lock(mutex_);
        queued_.splice(queued_.end(), batch.items_);
    }
    changed_.notify_all();
}

void OffLoopQueue::lower(const Due& due, std::uint64_t usec) noexcept
{
    std::uint64_t now = due->load();
    while (usec < now && !due->compare_exchange_weak(now, usec)) {
    }
}

void OffLoopQueue::wake()
{
    // Under the lock: the thread either sees the lowered Due before it waits, or is waiting.
    { std::lock_guard lock(mutex_); }
    changed_.notify_all();
}

std::list<OffLoopQueue::Item>::iterator OffLoopQueue::next_due(std::uint64_t now,
                                                               std::uint64_t& earliest)
{
    earliest = never_due;
    for (auto it = queued_.begin(); it != queued_.end(); ++it) {
        const std::uint64_t due = it->due ? it->due->load() : 0;
        if (due <= now || closing_)
            return it;
        earliest = std::min(earliest, due);
    }
    return queued_.end();
}

bool OffLoopQueue::has_queued()
{
    std::lock_guard lock(mutex_);
    return !queued_.empty();
}

bool OffLoopQueue::has_timed_due()
{
    std::lock_guard lock(mutex_);
    const std::uint64_t now = monotonic_usec();
    return std::any_of(queued_.begin(), queued_.end(),
                       [now](const Item& item) { return item.due && item.due->load() <= now; });
}

bool OffLoopQueue::has_due()
{
    std::lock_guard lock(mutex_);
    std::uint64_t earliest = 0;
    return next_due(monotonic_usec(), earliest) != queued_.end();
}

void OffLoopQueue::serve()
{
    // This thread's nice value only (glibc's nice() sets the calling thread's). Should it
    // fail, the works run as the loop does.
    if (priority_ == Priority::below_loop)
        (void)::nice(10);
    std::unique_lock lock(mutex_);
    for (;;) {
        std::uint64_t earliest = never_due;
        const auto next = next_due(monotonic_usec(), earliest);
        // The loop hears of what ran unless a timed work is due (a wake-up between a SIGSTOP
        // and the SIGCONT due after it would draw the loop into the storm the SIGSTOP started;
        // the timed works are few, a stream of others must not keep it waiting).
        if (next == queued_.end() || !next->due) {
            if (unheard_) {
                unheard_ = false;
                woken_ = true;
                // A counter that cannot overflow in practice, read before the loop runs
                // continuations: one wake-up for any number of them.
                (void)::eventfd_write(done_fd_.get(), 1);
            }
        }
        if (next == queued_.end()) {
            if (closing_)
                return; // every work posted has run
            if (auto* hook = holding_hook.load())
                hook();
            if (earliest == never_due)
                changed_.wait(lock);
            else // CLOCK_MONOTONIC, as monotonic_usec(): libstdc++'s steady_clock
                changed_.wait_until(lock, std::chrono::steady_clock::time_point(
                                              std::chrono::microseconds(earliest)));
            continue;
        }
        std::list<Item> running;
        running.splice(running.begin(), queued_, next);
        busy_ = true;
        lock.unlock();
        try {
            running.front().work();
        } catch (...) {
            // Must not throw; if one does, the works after it still run.
        }
        // A work without a continuation has nothing for the loop, which is not woken for it (a
        // SIGSTOP's: the loop would wake inside its storm); destroyed here, outside the lock.
        if (!running.front().then)
            running.clear();
        lock.lock();
        busy_ = false;
        if (!running.empty()) {
            done_.splice(done_.end(), running);
            unheard_ = true;
        }
        changed_.notify_all();
    }
}

bool OffLoopQueue::loop_woken()
{
    std::lock_guard lock(mutex_);
    return woken_ && !flushing_;
}

void OffLoopQueue::run_continuations() noexcept
{
    std::list<Item> ready;
    {
        // The read under the lock, with woken_: a write after it sets woken_ again.
        std::lock_guard lock(mutex_);
        eventfd_t ignored = 0;
        (void)::eventfd_read(done_fd_.get(), &ignored);
        woken_ = false;
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
        flushing_ = true; // the loop waits here: not about to run continuations
        changed_.wait(lock, [this] {
            std::uint64_t earliest = 0;
            return !busy_ && next_due(monotonic_usec(), earliest) == queued_.end();
        });
        flushing_ = false;
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
