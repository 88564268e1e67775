// SPDX-License-Identifier: GPL-2.0-only
#include "common/off_loop_work.hpp"

#include <stdexcept>

namespace livepatchd {

Result<std::unique_ptr<OffLoopWork>> OffLoopWork::create(sd_event* event)
{
    auto queue = OffLoopQueue::create(event, "the end of an operation's blocking work");
    if (!queue)
        return queue.error();
    return std::unique_ptr<OffLoopWork>(new OffLoopWork(std::move(*queue)));
}

void OffLoopWork::run(std::function<void()> work, std::function<void()> then)
{
    if (running_)
        throw std::logic_error("OffLoopWork::run: a work is running already");
    queue_->post(std::move(work), [this, then = std::move(then)] {
        running_ = false;
        then();
    });
    running_ = true;
}

} // namespace livepatchd
