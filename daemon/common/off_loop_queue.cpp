// SPDX-License-Identifier: GPL-2.0-only
#include "common/off_loop_queue.hpp"

#include <poll.h>
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
#include "common/loop_activity.hpp"
#include "common/loop_priority.hpp"

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
    // Disarmed until needed; at 1 µs accuracy (sd-event's default would let it slip 250 ms).
    // Without it (out of memory) the loop waits for the lock, as a last resort.
    sd_event_source* retry = nullptr;
    if (sd_event_add_time(event, &retry, CLOCK_MONOTONIC, UINT64_MAX, 1, on_retry,
                          created.get()) >= 0) {
        created->retry_.reset(retry);
        if (sd_event_source_set_enabled(retry, SD_EVENT_OFF) < 0)
            created->retry_.reset();
    }
    try {
        created->thread_ = std::thread([queue = created.get()] { queue->serve(); });
    } catch (const std::system_error& e) {
        return Error{e.code().value(), std::string("cannot start a thread: ") + e.what()};
    }
    if (priority == Priority::realtime) {
        // Before any work is posted. EPERM without CAP_SYS_NICE or RLIMIT_RTPRIO >= 2 (the
        // unit's LimitRTPRIO=2; RestrictRealtime=yes would refuse it too). Above the loop's
        // real-time priority (LoopPriority::priority).
        const sched_param param{.sched_priority = LoopPriority::priority + 1};
        created->realtime_ =
            ::pthread_setschedparam(created->thread_.native_handle(), SCHED_FIFO, &param) == 0;
    }
    return created;
}

OffLoopQueue::~OffLoopQueue()
{
    {
        std::lock_guard lock(mutex_);
        queued_.splice(queued_.end(), outbox_); // run, not dropped
        closing_ = true;
    }
    if (retrying_.exchange(false))
        loop_retrying.fetch_sub(1);
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
    // Behind what is still kept: the order posted is the order run.
    outbox_.splice(outbox_.end(), batch.items_);
    hand_over(false);
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

void OffLoopQueue::hand_over(bool with_continuations) noexcept
{
    std::list<Item> ready;
    {
        std::unique_lock lock(mutex_, std::try_to_lock);
        if (!lock.owns_lock()) {
            if (with_continuations)
                continuations_owed_ = true;
            if (retry_later())
                return;
            lock.lock(); // no timer to try again from: a last resort
        }
        // Little under the lock, which the signal thread (real-time) also takes: a loop
        // preempted while it holds it keeps that thread waiting.
        const bool notify = !outbox_.empty();
        queued_.splice(queued_.end(), outbox_);
        if (with_continuations) {
            continuations_owed_ = false;
            ready.swap(done_);
        }
        // Nothing is owed any more: a retry armed before has nothing to do (nor does the loop,
        // for loop_woken()).
        if (!continuations_owed_)
            disarm_retry();
        lock.unlock();
        if (notify)
            changed_.notify_all();
    }
    run(ready);
}

void OffLoopQueue::disarm_retry() noexcept
{
    if (!retrying_.exchange(false))
        return;
    (void)sd_event_source_set_enabled(retry_.get(), SD_EVENT_OFF);
    loop_retrying.fetch_sub(1);
}

bool OffLoopQueue::retry_later() noexcept
{
    if (retrying_.load())
        return true;
    // From now, not from the loop's wake-up (sd_event_now()): after a long dispatch that
    // would be at once.
    if (!retry_ || sd_event_source_set_time(retry_.get(), monotonic_usec() + 1'000) < 0 ||
        sd_event_source_set_enabled(retry_.get(), SD_EVENT_ONESHOT) < 0)
        return false;
    retrying_.store(true);
    loop_retrying.fetch_add(1);
    return true;
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
        if ((next == queued_.end() || !next->due) && unheard_) {
            unheard_ = false;
            // A counter that cannot overflow in practice, read before the loop takes done_:
            // one wake-up for any number of them. Written outside the lock: the loop, woken,
            // runs at once on this CPU (this thread is below it) and would find it held.
            lock.unlock();
            woken_.store(true);
            (void)::eventfd_write(done_fd_.get(), 1);
            lock.lock();
            continue; // looked at again: the queue may have changed meanwhile
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
        // For flush(), waiting for !busy_: woken outside the lock, as the loop above.
        lock.unlock();
        changed_.notify_all();
        lock.lock();
    }
}

bool OffLoopQueue::loop_woken()
{
    if (flushing_.load())
        return false;
    // Cleared by the loop after its read of the eventfd, in a dispatch: seen cleared, the
    // loop's loop_busy (set before the dispatch) is seen set, or cleared by that dispatch's end.
    // A write after that read (for works that dispatch took) may wake the loop again with
    // woken_ already cleared: the eventfd, still to be read, says so.
    if (retrying_.load() || woken_.load())
        return true;
    pollfd fd{.fd = done_fd_.get(), .events = POLLIN, .revents = 0};
    return ::poll(&fd, 1, 0) > 0 && (fd.revents & POLLIN);
}

void OffLoopQueue::run(std::list<Item>& ready) noexcept
{
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
    std::list<Item> ready;
    {
        std::unique_lock lock(mutex_);
        queued_.splice(queued_.end(), outbox_);
        changed_.notify_all();
        flushing_ = true; // the loop waits here: not about to run continuations
        changed_.wait(lock, [this] {
            std::uint64_t earliest = 0;
            return !busy_ && next_due(monotonic_usec(), earliest) == queued_.end();
        });
        flushing_ = false;
        // Read before done_ is taken, as on_done() does: the thread writes it after its lock is
        // let go, so a write may still come for works taken here (a dispatch for nothing).
        eventfd_t ignored = 0;
        (void)::eventfd_read(done_fd_.get(), &ignored);
        woken_.store(false);
        continuations_owed_ = false;
        ready.swap(done_);
        disarm_retry(); // nothing is owed
    }
    run(ready);
}

int OffLoopQueue::on_done(sd_event_source*, int, std::uint32_t, void* userdata) noexcept
{
    auto* self = static_cast<OffLoopQueue*>(userdata);
    label_dispatch(self->label_);
    // Read before done_ is taken: a write after the read wakes the loop again. (Cleared after
    // the read: a write before it, then consumed by it, must not leave woken_ set.)
    eventfd_t ignored = 0;
    (void)::eventfd_read(self->done_fd_.get(), &ignored);
    self->woken_.store(false);
    self->hand_over(true);
    return 0;
}

int OffLoopQueue::on_retry(sd_event_source*, std::uint64_t, void* userdata) noexcept
{
    auto* self = static_cast<OffLoopQueue*>(userdata);
    label_dispatch(self->label_);
    if (self->retrying_.exchange(false)) // (else disarmed since: counted down then)
        loop_retrying.fetch_sub(1);
    self->hand_over(self->continuations_owed_);
    return 0;
}

} // namespace livepatchd
