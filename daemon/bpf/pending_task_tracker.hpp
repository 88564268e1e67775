// SPDX-License-Identifier: GPL-2.0-only
//
// PendingTaskTracker: the tasks an lpshim transition waits for, as the kernel sees them, through
// bpf/pending_tasks.bpf.c. Raw tracepoint programs keep an in-kernel map (tid → reason,
// function, first seen, attempts) from lpshim_task_blocked and lpshim_task_switch; a task
// iterator reads it back with each task's comm, tgid and, when asked, kernel stack.
//
// The stacks are for people (reports, the journal, `livepatchctl blocking -v`). They come from
// the kernel's non-reliable unwinder and may race with a running task: never base a consistency
// or remediation decision on them; lpshim decides in the kernel.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

struct pending_tasks; // the generated skeleton, <pending_tasks.skel.h>
struct bpf_map;

namespace livepatchd {

struct TrackedTask {
    pid_t tid = 0;
    pid_t tgid = 0;
    std::string comm;     // printable (made so as each record is read), as function is
    std::string reason;   // lpshim's word: running, sleeping-in-function, ...
    std::string function; // the patched function on its stack ("name [module]"), or ""
    std::uint64_t first_seen_ns = 0; // CLOCK_MONOTONIC of the first time it was found blocked
    std::uint32_t attempts = 0;      // times found blocked in this transition
    // Its kernel stack when asked for, innermost first, as the kernel names each frame
    // ("name+0xoff/0xsize [module]"): no /proc/kallsyms needed.
    std::vector<std::string> frames;
    int stack_errnum = 0; // why frames is empty when the kernel gave no stack
};

// Which tasks of a list() get their stack: a stack costs an unwind and a symbol lookup per
// frame (about 1.5 µs a frame), so a list of thousands of tasks takes none unless asked.
struct StackSelection {
    enum class Kind { none, all, some };
    Kind kind = Kind::none;
    std::set<pid_t> tids; // Kind::some

    static StackSelection nothing() { return {}; }
    static StackSelection every() { return {Kind::all, {}}; }
    static StackSelection of(std::set<pid_t> tids)
    {
        return tids.empty() ? nothing() : StackSelection{Kind::some, std::move(tids)};
    }
};

class PendingTaskTracker {
public:
    static constexpr std::size_t max_frames = 32; // deeper stacks lose their outermost frames
    static constexpr std::uint32_t default_capacity = 16384;

    // Opens, loads and attaches the iterator. Needs root (CAP_BPF and CAP_PERFMON). The map
    // holds `capacity` tasks (0: as many as kernel.threads-max says, within
    // pending_map_max_entries, bpf/pending_map_size.hpp); a task that blocks when it is full
    // is not added, and counted (overflowed()).
    static Result<PendingTaskTracker> open(std::uint32_t capacity = 0);

    // The map's size, as loaded.
    std::uint32_t capacity() const;
    // Tasks lpshim reported blocked in the transition under way that the map had no room
    // for: while not 0, list() misses some of them, and lpshim's own list is the one to read.
    std::uint64_t overflowed() const;

    // Attaches the programs on lpshim's tracepoints (lpshim.ko must be loaded): from now on the
    // map follows every transition. They hold a reference on lpshim.ko until this is destroyed.
    Result<void> follow_transitions();

    // Adds a task of the caller's choosing, reported whether or not it blocks a transition
    // (for its stack). Watching a tid twice is not an error. A tid is watched until forgotten,
    // even after its task exits: forget it then, or a new task reusing the tid is reported.
    Result<void> watch(pid_t tid);
    // Removes tid; forgetting a tid that is not watched is not an error.
    Result<void> forget(pid_t tid);

    // One walk of the kernel's task list, read a slice at a time: the tasks blocking the
    // transition under way (and the watched ones), in tid order, with the stacks of the selected
    // ones (and of watched tasks). More tids selected than the kernel's selection holds
    // (max_selected_stacks) take every stack. At 30,000 pending tasks a walk takes the kernel
    // seconds under emulation: a caller on an event loop reads it over several turns.
    //
    // One walk at a time: the selection is the BPF program's (stack_mode, stack_wanted) for as
    // long as the walk lives, and a second walk would change it under the first.
    //
    // only_selected (with stacks of some tids): the walk keeps those tasks only. The kernel
    // still visits every task, but the others are never made into TrackedTasks, which at
    // 30,000 tasks would take tens of ms to build and as long to free, for a caller who wants
    // the stacks of a few.
    class Walk {
    public:
        // Reads on until the walk has ended or CLOCK_MONOTONIC has passed deadline_usec (one
        // read of the kernel's buffer at least). True once it has ended.
        Result<bool> read_until(std::uint64_t deadline_usec);
        // The tasks read, once read_until() said it has ended.
        std::vector<TrackedTask> take() { return std::move(tasks_); }

        Walk(Walk&&) noexcept = default;
        Walk& operator=(Walk&&) = delete; // the target's selection would stay in the kernel
        ~Walk();

    private:
        friend class PendingTaskTracker;
        Walk(bpf_map* selection, std::vector<std::uint32_t> selected, UniqueFd iter) noexcept
            : selection_(selection), selected_(std::move(selected)), iter_(std::move(iter)) {}
        Result<void> parse(); // the complete records in bytes_, into tasks_

        bpf_map* selection_ = nullptr;
        std::vector<std::uint32_t> selected_; // keys of selection_ to delete at the end
        std::optional<std::set<pid_t>> kept_; // only_selected: the tids kept
        UniqueFd iter_;
        std::vector<unsigned char> bytes_; // read, not parsed yet (a record cut by a read)
        std::size_t used_ = 0;
        std::vector<TrackedTask> tasks_;
    };
    // expected: how many tasks the walk is likely to find (the last walk's count), room made
    // for at once: a list grown record by record moves every task read so far at each
    // doubling, the last of them (tens of thousands of tasks) within one of the walk's slices.
    Result<Walk> walk(const StackSelection& stacks, std::size_t expected = 0,
                      bool only_selected = false) const;

    // A whole walk at once.
    Result<std::vector<TrackedTask>> list(const StackSelection& stacks) const;
    Result<std::vector<TrackedTask>> list(bool with_stacks) const
    {
        return list(with_stacks ? StackSelection::every() : StackSelection::nothing());
    }
    static constexpr std::size_t max_selected_stacks = 1024;

    PendingTaskTracker(PendingTaskTracker&&) noexcept = default;
    PendingTaskTracker& operator=(PendingTaskTracker&&) noexcept = default;

private:
    struct SkeletonDeleter {
        void operator()(pending_tasks* skel) const noexcept; // detaches, then frees everything
    };
    using Skeleton = std::unique_ptr<pending_tasks, SkeletonDeleter>;

    explicit PendingTaskTracker(Skeleton skel) noexcept : skel_(std::move(skel)) {}

    Skeleton skel_;
};

} // namespace livepatchd
