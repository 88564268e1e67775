// SPDX-License-Identifier: GPL-2.0-only
//
// LoopPriority: the event loop's thread is SCHED_FIFO 1 while a transition runs (for a busy
// stretch's first 20 ms only) and ordinary after, never hands real-time to a thread it starts,
// and, refused, stays ordinary. Each case runs on a thread of its own (the policy is a
// thread's).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "common/loop_priority.hpp"

using namespace livepatchd;

namespace {

void on_a_thread(const std::function<void()>& body)
{
    std::thread(body).join();
}

int policy() { return ::sched_getscheduler(0); }
constexpr int lowered = SCHED_OTHER | SCHED_RESET_ON_FORK; // the flag is never cleared

// Whether a thread may be made real-time here (CAP_SYS_NICE, or an RLIMIT_RTPRIO, and no
// real-time group scheduling without a budget): asked of the kernel on a thread of its own.
bool realtime_allowed()
{
    bool allowed = false;
    on_a_thread([&] {
        const sched_param fifo{.sched_priority = LoopPriority::priority};
        allowed = ::sched_setscheduler(0, SCHED_FIFO, &fifo) == 0;
    });
    return allowed;
}

// body on a thread of its own where real-time is allowed; elsewhere a message instead.
void on_a_realtime_capable_thread(const std::function<void()>& body)
{
    if (!realtime_allowed()) {
        MESSAGE("real-time refused here: see the unprivileged cases below");
        return;
    }
    on_a_thread(body);
}

int priority()
{
    sched_param param{};
    return ::sched_getparam(0, &param) == 0 ? param.sched_priority : -1;
}

// As the unit runs livepatchd (LimitRTPRIO=2, no CAP_SYS_NICE): a child process as nobody
// with RLIMIT_RTPRIO `rtprio`. Returns the number of the first check that failed, 0, or 77
// when it cannot be set up (raising the limit takes CAP_SYS_RESOURCE, becoming nobody
// CAP_SETUID: not run as root, or in a container that does not give them).
constexpr int cannot_set_up = 77;
int as_the_unit(rlim_t rtprio, const std::function<int()>& body)
{
    const pid_t child = ::fork();
    if (child == 0) {
        const rlimit limit{rtprio, rtprio};
        if (::setrlimit(RLIMIT_RTPRIO, &limit) != 0)
            ::_exit(cannot_set_up);
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(cannot_set_up);
        ::_exit(body());
    }
    int status = 0;
    if (child < 0 || ::waitpid(child, &status, 0) != child || !WIFEXITED(status))
        return 101;
    return WEXITSTATUS(status);
}

} // namespace

TEST_CASE("while a transition runs the loop is SCHED_FIFO 1, and ordinary again after")
{
    on_a_realtime_capable_thread([] {
        REQUIRE(::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 3) == 0);
        LoopPriority loop;
        loop.rested();
        CHECK_FALSE(loop.realtime());
        CHECK(policy() == SCHED_OTHER);
        loop.set_wanted(true);
        CHECK(loop.realtime());
        CHECK(policy() == (SCHED_FIFO | SCHED_RESET_ON_FORK));
        CHECK(priority() == LoopPriority::priority);
        loop.set_wanted(true); // every change the service learns of
        loop.rested();
        CHECK(policy() == (SCHED_FIFO | SCHED_RESET_ON_FORK));
        loop.set_wanted(false);
        CHECK_FALSE(loop.realtime());
        CHECK(policy() == lowered);
        CHECK(priority() == 0);
        CHECK(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())) == 3);
    });
}

TEST_CASE("a busy stretch is real-time for its first 20 ms only, until the loop sleeps again")
{
    on_a_realtime_capable_thread([] {
        LoopPriority loop;
        loop.set_wanted(true);
        REQUIRE(loop.realtime());
        loop.busy_for(LoopPriority::real_time_stretch_usec);
        CHECK(policy() == (SCHED_FIFO | SCHED_RESET_ON_FORK));
        // ListPendingTasks' slices, one idle turn after another, for seconds.
        loop.busy_for(LoopPriority::real_time_stretch_usec + 1);
        CHECK_FALSE(loop.realtime());
        CHECK(policy() == lowered);
        loop.busy_for(10 * LoopPriority::real_time_stretch_usec);
        CHECK(policy() == lowered);
        loop.rested(); // about to sleep in its poll: real-time again for the next wake-up
        CHECK(loop.realtime());
        CHECK(policy() == (SCHED_FIFO | SCHED_RESET_ON_FORK));
        // The transition ends during a long stretch: ordinary, and stays so when it rests.
        loop.busy_for(LoopPriority::real_time_stretch_usec + 1);
        loop.set_wanted(false);
        loop.rested();
        CHECK_FALSE(loop.realtime());
        CHECK(policy() == lowered);
    });
}

TEST_CASE("a thread the real-time loop starts is an ordinary one")
{
    on_a_realtime_capable_thread([] {
        LoopPriority loop;
        loop.set_wanted(true);
        REQUIRE(loop.realtime());
        int started = -1;
        std::thread([&] { started = policy(); }).join();
        CHECK(started == SCHED_OTHER);
        loop.set_wanted(false);
    });
}

TEST_CASE("as the unit runs it: its RLIMIT_RTPRIO suffices, without CAP_SYS_NICE")
{
    const int failed = as_the_unit(2, [] {
        LoopPriority loop;
        loop.set_wanted(true);
        if (!loop.realtime() || policy() != (SCHED_FIFO | SCHED_RESET_ON_FORK))
            return 1;
        loop.busy_for(LoopPriority::real_time_stretch_usec + 1);
        if (loop.realtime() || policy() != lowered)
            return 2;
        loop.rested();
        if (!loop.realtime() || policy() != (SCHED_FIFO | SCHED_RESET_ON_FORK))
            return 3;
        loop.set_wanted(false);
        if (loop.realtime() || policy() != lowered)
            return 4;
        return 0;
    });
    if (failed == cannot_set_up)
        MESSAGE("cannot run as the unit here (CAP_SYS_RESOURCE, CAP_SETUID): "
                "tests/vm/cases/daemon-stall.sh does");
    else
        CHECK(failed == 0);
}

TEST_CASE("refused, the loop stays ordinary, in this transition and the next")
{
    const int failed = as_the_unit(0, [] {
        LoopPriority loop;
        for (int transition = 0; transition < 2; transition++) {
            loop.set_wanted(true);
            for (int tick = 0; tick < 3; tick++) {
                loop.rested();
                loop.set_wanted(true);
                if (loop.realtime() || policy() != SCHED_OTHER)
                    return 1 + transition;
            }
            loop.set_wanted(false);
            if (loop.realtime() || policy() != SCHED_OTHER)
                return 3 + transition;
        }
        return 0;
    });
    if (failed == cannot_set_up)
        MESSAGE("cannot run as the unit here (CAP_SETUID)");
    else
        CHECK(failed == 0);
}
