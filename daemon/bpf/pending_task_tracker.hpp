// SPDX-License-Identifier: GPL-2.0-only
//
// Kernel stacks of chosen tasks, through the iter/task BPF program in bpf/pending_stacks.bpf.c.
//
// The stacks are for people (reports, the journal, `livepatchctl status`). They come from the
// kernel's non-reliable unwinder and may race with a running task: never base a consistency or
// remediation decision on them; lpshim decides in the kernel.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "result.hpp"

struct pending_stacks; // the generated skeleton, <pending_stacks.skel.h>

namespace livepatchd {

struct TaskStack {
    pid_t tid = 0;
    pid_t tgid = 0;
    std::string comm;
    std::vector<std::uint64_t> frames; // return addresses, innermost first
    int stack_errnum = 0;              // why frames is empty when the kernel gave no stack
};

class TaskStackCollector {
public:
    static constexpr std::size_t max_frames = 32; // deeper stacks lose their outermost frames
    static constexpr std::uint32_t default_capacity = 16384;

    // Opens, loads and attaches the iterator. Needs root (CAP_BPF and CAP_PERFMON). At most
    // `capacity` tasks can be watched at once.
    static Result<TaskStackCollector> open(std::uint32_t capacity = default_capacity);

    // Adds tid to the watched tasks. Watching a tid twice is not an error. E2BIG when capacity
    // tasks are watched already. A tid is watched until forgotten, even after its task exits:
    // forget it then, or a new task reusing the tid is reported.
    Result<void> watch(pid_t tid);
    // Removes tid; forgetting a tid that is not watched is not an error.
    Result<void> forget(pid_t tid);

    // One TaskStack per watched task that exists now, in tid order. Reads the iterator once: each
    // call walks all tasks in the kernel, so call it when someone will read the result.
    Result<std::vector<TaskStack>> collect() const;

    // A moved-from collector may only be destroyed or assigned to.
    TaskStackCollector(TaskStackCollector&&) noexcept = default;
    TaskStackCollector& operator=(TaskStackCollector&&) noexcept = default;

private:
    struct SkeletonDeleter {
        void operator()(pending_stacks* skel) const noexcept; // detaches, then frees everything
    };
    using Skeleton = std::unique_ptr<pending_stacks, SkeletonDeleter>;

    explicit TaskStackCollector(Skeleton skel) noexcept : skel_(std::move(skel)) {}

    Skeleton skel_;
};

} // namespace livepatchd
