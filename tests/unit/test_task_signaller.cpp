// SPDX-License-Identifier: GPL-2.0-only
//
// TaskSignaller on real child processes: stop and resume, a pid whose start time does not
// match is never signalled, and a new instance (after a crash) continues what an earlier one
// left stopped.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "task_facts.hpp"
#include "task_signaller.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using livepatchd::test::TempDir;

namespace {

struct Child {
    pid_t pid;
    Child() : pid(fork())
    {
        if (pid == 0) {
            pause();
            _exit(0);
        }
    }
    ~Child()
    {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    ProcStat stat() const
    {
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::ostringstream text;
        text << in.rdbuf();
        return parse_proc_stat(text.str()).value();
    }
    // Waits until the kernel shows the child in that state.
    bool reaches(char state) const
    {
        for (int i = 0; i < 200; ++i) {
            if (stat().state == state)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }
};

} // namespace

TEST_CASE("stop, then resume")
{
    TempDir dir;
    Child child;
    auto signaller = TaskSignaller::open(dir.path);
    REQUIRE(signaller);
    REQUIRE(child.reaches('S'));
    REQUIRE(signaller->stop(child.pid, child.stat().start_time));
    CHECK(child.reaches('T'));
    CHECK(dir.read("stopped.json").find(std::to_string(child.pid)) != std::string::npos);
    REQUIRE(signaller->resume(child.pid));
    CHECK(child.reaches('S'));
    CHECK(dir.read("stopped.json") == "{\"stopped\":[]}\n");
}

TEST_CASE("a pid whose start time differs is another process: never signalled")
{
    TempDir dir;
    Child child;
    auto signaller = TaskSignaller::open(dir.path);
    REQUIRE(signaller);
    REQUIRE(child.reaches('S'));
    auto refused = signaller->stop(child.pid, child.stat().start_time + 1);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().errnum == ESRCH);
    CHECK(child.stat().state == 'S');
    CHECK_FALSE(signaller->stop(1, 0)); // never PID 1
}

TEST_CASE("a new instance continues what a crashed one left stopped")
{
    TempDir dir;
    Child child;
    REQUIRE(child.reaches('S'));
    {
        auto crashed = TaskSignaller::open(dir.path);
        REQUIRE(crashed);
        REQUIRE(crashed->stop(child.pid, child.stat().start_time));
        REQUIRE(child.reaches('T'));
    } // no resume: the process stays stopped, as after a kill -9 of livepatchd
    auto next = TaskSignaller::open(dir.path);
    REQUIRE(next);
    auto continued = next->recover();
    REQUIRE(continued);
    CHECK(*continued == std::vector<pid_t>{child.pid});
    CHECK(child.reaches('S'));
    CHECK(dir.read("stopped.json") == "{\"stopped\":[]}\n");
}
