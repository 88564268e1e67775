// SPDX-License-Identifier: GPL-2.0-only
#include "task_stacks.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pending_stacks.h>
#include <pending_stacks.skel.h>

static_assert(livepatchd::TaskStackCollector::max_frames == MAX_FRAMES);
static_assert(livepatchd::TaskStackCollector::default_capacity == PENDING_TASKS_MAX);

namespace livepatchd {

namespace {

// The iterator fd: one read pass over all tasks.
class UniqueFd {
public:
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const noexcept { return fd_; }

private:
    int fd_;
};

std::string errno_text(int errnum)
{
    std::string text = std::generic_category().message(errnum);
    if (errnum == EPERM || errnum == EACCES)
        text += " (are you root? needs CAP_BPF and CAP_PERFMON)";
    return text;
}

Error failure(int errnum, const std::string& what)
{
    return Error{errnum, "failed to " + what + ": " + errno_text(errnum)};
}

std::uint64_t monotonic_ns() noexcept
{
    // The clock of bpf_ktime_get_ns(), so that BPF and userspace timestamps compare.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

TaskStack to_task_stack(const task_stack_record& rec)
{
    TaskStack stack;
    stack.tid = static_cast<pid_t>(rec.tid);
    stack.tgid = static_cast<pid_t>(rec.tgid);
    stack.comm.assign(rec.comm, strnlen(rec.comm, sizeof rec.comm));
    const std::size_t n = std::min<std::size_t>(rec.nr_frames, MAX_FRAMES);
    stack.frames.assign(rec.frames, rec.frames + n);
    stack.stack_errnum = -rec.stack_err;
    return stack;
}

} // namespace

void TaskStackCollector::SkeletonDeleter::operator()(pending_stacks* skel) const noexcept
{
    pending_stacks__destroy(skel); // also destroys the links the skeleton holds
}

Result<TaskStackCollector> TaskStackCollector::open(std::uint32_t capacity)
{
    if (capacity == 0)
        return Error{EINVAL, "task stack collector capacity must be at least 1"};

    Skeleton skel(pending_stacks__open());
    if (!skel)
        return failure(errno, "open BPF object pending_stacks");

    if (int err = bpf_map__set_max_entries(skel->maps.pending, capacity); err < 0)
        return failure(-err, "size BPF map pending to " + std::to_string(capacity) + " entries");

    if (int err = pending_stacks__load(skel.get()); err < 0)
        return failure(-err, "load BPF object pending_stacks");

    // Attached explicitly rather than by pending_stacks__attach(): the raw_tracepoint programs
    // that will join this object need lpshim loaded and are attached on their own.
    skel->links.dump_pending_stacks = bpf_program__attach_iter(skel->progs.dump_pending_stacks, nullptr);
    if (!skel->links.dump_pending_stacks)
        return failure(errno, "attach iter/task");

    return TaskStackCollector(std::move(skel));
}

Result<void> TaskStackCollector::watch(pid_t tid)
{
    if (tid <= 0)
        return Error{EINVAL, "cannot watch tid " + std::to_string(tid) + ": not a task id"};

    const __u32 key = static_cast<__u32>(tid);
    const pending_task value{.first_seen_ns = monotonic_ns(), .flags = 0, .reserved = 0};
    // BPF_NOEXIST keeps first_seen_ns of a task watched already.
    const int err = bpf_map__update_elem(skel_->maps.pending, &key, sizeof key, &value, sizeof value,
                                         BPF_NOEXIST);
    if (err == 0 || err == -EEXIST)
        return {};
    if (err == -E2BIG)
        return Error{E2BIG, "cannot watch tid " + std::to_string(tid) + ": already watching " +
                                std::to_string(bpf_map__max_entries(skel_->maps.pending)) +
                                " tasks, the collector's capacity"};
    return failure(-err, "watch tid " + std::to_string(tid));
}

Result<void> TaskStackCollector::forget(pid_t tid)
{
    if (tid <= 0)
        return Error{EINVAL, "cannot forget tid " + std::to_string(tid) + ": not a task id"};

    const __u32 key = static_cast<__u32>(tid);
    const int err = bpf_map__delete_elem(skel_->maps.pending, &key, sizeof key, 0);
    if (err == 0 || err == -ENOENT)
        return {};
    return failure(-err, "forget tid " + std::to_string(tid));
}

Result<std::vector<TaskStack>> TaskStackCollector::collect() const
{
    const int fd = bpf_iter_create(bpf_link__fd(skel_->links.dump_pending_stacks));
    if (fd < 0)
        return failure(-fd, "create a task iterator");
    const UniqueFd iter(fd);

    // A read may end in the middle of a record: gather everything, then cut it into records.
    std::vector<unsigned char> bytes;
    std::size_t used = 0;
    for (;;) {
        if (bytes.size() - used < 64 * 1024)
            bytes.resize(used + 64 * 1024);
        const ssize_t n = ::read(iter.get(), bytes.data() + used, bytes.size() - used);
        if (n > 0) {
            used += static_cast<std::size_t>(n);
            continue;
        }
        if (n == 0)
            break;
        // EAGAIN: the kernel visited a million tasks without output and yields; read on.
        if (errno == EINTR || errno == EAGAIN)
            continue;
        return failure(errno, "read the task iterator");
    }
    if (used % sizeof(task_stack_record) != 0)
        return Error{EPROTO, "task iterator returned " + std::to_string(used) +
                                 " bytes, not a whole number of " +
                                 std::to_string(sizeof(task_stack_record)) + "-byte records"};

    std::vector<TaskStack> stacks;
    stacks.reserve(used / sizeof(task_stack_record));
    for (std::size_t off = 0; off < used; off += sizeof(task_stack_record)) {
        task_stack_record rec;
        std::memcpy(&rec, bytes.data() + off, sizeof rec);
        stacks.push_back(to_task_stack(rec));
    }
    return stacks;
}

} // namespace livepatchd
