// SPDX-License-Identifier: GPL-2.0-only
//
// TaskSignaller and RemediationExecutor on real child processes: stop and resume, a pid whose
// thread start time does not match is never signalled, a multi-threaded process is stopped by
// its blocked thread's start time (not its leader's), a record that cannot be written means no
// SIGSTOP and one that cannot be removed is not forgotten, every exit path of the executor
// continues what it holds, and recover_stopped() continues what a crashed livepatchd left
// stopped even from a damaged stopped.json.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/clock.hpp"
#include "common/loop_activity.hpp"
#include "event_loop.hpp"
#include "remediation/remediation_executor.hpp"
#include "remediation/task_facts.hpp"
#include "remediation/task_signaller.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using livepatchd::test::TempDir;
using namespace std::chrono_literals;

namespace {

ProcStat stat_of(const std::string& path)
{
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return parse_proc_stat(text.str()).value();
}

// A child process; with threads, a second thread whose tid is worker.
struct Child {
    pid_t pid;
    pid_t worker = 0;
    explicit Child(bool threads = false)
    {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid = fork();
        if (pid == 0) {
            close(fds[0]);
            pid_t tid = 0;
            if (threads) {
                std::thread t([&] {
                    tid = static_cast<pid_t>(syscall(SYS_gettid));
                    (void)!write(fds[1], &tid, sizeof tid);
                    for (;;)
                        pause();
                });
                t.detach();
            } else {
                (void)!write(fds[1], &tid, sizeof tid);
            }
            for (;;)
                pause();
        }
        close(fds[1]);
        REQUIRE(read(fds[0], &worker, sizeof worker) == sizeof worker);
        close(fds[0]);
    }
    ~Child()
    {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    ProcStat stat() const { return stat_of("/proc/" + std::to_string(pid) + "/stat"); }
    ProcStat thread_stat(pid_t tid) const
    {
        return stat_of("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
    }
    // Waits until the kernel shows the child in that state.
    bool reaches(char state) const
    {
        for (int i = 0; i < 200; ++i) {
            if (stat().state == state)
                return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }
};

std::unique_ptr<StopRecords> dir_records(const TempDir& dir)
{
    auto records = DirStopRecords::open(dir.path);
    REQUIRE(records);
    return std::move(records).value();
}

// Records that fail on demand: a full disk.
struct FlakyRecords final : StopRecords {
    bool fail_add = false;
    bool fail_remove = false;
    std::vector<StopRecord> kept;
    Result<void> add(const StopRecord& r) override
    {
        if (fail_add)
            return Error{ENOSPC, "no space left"};
        kept.push_back(r);
        return {};
    }
    Result<void> remove(const StopRecord& r) override
    {
        if (fail_remove)
            return Error{ENOSPC, "no space left"};
        std::erase(kept, r);
        return {};
    }
};

// A Signaller whose every signal waits until the test lets it go (a SIGCONT to a process of
// 30,000 threads takes that long in the kernel), and says where and in which order they ran.
struct HeldUpSignaller final : Signaller {
    std::mutex mutex;
    std::condition_variable changed;
    bool let_go = false;
    bool waited_out = false; // a signal waited 2 s for let_go: it ran on the test's thread
    std::vector<std::string> calls;
    std::vector<std::thread::id> threads;
    void call(const std::string& what)
    {
        std::unique_lock lock(mutex);
        calls.push_back(what);
        threads.push_back(std::this_thread::get_id());
        if (!changed.wait_for(lock, 2s, [this] { return let_go; }))
            waited_out = true;
    }
    void release()
    {
        {
            std::lock_guard lock(mutex);
            let_go = true;
        }
        changed.notify_all();
    }
    int failing_stops = 0; // the next ones fail, as for a process gone meanwhile
    Result<std::uint64_t> stop(pid_t pid, pid_t, std::uint64_t) override
    {
        call("stop " + std::to_string(pid));
        std::lock_guard lock(mutex);
        if (failing_stops > 0) {
            --failing_stops;
            return Error{ESRCH, "process " + std::to_string(pid) + " is gone"};
        }
        return monotonic_usec();
    }
    void hold_up()
    {
        std::lock_guard lock(mutex);
        let_go = false;
        calls.clear();
    }
    // Waits until a signal is under way (held up): the calls so far.
    std::size_t calls_made()
    {
        std::lock_guard lock(mutex);
        return calls.size();
    }
    Result<void> resume(pid_t pid) override
    {
        call("resume " + std::to_string(pid));
        return {};
    }
    bool forget_resumed() override { return true; }
};

// A Signaller whose SIGSTOP returns late, as kill() does while the wakeups it started hold
// every CPU: it says when it "sent" the signal, and when the SIGCONT came.
struct LateReturningSignaller final : Signaller {
    std::chrono::milliseconds late;
    // Written on the executor's thread, read by the test once they are set.
    std::atomic<std::uint64_t> sent_usec = 0, resumed_usec = 0;
    explicit LateReturningSignaller(std::chrono::milliseconds l) : late(l) {}
    Result<std::uint64_t> stop(pid_t, pid_t, std::uint64_t) override
    {
        sent_usec = monotonic_usec();
        std::this_thread::sleep_for(late);
        return sent_usec.load();
    }
    Result<void> resume(pid_t) override
    {
        resumed_usec = monotonic_usec();
        return {};
    }
    bool forget_resumed() override { return true; }
};

// A Signaller that notes when each process's SIGSTOP and SIGCONT were sent.
struct TimesSignaller final : Signaller {
    std::mutex mutex;
    std::map<pid_t, std::pair<std::uint64_t, std::uint64_t>> sent_resumed; // under mutex
    Result<std::uint64_t> stop(pid_t pid, pid_t, std::uint64_t) override
    {
        std::lock_guard lock(mutex);
        return sent_resumed[pid].first = monotonic_usec();
    }
    Result<void> resume(pid_t pid) override
    {
        std::lock_guard lock(mutex);
        sent_resumed[pid].second = monotonic_usec();
        return {};
    }
    bool forget_resumed() override { return true; }
    std::pair<std::uint64_t, std::uint64_t> times(pid_t pid)
    {
        std::lock_guard lock(mutex);
        return sent_resumed[pid];
    }
};

std::string records_in(const TempDir& dir)
{
    std::string names;
    for (const auto& e : std::filesystem::directory_iterator(dir.path / "stopped"))
        names += e.path().filename().string() + " ";
    return names;
}

} // namespace

TEST_CASE("stop, then resume; the record is one file, gone after the SIGCONT")
{
    TempDir dir;
    Child child;
    TaskSignaller signaller(dir_records(dir));
    REQUIRE(child.reaches('S'));
    REQUIRE(signaller.stop(child.pid, child.pid, child.stat().start_time));
    CHECK(child.reaches('T'));
    CHECK(records_in(dir) ==
          std::to_string(child.pid) + "." + std::to_string(child.stat().start_time) + " ");
    REQUIRE(signaller.resume(child.pid));
    CHECK(child.reaches('S'));
    CHECK(records_in(dir).empty());
}

TEST_CASE("a thread whose start time differs is another task: never signalled")
{
    TempDir dir;
    Child child;
    TaskSignaller signaller(dir_records(dir));
    REQUIRE(child.reaches('S'));
    auto refused = signaller.stop(child.pid, child.pid, child.stat().start_time + 1);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().errnum == ESRCH);
    CHECK(child.stat().state == 'S');
    CHECK_FALSE(signaller.stop(1, 1, 0)); // never PID 1
    CHECK(records_in(dir).empty());
}

TEST_CASE("a multi-threaded process is stopped by its blocked thread's own start time")
{
    // Issue 17: the ladder reads the blocked *thread's* start time; comparing it with the
    // leader's made the stop rung refuse every multi-threaded process.
    TempDir dir;
    Child child(true);
    TaskSignaller signaller(dir_records(dir));
    REQUIRE(child.worker > 0);
    REQUIRE(child.reaches('S'));
    const std::uint64_t worker_start = child.thread_stat(child.worker).start_time;
    auto stopped = signaller.stop(child.pid, child.worker, worker_start);
    REQUIRE_MESSAGE(stopped, stopped.error().message);
    CHECK(child.reaches('T'));
    REQUIRE(signaller.resume(child.pid));
    CHECK(child.reaches('S'));
}

TEST_CASE("a full disk: no record, no SIGSTOP; a record not removed is not forgotten")
{
    Child child;
    REQUIRE(child.reaches('S'));
    auto owned = std::make_unique<FlakyRecords>();
    FlakyRecords& records = *owned;
    TaskSignaller signaller(std::move(owned));

    records.fail_add = true;
    auto refused = signaller.stop(child.pid, child.pid, child.stat().start_time);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().errnum == ENOSPC);
    std::this_thread::sleep_for(50ms);
    CHECK(child.stat().state == 'S');

    records.fail_add = false;
    REQUIRE(signaller.stop(child.pid, child.pid, child.stat().start_time));
    REQUIRE(child.reaches('T'));
    records.fail_remove = true;
    auto resumed = signaller.resume(child.pid);
    CHECK_FALSE(resumed); // said loudly
    CHECK(child.reaches('S')); // but continued
    CHECK(records.kept.size() == 1);
    CHECK_FALSE(signaller.forget_resumed());
    records.fail_remove = false;
    CHECK(signaller.forget_resumed());
    CHECK(records.kept.empty());
}

TEST_CASE("the executor's signals are sent from a thread of its own, in order")
{
    sd_event* event = nullptr;
    REQUIRE(sd_event_new(&event) >= 0);
    std::unique_ptr<sd_event, decltype(&sd_event_unref)> owned_event(event, sd_event_unref);
    HeldUpSignaller signaller;
    std::vector<std::string> errors;
    const auto report = [&](const Error& e) { errors.push_back(e.message); };
    // A hold long enough that the second stop below is still held when flush() returns.
    RemediationExecutor executor(event, signaller, 500ms, report);
    int stopped = 0;

    // The loop's call returns while the SIGSTOP is still under way.
    REQUIRE(executor.stop_for_a_moment(4242, 4243, 1, [&](const Result<std::uint64_t>& r) {
        CHECK(r);
        ++stopped;
    }));
    CHECK(executor.stop_for_a_moment(4242, 4243, 1, nullptr).error().errnum == EALREADY);
    signaller.release();
    for (int i = 0; i < 100 && (stopped == 0 || executor.holding() > 0); ++i)
        (void)sd_event_run(event, 20'000);
    CHECK(stopped == 1);
    CHECK(executor.holding() == 0);
    executor.flush();
    CHECK_FALSE(signaller.waited_out);
    CHECK(signaller.calls == std::vector<std::string>{"stop 4242", "resume 4242"});
    for (const auto& id : signaller.threads)
        CHECK(id != std::this_thread::get_id());

    // resume_all() while a SIGSTOP is under way: its SIGCONT comes after it.
    signaller.hold_up();
    REQUIRE(executor.stop_for_a_moment(4244, 4244, 1, nullptr));
    for (int i = 0; i < 200 && signaller.calls_made() == 0; ++i)
        std::this_thread::sleep_for(10ms);
    executor.resume_all();
    signaller.release();
    executor.flush();
    CHECK(signaller.calls == std::vector<std::string>{"stop 4244", "resume 4244"});

    // A stop of the same process again before the first one's SIGSTOP is done, and that one
    // fails: its result is not taken for the second's, which is held and continued.
    signaller.hold_up();
    signaller.failing_stops = 1;
    std::vector<bool> outcomes;
    const auto note = [&](const Result<std::uint64_t>& r) { outcomes.push_back(r.ok()); };
    REQUIRE(executor.stop_for_a_moment(4250, 4250, 1, note));
    for (int i = 0; i < 200 && signaller.calls_made() == 0; ++i)
        std::this_thread::sleep_for(10ms);
    executor.resume_all();
    REQUIRE(executor.stop_for_a_moment(4250, 4250, 1, note));
    signaller.release();
    executor.flush();
    // The second's outcome comes with its SIGCONT.
    CHECK(outcomes == std::vector<bool>{false});
    CHECK(executor.holding() == 1);
    for (int i = 0; i < 100 && executor.holding() > 0; ++i)
        (void)sd_event_run(event, 20'000);
    executor.flush();
    CHECK(outcomes == std::vector<bool>{false, true});
    CHECK(signaller.calls ==
          std::vector<std::string>{"stop 4250", "resume 4250", "stop 4250", "resume 4250"});
    CHECK_FALSE(signaller.waited_out);
    for (const auto& id : signaller.threads)
        CHECK(id != std::this_thread::get_id());
    CHECK(errors.empty());
}

TEST_CASE("a hold counts from the SIGSTOP's sending, not from the stop call's late return")
{
    sd_event* event = nullptr;
    REQUIRE(sd_event_new(&event) >= 0);
    std::unique_ptr<sd_event, decltype(&sd_event_unref)> owned_event(event, sd_event_unref);
    // The stop returns 400 ms after its SIGSTOP; the hold is 200 ms: the SIGCONT is due as soon
    // as the loop hears of the SIGSTOP, not 200 ms after that (600 ms after the SIGSTOP).
    LateReturningSignaller signaller(400ms);
    RemediationExecutor executor(event, signaller, 200ms, nullptr);
    REQUIRE(executor.stop_for_a_moment(4242, 4242, 1, nullptr));
    for (int i = 0; i < 200 && executor.holding() > 0; ++i)
        (void)sd_event_run(event, 20'000);
    executor.flush();
    REQUIRE(signaller.resumed_usec != 0);
    const std::uint64_t held_ms = (signaller.resumed_usec - signaller.sent_usec) / 1000;
    CHECK(held_ms >= 400);
    CHECK(held_ms < 550);
}

// Says the loop is busy, as Service::run does while it dispatches, until destroyed.
struct BusyLoop {
    BusyLoop() { loop_busy = true; }
    BusyLoop(const BusyLoop&) = delete;
    BusyLoop& operator=(const BusyLoop&) = delete;
    ~BusyLoop() { loop_busy = false; }
};

TEST_CASE("SIGSTOPs leave while the loop waits in its poll, not during a dispatch")
{
    // A SIGSTOP to thousands of threads keeps every CPU busy for a while (the first receiver
    // wakes them all with interrupts off): sent while the loop is inside a dispatch (the stop
    // round's, or any other), that dispatch would last as long. A round stops several.
    EventLoop loop;
    sd_event* event = loop.event;
    TimesSignaller signaller;
    RemediationExecutor executor(event, signaller, 100ms, nullptr);
    std::uint64_t idle = 0;
    {
        BusyLoop busy;
        REQUIRE(executor.stop_for_a_moment(4242, 4242, 1, nullptr));
        REQUIRE(executor.stop_for_a_moment(4243, 4243, 1, nullptr));
        executor.tidy(); // as a tick does meanwhile
        std::this_thread::sleep_for(150ms); // the dispatch that asked goes on
        CHECK(signaller.times(4242).first == 0);
        CHECK(signaller.times(4243).first == 0);
        idle = monotonic_usec();
    } // the loop waits in its poll
    for (int i = 0; i < 100 && signaller.times(4243).first == 0; ++i)
        std::this_thread::sleep_for(5ms);
    for (const pid_t pid : {4242, 4243}) {
        CHECK(signaller.times(pid).first >= idle);
        CHECK(signaller.times(pid).first < idle + 100'000);
    }
    executor.resume_all();
    executor.flush();
}

TEST_CASE("a SIGSTOP waits until the loop heard of the signals before it")
{
    // A hold's SIGCONT wakes the loop for its continuation; a SIGSTOP right behind it must not
    // take the instant before the woken loop says it is busy: the loop would run that
    // continuation inside the SIGSTOP's storm.
    EventLoop loop;
    sd_event* event = loop.event;
    TimesSignaller signaller;
    RemediationExecutor executor(event, signaller, 10ms, nullptr);
    REQUIRE(executor.stop_for_a_moment(4242, 4242, 1, nullptr));
    for (int i = 0; i < 100 && signaller.times(4242).second == 0; ++i)
        std::this_thread::sleep_for(5ms);
    REQUIRE(signaller.times(4242).second != 0);
    std::this_thread::sleep_for(100ms); // the SIGCONT's wait is over: the loop was woken
    REQUIRE(executor.stop_for_a_moment(4243, 4243, 1, nullptr));
    std::this_thread::sleep_for(100ms); // the loop has not run yet
    CHECK(signaller.times(4243).first == 0);
    const std::uint64_t heard = monotonic_usec();
    CHECK(sd_event_run(event, 0) > 0); // the first hold's end
    for (int i = 0; i < 100 && signaller.times(4243).first == 0; ++i)
        std::this_thread::sleep_for(5ms);
    CHECK(signaller.times(4243).first >= heard);
    executor.resume_all();
    executor.flush();
}

TEST_CASE("a loop that never waits keeps a SIGSTOP 500 ms at most; an ended hold sends none")
{
    EventLoop loop;
    sd_event* event = loop.event;
    TimesSignaller signaller;
    RemediationExecutor executor(event, signaller, 100ms, nullptr);
    BusyLoop busy;
    const std::uint64_t asked = monotonic_usec();
    REQUIRE(executor.stop_for_a_moment(4242, 4242, 1, nullptr));
    for (int i = 0; i < 200 && signaller.times(4242).first == 0; ++i)
        std::this_thread::sleep_for(5ms);
    CHECK(signaller.times(4242).first >= asked + 500'000);
    CHECK(signaller.times(4242).first < asked + 800'000);
    executor.resume_all(); // its SIGCONT, due later, would end the next one's wait
    executor.flush();

    // SIGTERM (resume_all) while a SIGSTOP waits for the loop: it is not sent at all.
    std::vector<bool> outcomes;
    REQUIRE(executor.stop_for_a_moment(4250, 4250, 1, [&](const Result<std::uint64_t>& r) {
        outcomes.push_back(r.ok());
    }));
    std::this_thread::sleep_for(50ms);
    executor.resume_all();
    executor.flush();
    CHECK(signaller.times(4250).first == 0);
    CHECK(outcomes == std::vector<bool>{false});
}

TEST_CASE("a hold ends on time while the loop is busy elsewhere")
{
    // The loop may be inside a long dispatch (or kept off the CPU by the stop's own storm of
    // wakeups) when a hold is due: the SIGCONT must not wait for it. Two processes stopped in
    // one round are held side by side, each for hold_ms from its own SIGSTOP.
    EventLoop loop;
    sd_event* event = loop.event;
    TimesSignaller signaller;
    RemediationExecutor executor(event, signaller, 100ms, nullptr);
    REQUIRE(executor.stop_for_a_moment(4242, 4242, 1, nullptr));
    REQUIRE(executor.stop_for_a_moment(4243, 4243, 1, nullptr));
    std::this_thread::sleep_for(400ms); // the loop does not run
    for (const pid_t pid : {4242, 4243}) {
        const auto [sent, resumed] = signaller.times(pid);
        REQUIRE(sent != 0);
        REQUIRE(resumed != 0);
        const std::uint64_t held_ms = (resumed - sent) / 1000;
        CHECK(held_ms >= 100);
        CHECK(held_ms < 180); // side by side: the second not after the first's end
    }
    // The loop hears of it when it runs again.
    for (int i = 0; i < 50 && executor.holding() > 0; ++i)
        (void)sd_event_run(event, 20'000);
    CHECK(executor.holding() == 0);
}

TEST_CASE("the loop hears of a SIGSTOP once its SIGCONT went out, not in the stop's storm")
{
    // The SIGSTOP leaves while the loop waits in its poll; woken at once to hear of it, the
    // loop would dispatch inside the storm of wakeups it sets off (387 ms at 30,000 threads
    // under emulation, s47). Its outcome comes with the SIGCONT's: the hold is over by then.
    EventLoop loop;
    sd_event* event = loop.event;
    TimesSignaller signaller;
    RemediationExecutor executor(event, signaller, 100ms, nullptr);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> heard; // (sent, resumed) when told
    REQUIRE(executor.stop_for_a_moment(4242, 4242, 1, [&](const Result<std::uint64_t>& r) {
        CHECK(r);
        heard.push_back(signaller.times(4242));
    }));
    for (int i = 0; i < 100 && (heard.empty() || executor.holding() > 0); ++i)
        (void)sd_event_run(event, 20'000);
    REQUIRE(heard.size() == 1);
    CHECK(heard[0].first != 0);
    CHECK(heard[0].second != 0); // continued before the loop heard of the stop
    CHECK(executor.holding() == 0);
}

TEST_CASE("the executor continues every held process: at its end, resume_all, destruction")
{
    TempDir dir;
    sd_event* event = nullptr;
    REQUIRE(sd_event_new(&event) >= 0);
    std::unique_ptr<sd_event, decltype(&sd_event_unref)> owned_event(event, sd_event_unref);
    TaskSignaller signaller(dir_records(dir));
    std::vector<std::string> errors;
    const auto report = [&](const Error& e) { errors.push_back(e.message); };
    Child a, b, c;
    REQUIRE((a.reaches('S') && b.reaches('S') && c.reaches('S')));

    SUBCASE("its end")
    {
        RemediationExecutor executor(event, signaller, 200ms, report);
        REQUIRE(executor.stop_for_a_moment(a.pid, a.pid, a.stat().start_time, nullptr));
        CHECK(a.reaches('T'));
        for (int i = 0; i < 50 && executor.holding() > 0; ++i)
            (void)sd_event_run(event, 20'000);
        CHECK(executor.holding() == 0);
        CHECK(a.reaches('S'));
    }
    SUBCASE("a hold counts from the SIGSTOP, not from the loop's wake-up")
    {
        // The dispatch that stops may have worked long since the loop woke (sd_event_now):
        // the hold must still last hold_ms, not end at the next turn.
        RemediationExecutor executor(event, signaller, 300ms, report);
        (void)sd_event_run(event, 0); // the loop's time is now
        std::this_thread::sleep_for(400ms);
        REQUIRE(executor.stop_for_a_moment(a.pid, a.pid, a.stat().start_time, nullptr));
        executor.flush(); // the SIGSTOP is sent, and its timer armed
        (void)sd_event_run(event, 0);
        CHECK(executor.holding() == 1);
        CHECK(a.reaches('T'));
        executor.resume_all();
        CHECK(a.reaches('S'));
    }
    SUBCASE("resume_all (SIGTERM) and the destructor (any other way out)")
    {
        {
            RemediationExecutor executor(event, signaller, 10s, report);
            REQUIRE(executor.stop_for_a_moment(a.pid, a.pid, a.stat().start_time, nullptr));
            REQUIRE(executor.stop_for_a_moment(b.pid, b.pid, b.stat().start_time, nullptr));
            REQUIRE((a.reaches('T') && b.reaches('T')));
            executor.resume_all();
            CHECK((a.reaches('S') && b.reaches('S')));
            REQUIRE(executor.stop_for_a_moment(c.pid, c.pid, c.stat().start_time, nullptr));
            REQUIRE(c.reaches('T'));
        }
        CHECK(c.reaches('S'));
    }
    CHECK(records_in(dir).empty());
    CHECK(errors.empty());
}

TEST_CASE("recover_stopped continues what a crashed livepatchd left stopped")
{
    TempDir dir;
    Child child, other;
    REQUIRE((child.reaches('S') && other.reaches('S')));
    {
        TaskSignaller crashed(dir_records(dir));
        REQUIRE(crashed.stop(child.pid, child.pid, child.stat().start_time));
        REQUIRE(child.reaches('T'));
    } // no resume: the process stays stopped, as after a kill -9 of livepatchd
    // A process its user stopped, recorded by nobody: never continued.
    kill(other.pid, SIGSTOP);
    REQUIRE(other.reaches('T'));

    SUBCASE("from the records")
    {
        dir.write("stopped/garbage", "");
        const Recovery recovery = recover_stopped(dir.path);
        CHECK(recovery.continued == std::vector<pid_t>{child.pid});
        CHECK(recovery.warnings.size() == 1); // the garbage entry
    }
    SUBCASE("from a damaged stopped.json of an older livepatchd")
    {
        std::filesystem::remove_all(dir.path / "stopped");
        dir.write("stopped.json", "{\"stopped\":[{\"pid\":" + std::to_string(child.pid) +
                                      ",\"start_time\":" +
                                      std::to_string(child.stat().start_time) + "},{\"pid\":12");
        const Recovery recovery = recover_stopped(dir.path);
        CHECK(recovery.continued == std::vector<pid_t>{child.pid});
        REQUIRE(!recovery.warnings.empty());
        CHECK(recovery.warnings[0].find("is damaged") != std::string::npos);
        CHECK(dir.exists("stopped.json.corrupt"));
        CHECK_FALSE(dir.exists("stopped.json"));
    }
    CHECK(child.reaches('S'));
    CHECK(other.stat().state == 'T');
    CHECK(records_in(dir).empty());
    kill(other.pid, SIGCONT);
}

namespace {
// Reads /proc/<pid>/task/<tid>/stat's state, or '?' once it is gone.
char thread_state(pid_t pid, pid_t tid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
    std::ostringstream text;
    text << in.rdbuf();
    const auto stat = parse_proc_stat(text.str());
    return stat ? stat->state : '?';
}

bool thread_reaches(pid_t pid, pid_t tid, char state)
{
    for (int i = 0; i < 200; ++i) {
        if (thread_state(pid, tid) == state)
            return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}
} // namespace

TEST_CASE("recover_stopped continues a process whose leader is a zombie")
{
    // The main thread has called pthread_exit(); a worker thread is the one that blocks.
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        std::thread([fd = fds[1]] {
            const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
            (void)!write(fd, &tid, sizeof tid);
            for (;;)
                pause();
        }).detach();
        // This thread alone, without pthread_exit()'s unwinding (doctest's handlers around
        // the test would catch it): the leader becomes a zombie, the worker runs on.
        syscall(SYS_exit, 0);
    }
    close(fds[1]);
    pid_t worker = 0;
    REQUIRE(read(fds[0], &worker, sizeof worker) == sizeof worker);
    close(fds[0]);
    REQUIRE(thread_reaches(pid, pid, 'Z'));
    REQUIRE(thread_reaches(pid, worker, 'S'));

    TempDir dir;
    {
        TaskSignaller crashed(dir_records(dir));
        REQUIRE(crashed.stop(pid, worker, stat_of("/proc/" + std::to_string(pid) + "/task/" +
                                                  std::to_string(worker) + "/stat")
                                              .start_time));
        REQUIRE(thread_reaches(pid, worker, 'T'));
    } // livepatchd killed during the hold
    const Recovery recovery = recover_stopped(dir.path);
    CHECK(recovery.continued == std::vector<pid_t>{pid});
    CHECK(thread_reaches(pid, worker, 'S'));
    CHECK(records_in(dir).empty());
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
}

TEST_CASE("recover_stopped continues a process whose SIGSTOP is still pending in D")
{
    // A vfork() parent sleeps uninterruptibly until its child exits: a SIGSTOP stays pending.
    const pid_t pid = fork();
    if (pid == 0) {
        if (vfork() == 0)
            for (;;)
                pause();
        for (;;)
            pause();
    }
    REQUIRE(thread_reaches(pid, pid, 'D'));
    pid_t vforked = 0;
    {
        std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
                               "/children");
        children >> vforked;
    }
    REQUIRE(vforked > 0);

    TempDir dir;
    {
        TaskSignaller crashed(dir_records(dir));
        REQUIRE(crashed.stop(pid, pid, stat_of("/proc/" + std::to_string(pid) + "/stat").start_time));
        std::this_thread::sleep_for(50ms);
        REQUIRE(thread_state(pid, pid) == 'D'); // the stop waits for the vfork to end
    }
    const Recovery recovery = recover_stopped(dir.path);
    CHECK(recovery.continued == std::vector<pid_t>{pid});
    CHECK(records_in(dir).empty());
    // The vfork ends: the parent runs on, and is not stopped by a SIGSTOP left pending.
    kill(vforked, SIGKILL);
    CHECK(thread_reaches(pid, pid, 'S'));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    waitpid(vforked, nullptr, WNOHANG);
}
