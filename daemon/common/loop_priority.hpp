// SPDX-License-Identifier: GPL-2.0-only
//
// LoopPriority: the event loop's thread as a real-time one (SCHED_FIFO, priority 1) while a
// transition runs. Then tens of thousands of threads may want the CPUs at once: lpshim's pass
// walks them, a SIGSTOP or SIGCONT wakes them all, and the scheduler places each woken ordinary
// thread ahead of an ordinary loop. With 30,000 pending tasks (two emulated CPUs) the loop
// waited 123 ms for a CPU inside one dispatch, and 350 ms between two. No ordinary thread
// preempts a real-time one, and a woken real-time thread takes the CPU from an ordinary one at
// its next preemption point. The loop sleeps in its poll when it has nothing to do and each
// dispatch is bounded, so it takes from the others no more CPU than it used as an ordinary
// thread, only sooner. SCHED_RESET_ON_FORK: a thread or process started from it meanwhile is
// an ordinary one. Refused (RLIMIT_RTPRIO 0 without CAP_SYS_NICE; RestrictRealtime=), the loop
// stays ordinary and the journal says so, once per transition.
#pragma once

namespace livepatchd {

class LoopPriority {
public:
    // On the loop's thread only; cheap when nothing changes (the tick calls it).
    void set_realtime(bool on) noexcept;
    bool realtime() const noexcept { return realtime_; }

private:
    bool realtime_ = false;
    bool refused_ = false; // asked in vain since the last set_realtime(false)
};

} // namespace livepatchd
