// SPDX-License-Identifier: GPL-2.0-only
//
// LoopPriority: the event loop's thread as a real-time one (SCHED_FIFO, priority 1) while a
// transition runs. Then tens of thousands of threads may want the CPUs at once: lpshim's pass
// walks them, a SIGSTOP or SIGCONT wakes them all, and the scheduler places each woken ordinary
// thread ahead of an ordinary loop. With 30,000 pending tasks (two emulated CPUs) the loop
// waited 123 ms for a CPU inside one dispatch, and 350 ms between two. No ordinary thread
// preempts a real-time one, and a woken real-time thread takes the CPU from an ordinary one at
// its next preemption point.
// Real-time only for a busy stretch's first real_time_stretch_usec: a loop that dispatches
// without sleeping in its poll (ListPendingTasks' slices of 30,000 tasks, for seconds, asked
// by any local user) is an ordinary thread past that, until it sleeps again, so that it never
// keeps a CPU from the ordinary threads bound to it (kworkers, ksoftirqd) for longer.
// The signals' thread runs above it (SCHED_FIFO 2): a hold's SIGCONT does not wait for a
// dispatch. SCHED_RESET_ON_FORK: a thread or process started from the loop meanwhile is an
// ordinary one. Refused (RLIMIT_RTPRIO 0 without CAP_SYS_NICE; RestrictRealtime=), the loop
// stays ordinary and the journal says so, once per transition.
#pragma once

#include <cstdint>

namespace livepatchd {

class LoopPriority {
public:
    static constexpr int priority = 1;
    static constexpr std::uint64_t real_time_stretch_usec = 20'000;

    // All on the loop's thread; each cheap when nothing changes.
    // Whether a transition runs (at every change the service learns of).
    void set_wanted(bool on) noexcept;
    // The loop is about to sleep in its poll: a busy stretch is over.
    void rested() noexcept;
    // The loop is about to dispatch, busy (not asleep in its poll) for busy_usec.
    void busy_for(std::uint64_t busy_usec) noexcept;
    bool realtime() const noexcept { return realtime_; }

private:
    void apply() noexcept;

    bool wanted_ = false;
    bool tired_ = false;          // past real_time_stretch_usec in this busy stretch
    bool realtime_ = false;       // what the kernel was last asked, successfully
    bool refused_ = false;        // asked in vain since the last set_wanted(false)
    bool cannot_lower_ = false;   // a lowering failed since the last transition began
};

} // namespace livepatchd
