// SPDX-License-Identifier: GPL-2.0-only
//
// task-stacks TID...: print the kernel stack of each task through PendingTaskTracker, the way
// the daemon gets it. For VM tests:
//
//   tid=<tid> comm=<comm> frames=<n>
//     <symbol>+0x<off>/0x<size> [<module>]      one line per frame, innermost first
//
// task-stacks --reads: walk the pending tasks without stacks, one read of the iterator at a
// time, and print how many reads the walk took and the tasks it found:
//
//   reads=<n> tasks=<n>
//
// Exit status: 0 every TID was found (--reads: the walk ended); 1 the BPF program could not be
// loaded or attached, or the iterator failed (the message names the libbpf error); 2 usage; 3
// some TID names no task (the others are still printed; nothing is printed on stdout for the
// missing ones).
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/pending_task_tracker.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_bpf_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_no_such_task = 3;

int usage()
{
    std::fputs("usage: task-stacks TID...\n"
               "       task-stacks --reads\n"
               "Print the kernel stack of each task, or how many reads of the iterator a walk\n"
               "takes (needs root).\n",
               stderr);
    return exit_usage;
}

std::optional<pid_t> parse_tid(std::string_view arg)
{
    pid_t tid = 0;
    const auto [ptr, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), tid);
    if (ec != std::errc{} || ptr != arg.data() + arg.size() || tid <= 0)
        return std::nullopt;
    return tid;
}

void print_stack(const livepatchd::TrackedTask& stack)
{
    std::printf("tid=%d comm=%s frames=%zu", static_cast<int>(stack.tid), stack.comm.c_str(),
                stack.frames.size());
    if (stack.stack_errnum != 0)
        std::printf(" (no stack: errno %d)", stack.stack_errnum);
    std::putchar('\n');
    for (const std::string& frame : stack.frames)
        std::printf("  %s\n", frame.c_str());
}

// A walk, one read of the kernel's buffer per read_until(0).
int count_reads()
{
    auto tracker = livepatchd::PendingTaskTracker::open();
    if (!tracker) {
        std::fprintf(stderr, "task-stacks: %s\n", tracker.error().message.c_str());
        return exit_bpf_error;
    }
    auto walk = tracker->walk(livepatchd::StackSelection::nothing());
    if (!walk) {
        std::fprintf(stderr, "task-stacks: %s\n", walk.error().message.c_str());
        return exit_bpf_error;
    }
    for (unsigned reads = 1;; reads++) {
        auto ended = walk->read_until(0);
        if (!ended) {
            std::fprintf(stderr, "task-stacks: %s\n", ended.error().message.c_str());
            return exit_bpf_error;
        }
        if (*ended) {
            std::printf("reads=%u tasks=%zu\n", reads, walk->take().size());
            return exit_ok;
        }
    }
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2)
        return usage();
    if (std::string_view(argv[1]) == "--reads")
        return argc == 2 ? count_reads() : usage();
    std::vector<pid_t> tids;
    for (int i = 1; i < argc; i++) {
        const std::optional<pid_t> tid = parse_tid(argv[i]);
        if (!tid) {
            std::fprintf(stderr, "task-stacks: '%s' is not a task id (a positive number)\n", argv[i]);
            return usage();
        }
        tids.push_back(*tid);
    }

    auto tracker = livepatchd::PendingTaskTracker::open();
    if (!tracker) {
        std::fprintf(stderr, "task-stacks: %s\n", tracker.error().message.c_str());
        return exit_bpf_error;
    }
    for (const pid_t tid : tids) {
        if (auto r = tracker->watch(tid); !r) {
            std::fprintf(stderr, "task-stacks: %s\n", r.error().message.c_str());
            return exit_bpf_error;
        }
    }
    auto stacks = tracker->list(true);
    if (!stacks) {
        std::fprintf(stderr, "task-stacks: %s\n", stacks.error().message.c_str());
        return exit_bpf_error;
    }

    int status = exit_ok;
    for (const pid_t tid : tids) {
        const livepatchd::TrackedTask* found = nullptr;
        for (const auto& s : *stacks)
            if (s.tid == tid)
                found = &s;
        if (!found) {
            std::fprintf(stderr, "task-stacks: no task with tid %d\n", static_cast<int>(tid));
            status = exit_no_such_task;
            continue;
        }
        print_stack(*found);
    }
    return status;
}
