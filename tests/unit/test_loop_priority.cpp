// SPDX-License-Identifier: GPL-2.0-only
//
// LoopPriority: the event loop's thread is SCHED_FIFO 1 while a transition runs and ordinary
// after, never hands real-time to a thread it starts, and, refused, stays ordinary until the
// next transition asks again. Each case runs on a thread of its own (the policy is a thread's).
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

int priority()
{
    sched_param param{};
    return ::sched_getparam(0, &param) == 0 ? param.sched_priority : -1;
}

// As the unit runs livepatchd (LimitRTPRIO=1, no CAP_SYS_NICE): a child process as nobody
// with RLIMIT_RTPRIO `rtprio`. Returns the number of the first check that failed, 0, or 77
// when the limit cannot be had (raising it takes CAP_SYS_RESOURCE, which a container may not
// give).
constexpr int cannot_set_limit = 77;
int as_the_unit(rlim_t rtprio, const std::function<int()>& body)
{
    const pid_t child = ::fork();
    if (child == 0) {
        const rlimit limit{rtprio, rtprio};
        if (::setrlimit(RLIMIT_RTPRIO, &limit) != 0)
            ::_exit(cannot_set_limit);
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(100);
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
    if (::geteuid() != 0) {
        MESSAGE("not root: see the unprivileged case below");
        return;
    }
    on_a_thread([] {
        REQUIRE(::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 3) == 0);
        LoopPriority loop;
        CHECK_FALSE(loop.realtime());
        loop.set_realtime(false);
        CHECK(policy() == SCHED_OTHER);
        loop.set_realtime(true);
        CHECK(loop.realtime());
        CHECK(policy() == (SCHED_FIFO | SCHED_RESET_ON_FORK));
        CHECK(priority() == 1);
        loop.set_realtime(true); // every tick of the transition
        CHECK(policy() == (SCHED_FIFO | SCHED_RESET_ON_FORK));
        loop.set_realtime(false);
        CHECK_FALSE(loop.realtime());
        CHECK(policy() == SCHED_OTHER); // privileged: the flag is cleared too
        CHECK(priority() == 0);
        CHECK(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())) == 3);
    });
}

TEST_CASE("a thread the real-time loop starts is an ordinary one")
{
    if (::geteuid() != 0) {
        MESSAGE("not root: see the unprivileged case below");
        return;
    }
    on_a_thread([] {
        LoopPriority loop;
        loop.set_realtime(true);
        REQUIRE(loop.realtime());
        int started = -1;
        std::thread([&] { started = policy(); }).join();
        CHECK(started == SCHED_OTHER);
        loop.set_realtime(false);
    });
}

TEST_CASE("as the unit runs it: RLIMIT_RTPRIO 1 suffices, and lowering keeps the reset flag")
{
    const int failed = as_the_unit(1, [] {
        LoopPriority loop;
        loop.set_realtime(true);
        if (!loop.realtime() || policy() != (SCHED_FIFO | SCHED_RESET_ON_FORK))
            return 1;
        loop.set_realtime(false);
        // Without CAP_SYS_NICE the flag cannot be cleared: ordinary all the same.
        if (loop.realtime() || policy() != (SCHED_OTHER | SCHED_RESET_ON_FORK))
            return 2;
        return 0;
    });
    if (failed == cannot_set_limit)
        MESSAGE("RLIMIT_RTPRIO cannot be raised here: tests/vm/cases/daemon-stall.sh runs it so");
    else
        CHECK(failed == 0);
}

TEST_CASE("refused, the loop stays ordinary, in this transition and the next")
{
    const int failed = as_the_unit(0, [] {
        LoopPriority loop;
        for (int transition = 0; transition < 2; transition++) {
            for (int tick = 0; tick < 3; tick++) {
                loop.set_realtime(true);
                if (loop.realtime() || policy() != SCHED_OTHER)
                    return 1 + transition;
            }
            loop.set_realtime(false);
            if (loop.realtime() || policy() != SCHED_OTHER)
                return 3 + transition;
        }
        return 0;
    });
    REQUIRE(failed != cannot_set_limit); // lowering a limit is always allowed
    CHECK(failed == 0);
}
