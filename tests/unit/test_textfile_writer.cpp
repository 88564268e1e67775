// SPDX-License-Identifier: GPL-2.0-only
//
// TextfileWriter: node_exporter never reads a part of the metrics file. A reader that reads
// the file while it is rewritten sees only whole versions; the file is readable to other users
// whatever the umask; no temporary is left, and none is named *.prom; a write that fails
// (here: RLIMIT_FSIZE, as a full disk would) leaves the previous file and is logged once until
// a write works again.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.hpp"
#include "metrics/textfile_writer.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using namespace livepatchd::metrics;
using livepatchd::test::TempDir;

namespace {

std::string read_file(const std::filesystem::path& path)
{
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> entries(const std::filesystem::path& dir)
{
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// A version of the file: n repeated, then a last line that says it is complete.
std::string version(unsigned n)
{
    std::string text;
    for (int i = 0; i < 4000; ++i)
        text += "livepatchd_test_line{n=\"" + std::to_string(n) + "\"} 1\n";
    return text + "# end " + std::to_string(n) + "\n";
}

struct Logged {
    std::vector<std::pair<LogLevel, std::string>> lines;
    TextfileWriter::Log log()
    {
        return [this](LogLevel level, const std::string& message) { lines.push_back({level, message}); };
    }
};

#if defined(__x86_64__)
constexpr std::uint32_t native_audit_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t native_audit_arch = AUDIT_ARCH_AARCH64;
#else
constexpr std::uint32_t native_audit_arch = 0; // the test says it cannot run
#endif

// Runs body in a child process in which any call of fsync(2), fdatasync(2), syncfs(2), sync(2)
// or sync_file_range(2) kills the process (seccomp, SIGSYS): the kernel itself says whether the
// code under test writes to disk, with no seam in that code. Returns the child's wait status.
int wait_status_without_disk_syncs(const std::function<bool()>& body)
{
    const pid_t pid = ::fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, native_audit_arch, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fsync, 5, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fdatasync, 4, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_syncfs, 3, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sync, 2, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sync_file_range, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        };
        sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) < 0)
            ::_exit(2);
        bool ok = false;
        try {
            ok = body();
        } catch (...) {
        }
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

} // namespace

TEST_CASE("a write makes no fsync: nothing on livepatchd's event loop waits for the disk")
{
    REQUIRE_MESSAGE(native_audit_arch != 0, "no seccomp audit arch for this machine in the test");
    TempDir dir;
    // The seam first: an fsync in the child kills it, so a write that syncs cannot pass.
    const int syncing = wait_status_without_disk_syncs([&] {
        UniqueFd fd(::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        return ::fsync(fd.get()) == 0;
    });
    INFO("the syncing child: "
         << (WIFEXITED(syncing) && WEXITSTATUS(syncing) == 2
                 ? std::string("could not install the seccomp filter (prctl)")
                 : "wait status " + std::to_string(syncing)));
    REQUIRE(WIFSIGNALED(syncing));
    CHECK(WTERMSIG(syncing) == SIGSYS);

    const auto file = dir.path / "livepatchd.prom";
    const int writing = wait_status_without_disk_syncs([&] {
        TextfileWriter writer(file, [](LogLevel, const std::string&) {});
        // The first write of a start, then one that replaces it.
        return writer.write("x 1\n") && writer.write("x 2\n");
    });
    const std::string how = WIFSIGNALED(writing)
                                ? "killed by signal " + std::to_string(WTERMSIG(writing)) +
                                      (WTERMSIG(writing) == SIGSYS ? " (SIGSYS: a disk sync)" : "")
                                : "exit status " + std::to_string(WEXITSTATUS(writing));
    INFO("the writing child: " << how);
    CHECK(WIFEXITED(writing));
    CHECK(WEXITSTATUS(writing) == 0);
    CHECK(read_file(file) == "x 2\n");
    CHECK(entries(dir.path) == std::vector<std::string>{"livepatchd.prom"});
}

TEST_CASE("a reader never sees a partial file while it is rewritten")
{
    TempDir dir;
    const auto file = dir.path / "livepatchd.prom";
    Logged logged;
    TextfileWriter writer(file, logged.log());
    REQUIRE(writer.write(version(0)));

    std::atomic<bool> done = false;
    std::atomic<unsigned> reads = 0, torn = 0;
    std::thread reader([&] {
        while (!done) {
            const std::string text = read_file(file);
            ++reads;
            // Whole: it ends with its own end line, and every line is of that version.
            const auto end = text.rfind("# end ");
            if (end == std::string::npos || !text.ends_with("\n")) {
                ++torn;
                continue;
            }
            const std::string n = text.substr(end + 6, text.size() - end - 7);
            if (text != version(static_cast<unsigned>(std::stoul(n))))
                ++torn;
        }
    });
    for (unsigned n = 1; n <= 200; ++n)
        REQUIRE(writer.write(version(n)));
    done = true;
    reader.join();
    CHECK(reads > 0);
    CHECK(torn == 0);
    CHECK(read_file(file) == version(200));
    CHECK(entries(dir.path) == std::vector<std::string>{"livepatchd.prom"});
    CHECK(logged.lines.empty());
}

TEST_CASE("the file is readable to node_exporter's user whatever the umask")
{
    TempDir dir;
    const auto file = dir.path / "livepatchd.prom";
    const mode_t old = ::umask(0077); // livepatchd.service's UMask=
    TextfileWriter writer(file, Logged{}.log());
    const auto written = writer.write("x 1\n");
    ::umask(old);
    REQUIRE(written);
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
}

TEST_CASE("a failing write leaves the old file, no temporary, and is logged once until it works")
{
    TempDir dir;
    const auto file = dir.path / "livepatchd.prom";
    Logged logged;
    TextfileWriter writer(file, logged.log());
    REQUIRE(writer.write("old 1\n"));

    // Files may grow to 1000 bytes only, as if the disk were full (root ignores modes).
    struct sigaction ignore {}, previous {};
    ignore.sa_handler = SIG_IGN;
    REQUIRE(::sigaction(SIGXFSZ, &ignore, &previous) == 0);
    rlimit limit {}, saved {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    limit = saved;
    limit.rlim_cur = 1000;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
    const auto first = writer.write(version(1));
    const auto second = writer.write(version(2));
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &saved) == 0);
    REQUIRE(::sigaction(SIGXFSZ, &previous, nullptr) == 0);

    REQUIRE(!first);
    CHECK(first.error().errnum == EFBIG);
    CHECK(first.error().message == dir.path.string() + "/livepatchd.prom: cannot write: File too large");
    CHECK(!second);
    CHECK(read_file(file) == "old 1\n");
    CHECK(entries(dir.path) == std::vector<std::string>{"livepatchd.prom"});
    CHECK(writer.failures() == 2);
    REQUIRE(logged.lines.size() == 1);
    CHECK(logged.lines[0].first == LogLevel::warning);
    CHECK(logged.lines[0].second ==
          "cannot write the metrics file: " + dir.path.string() +
              "/livepatchd.prom: cannot write: File too large; it keeps its previous content "
              "until a write works (set metrics.textfile to \"\" to write none)");

    REQUIRE(writer.write("new 1\n"));
    CHECK(read_file(file) == "new 1\n");
    REQUIRE(logged.lines.size() == 2);
    CHECK(logged.lines[1].first == LogLevel::notice);
    CHECK(logged.lines[1].second == "the metrics file " + file.string() +
                                        " is written again after 2 failed write(s)");
}

TEST_CASE("a directory that does not exist is an error that names it, and creates nothing")
{
    TempDir dir;
    const auto file = dir.path / "node-exporter" / "livepatchd.prom";
    Logged logged;
    TextfileWriter writer(file, logged.log());
    const auto written = writer.write("x 1\n");
    REQUIRE(!written);
    CHECK(written.error().errnum == ENOENT);
    CHECK(written.error().message == (dir.path / "node-exporter").string() +
                                         ": cannot open the directory of the metrics file: No "
                                         "such file or directory");
    CHECK(entries(dir.path).empty());
    REQUIRE(logged.lines.size() == 1);
    // A host without node_exporter: a notice that says what to do, not a warning.
    CHECK(logged.lines[0].first == LogLevel::notice);
    CHECK(logged.lines[0].second ==
          "no metrics file: " + (dir.path / "node-exporter").string() +
              ": cannot open the directory of the metrics file: No such file or directory "
              "(install prometheus-node-exporter and restart livepatchd, or set metrics.textfile "
              "to \"\" to write none)");
    // The directory appears (node_exporter installed): the next write works.
    std::filesystem::create_directory(dir.path / "node-exporter");
    REQUIRE(writer.write("x 1\n"));
    CHECK(read_file(file) == "x 1\n");
}

TEST_CASE("temporaries a crash left beside the file are removed at the first write, only its own")
{
    TempDir dir;
    // A SIGKILL between the temporary's creation and its rename leaves these.
    dir.write(".#livepatchd.promAb3dE6gH", "livepatchd_running 1\n");
    dir.write(".#livepatchd.prom0123zzzz", "");
    // Not this writer's: another file's temporaries, other names, what is not a regular file.
    dir.write(".#other.promAb3dE6gH", "");
    dir.write(".#livepatchd.promAb3dE6gH9", "");
    dir.write(".#livepatchd.promAb3d-6gH", "");
    dir.write(".#livepatchd.prom", "");
    dir.write("node.prom", "node_x 1\n");
    std::filesystem::create_directory(dir.path / ".#livepatchd.promDirDirDi");
    dir.write("outside/target", "kept");
    std::filesystem::create_symlink(dir.path / "outside" / "target",
                                    dir.path / ".#livepatchd.promLinkLink");
    Logged logged;
    TextfileWriter writer(dir.path / "livepatchd.prom", logged.log());
    REQUIRE(writer.write("x 1\n"));
    CHECK(entries(dir.path) ==
          std::vector<std::string>{".#livepatchd.prom", ".#livepatchd.promAb3d-6gH",
                                   ".#livepatchd.promAb3dE6gH9", ".#livepatchd.promDirDirDi",
                                   ".#livepatchd.promLinkLink", ".#other.promAb3dE6gH",
                                   "livepatchd.prom", "node.prom", "outside"});
    CHECK(dir.read("outside/target") == "kept");
    REQUIRE(logged.lines.size() == 1);
    CHECK(logged.lines[0].first == LogLevel::notice);
    CHECK(logged.lines[0].second == "removed 2 temporary file(s) a crash left beside the metrics file " +
                                        (dir.path / "livepatchd.prom").string());

    // Only at the first write: what appears later is not this writer's to remove.
    dir.write(".#livepatchd.promLater123", "");
    REQUIRE(writer.write("x 2\n"));
    CHECK(dir.exists(".#livepatchd.promLater123"));
}

TEST_CASE("a symbolic link on the way to the file is refused: nothing is written where it points")
{
    TempDir dir;
    // /var/lib/prometheus is prometheus' own: that user can put a link in node-exporter's place.
    std::filesystem::create_directory(dir.path / "elsewhere");
    std::filesystem::create_directory_symlink(dir.path / "elsewhere", dir.path / "node-exporter");
    Logged logged;
    TextfileWriter writer(dir.path / "node-exporter" / "livepatchd.prom", logged.log());
    const auto written = writer.write("x 1\n");
    REQUIRE(!written);
    CHECK(written.error().errnum == ELOOP);
    const std::string message =
        (dir.path / "node-exporter").string() +
        ": is a symbolic link, which livepatchd does not follow to write the metrics file " +
        (dir.path / "node-exporter" / "livepatchd.prom").string() +
        " (its owner could point it anywhere): set metrics.textfile to a path without links";
    CHECK(written.error().message == message);
    CHECK(entries(dir.path / "elsewhere").empty());
    REQUIRE(logged.lines.size() == 1);
    CHECK(logged.lines[0].first == LogLevel::err);
    CHECK(logged.lines[0].second == "refusing to write the metrics file: " + message);

    // A link higher up is refused the same.
    std::filesystem::create_directories(dir.path / "real" / "node-exporter");
    std::filesystem::create_directory_symlink(dir.path / "real", dir.path / "lib");
    TextfileWriter deeper(dir.path / "lib" / "node-exporter" / "livepatchd.prom", logged.log());
    const auto through = deeper.write("x 1\n");
    REQUIRE(!through);
    CHECK(through.error().errnum == ELOOP);
    CHECK(through.error().message.starts_with((dir.path / "lib").string() + ": is a symbolic link"));
    CHECK(entries(dir.path / "real" / "node-exporter").empty());
}
