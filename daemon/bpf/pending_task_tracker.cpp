// SPDX-License-Identifier: GPL-2.0-only
#include "bpf/pending_task_tracker.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include "bpf/libbpf_messages.hpp"
#include "bpf/pending_map_size.hpp"
#include "common/text.hpp"

#include <fstream>
#include <sstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pending_tasks.h>
#include <pending_tasks.skel.h>

static_assert(livepatchd::PendingTaskTracker::max_frames == MAX_FRAMES);
static_assert(livepatchd::PendingTaskTracker::default_capacity == PENDING_TASKS_MAX);
static_assert(livepatchd::PendingTaskTracker::max_selected_stacks == PENDING_STACKS_SELECTED_MAX);

namespace livepatchd {

namespace {

Error failure(int errnum, const std::string& what)
{
    std::string rejected;
    (void)libbpf_saw_program_rejected(&rejected);
    return Error{errnum, bpf_failure_text(errnum, what, std::generic_category().message(errnum),
                                          rejected)};
}

std::uint64_t monotonic_ns() noexcept
{
    // The clock of bpf_ktime_get_ns(), so that BPF and userspace timestamps compare.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string reason_text(std::uint32_t reason)
{
    // lpshim's own words (shim-kmod/transition.c, lpshim_block_reason_names), so that a task
    // reads the same whether it came from here or from debugfs.
    switch (reason) {
    case PENDING_REASON_NOT_CHECKED:
        return "not-checked-yet";
    case PENDING_REASON_RUNNING:
        return "running";
    case PENDING_REASON_SLEEPING_IN_FUNC:
        return "sleeping-in-function";
    case PENDING_REASON_UNRELIABLE_STACK:
        return "unreliable-stack";
    }
    return "reason-" + std::to_string(reason);
}

// A NUL-terminated field of at most size bytes.
std::string text_of(const char* field, std::size_t size)
{
    return std::string(field, strnlen(field, size));
}

TrackedTask to_tracked_task(const pending_task_record& rec)
{
    TrackedTask task;
    task.tid = static_cast<pid_t>(rec.tid);
    task.tgid = static_cast<pid_t>(rec.tgid);
    // Printable here, in the walk's slices, not in the turn that hands the list over.
    task.comm = text_of(rec.comm, sizeof rec.comm);
    make_printable(task.comm);
    task.reason = reason_text(rec.pending.reason); // our own words
    task.function = text_of(rec.function, sizeof rec.function);
    make_printable(task.function);
    task.first_seen_ns = rec.pending.first_seen_ns;
    task.attempts = rec.pending.attempts;
    task.stack_errnum = -rec.stack_err;
    return task;
}

} // namespace

void PendingTaskTracker::SkeletonDeleter::operator()(pending_tasks* skel) const noexcept
{
    pending_tasks__destroy(skel); // also destroys the links the skeleton holds
}

Result<PendingTaskTracker> PendingTaskTracker::open(std::uint32_t capacity)
{
    if (capacity == 0) {
        std::ifstream file("/proc/sys/kernel/threads-max");
        std::ostringstream text;
        text << file.rdbuf();
        capacity = pending_map_entries(file ? std::optional<std::string_view>(text.str())
                                            : std::nullopt);
    }

    Skeleton skel(pending_tasks__open());
    if (!skel)
        return failure(errno, "open BPF object pending_tasks");

    if (int err = bpf_map__set_max_entries(skel->maps.pending, capacity); err < 0)
        return failure(-err, "size BPF map pending to " + std::to_string(capacity) + " entries");

    if (int err = pending_tasks__load(skel.get()); err < 0)
        return failure(-err, "load BPF object pending_tasks");

    // Attached on its own rather than by pending_tasks__attach(): the raw tracepoint programs
    // need lpshim loaded (follow_transitions()); the iterator does not.
    skel->links.dump_pending_tasks = bpf_program__attach_iter(skel->progs.dump_pending_tasks, nullptr);
    if (!skel->links.dump_pending_tasks)
        return failure(errno, "attach iter/task");

    return PendingTaskTracker(std::move(skel));
}

Result<void> PendingTaskTracker::follow_transitions()
{
    struct Attachment {
        bpf_program* program;
        bpf_link** link;
    };
    const Attachment attachments[] = {
        {skel_->progs.pending_on_transition_start, &skel_->links.pending_on_transition_start},
        {skel_->progs.pending_on_transition_end, &skel_->links.pending_on_transition_end},
        {skel_->progs.pending_on_task_blocked, &skel_->links.pending_on_task_blocked},
        {skel_->progs.pending_on_task_switch, &skel_->links.pending_on_task_switch},
        {skel_->progs.pending_on_task_exit, &skel_->links.pending_on_task_exit},
    };
    for (const Attachment& a : attachments) {
        if (*a.link)
            continue;
        *a.link = bpf_program__attach(a.program);
        if (!*a.link)
            return failure(errno, std::string("attach ") + bpf_program__section_name(a.program) +
                                      " (is lpshim.ko loaded?)");
    }
    return {};
}

std::uint32_t PendingTaskTracker::capacity() const
{
    return bpf_map__max_entries(skel_->maps.pending);
}

std::uint64_t PendingTaskTracker::overflowed() const
{
    return __atomic_load_n(&skel_->bss->overflowed, __ATOMIC_RELAXED);
}

Result<void> PendingTaskTracker::watch(pid_t tid)
{
    if (tid <= 0)
        return Error{EINVAL, "cannot watch tid " + std::to_string(tid) + ": not a task id"};

    const __u32 key = static_cast<__u32>(tid);
    const pending_task value{.first_seen_ns = monotonic_ns(),
                             .function = 0,
                             .transition = 0,
                             .attempts = 0,
                             .reason = PENDING_REASON_NOT_CHECKED,
                             .flags = PENDING_TASK_F_WATCHED};
    // BPF_NOEXIST keeps first_seen_ns of a task watched already.
    const int err = bpf_map__update_elem(skel_->maps.pending, &key, sizeof key, &value, sizeof value,
                                         BPF_NOEXIST);
    if (err == 0 || err == -EEXIST)
        return {};
    if (err == -E2BIG) // a plain hash map refuses an insert when full
        return Error{E2BIG, "cannot watch tid " + std::to_string(tid) + ": the tracker's map of " +
                                std::to_string(capacity()) + " tasks is full"};
    return failure(-err, "watch tid " + std::to_string(tid));
}

Result<void> PendingTaskTracker::forget(pid_t tid)
{
    if (tid <= 0)
        return Error{EINVAL, "cannot forget tid " + std::to_string(tid) + ": not a task id"};

    const __u32 key = static_cast<__u32>(tid);
    const int err = bpf_map__delete_elem(skel_->maps.pending, &key, sizeof key, 0);
    if (err == 0 || err == -ENOENT)
        return {};
    return failure(-err, "forget tid " + std::to_string(tid));
}

Result<PendingTaskTracker::Walk> PendingTaskTracker::walk(const StackSelection& stacks,
                                                          std::size_t expected,
                                                          bool only_selected) const
{
    // The selection lives in the kernel only for this walk: emptied again when it ends (~Walk),
    // or here on the way out.
    bpf_map* selection = skel_->maps.stack_wanted;
    std::vector<std::uint32_t> selected;
    auto unselect = [&] {
        for (const std::uint32_t& key : selected)
            (void)bpf_map__delete_elem(selection, &key, sizeof key, 0);
    };
    __u32 mode = PENDING_STACKS_NONE;
    if (stacks.kind == StackSelection::Kind::all ||
        (stacks.kind == StackSelection::Kind::some && stacks.tids.size() > max_selected_stacks)) {
        mode = PENDING_STACKS_ALL;
    } else if (stacks.kind == StackSelection::Kind::some) {
        mode = PENDING_STACKS_SELECTED;
        selected.reserve(stacks.tids.size()); // no throw between an insert and its record
        const __u8 yes = 1;
        for (const pid_t tid : stacks.tids) {
            const __u32 key = static_cast<__u32>(tid);
            const int err =
                bpf_map__update_elem(selection, &key, sizeof key, &yes, sizeof yes, BPF_ANY);
            if (err < 0) {
                mode = PENDING_STACKS_ALL; // full (a leftover); every stack is still right
                break;
            }
            selected.push_back(key);
        }
    }
    skel_->bss->stack_mode = mode;
    const int fd = bpf_iter_create(bpf_link__fd(skel_->links.dump_pending_tasks));
    if (fd < 0) {
        const int errnum = -fd;
        unselect();
        return failure(errnum, "create a task iterator");
    }
    Walk walk(selection, std::move(selected), UniqueFd(fd));
    // (On failure the walk goes, and its selection with it.)
    if (only_selected && stacks.kind == StackSelection::Kind::some) {
        walk.kept_ = stacks.tids;
        walk.tasks_.reserve(stacks.tids.size());
    } else {
        walk.tasks_.reserve(expected);
    }
    return walk;
}

PendingTaskTracker::Walk::~Walk()
{
    for (const std::uint32_t& key : selected_)
        (void)bpf_map__delete_elem(selection_, &key, sizeof key, 0);
}

Result<bool> PendingTaskTracker::Walk::read_until(std::uint64_t deadline_usec)
{
    if (!iter_)
        return true;
    // One page per read: the kernel runs the program only until its output reaches what the
    // read asks for (bpf_seq_read()), so a read's time is bounded by a page of output: 32
    // records without stacks (each names its function: a symbol lookup), one or two with, or
    // 32 markers (1,024 tasks passed by). Asking for more than its buffer (8 pages) filled that:
    // 147 ms in one read() at 30,000 pending tasks under emulation. A read may end in the
    // middle of a record: the complete records are parsed after each read, the rest waits for
    // the next.
    constexpr std::size_t chunk = 4096;
    for (;;) {
        if (bytes_.size() - used_ < chunk)
            bytes_.resize(used_ + chunk);
        const ssize_t n = ::read(iter_.get(), bytes_.data() + used_, chunk);
        if (n > 0) {
            used_ += static_cast<std::size_t>(n);
            if (auto parsed = parse(); !parsed)
                return parsed.error();
        } else if (n == 0) {
            if (used_ != 0)
                return Error{EPROTO, "task iterator ended in the middle of a record (" +
                                         std::to_string(used_) + " bytes left)"};
            iter_.reset();
            return true;
        } else if (errno != EINTR && errno != EAGAIN) {
            // EAGAIN: the kernel visited a million tasks without output and yields; read on.
            // Not failure(): a read runs on PendingTaskLister's thread, and libbpf's messages
            // are the loop's (no program is loaded here).
            return Error{errno, "read the task iterator: " +
                                    std::generic_category().message(errno)};
        }
        if (monotonic_ns() / 1000 >= deadline_usec)
            return false;
    }
}

Result<void> PendingTaskTracker::Walk::parse()
{
    // Records: a header, then nr_frames frames of FRAME_TEXT_LEN bytes. The kernel's words are
    // checked like any other input.
    std::size_t off = 0;
    while (used_ - off >= sizeof(pending_task_record)) {
        pending_task_record rec;
        std::memcpy(&rec, bytes_.data() + off, sizeof rec);
        if (rec.nr_frames > MAX_FRAMES)
            return Error{EPROTO, "task iterator returned a record of tid " +
                                     std::to_string(rec.tid) + " with " +
                                     std::to_string(rec.nr_frames) + " frames (at most " +
                                     std::to_string(MAX_FRAMES) + ")"};
        if (rec.tid == 0) { // a marker (pending_tasks.h): it only ended a read early
            if (rec.nr_frames != 0)
                return Error{EPROTO, "task iterator returned a marker with " +
                                         std::to_string(rec.nr_frames) + " frames"};
            off += sizeof rec;
            continue;
        }
        const std::size_t frames_size = std::size_t{rec.nr_frames} * FRAME_TEXT_LEN;
        if (used_ - off - sizeof rec < frames_size)
            break; // its frames come with the next read
        const char* frames = reinterpret_cast<const char*>(bytes_.data() + off + sizeof rec);
        if (kept_ && !kept_->contains(static_cast<pid_t>(rec.tid))) {
            off += sizeof rec + frames_size;
            continue;
        }
        TrackedTask task = to_tracked_task(rec);
        for (std::uint32_t i = 0; i < rec.nr_frames; i++)
            task.frames.push_back(text_of(frames + i * FRAME_TEXT_LEN, FRAME_TEXT_LEN));
        off += sizeof rec + frames_size;
        tasks_.push_back(std::move(task));
    }
    std::memmove(bytes_.data(), bytes_.data() + off, used_ - off);
    used_ -= off;
    return {};
}

Result<std::vector<TrackedTask>> PendingTaskTracker::list(const StackSelection& stacks) const
{
    auto w = walk(stacks);
    if (!w)
        return w.error();
    for (;;) {
        auto ended = w->read_until(0);
        if (!ended)
            return ended.error();
        if (*ended)
            return w->take();
    }
}

} // namespace livepatchd
