// SPDX-License-Identifier: GPL-2.0-only
#include "metrics/textfile_writer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "common/atomic_file.hpp"
#include "common/journal.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd::metrics {

namespace {

constexpr mode_t textfile_mode = 0644; // node_exporter runs as its own user

Error system_error(const std::string& origin, std::string_view doing, int errnum)
{
    return Error{errnum, origin + ": " + std::string(doing) + ": " + std::strerror(errnum)};
}

// The temporaries of name that a crash left in the directory (a SIGKILL, the OOM killer or
// the watchdog between their creation and their rename): removed, or they stay in
// node_exporter's directory for good. Only regular files with exactly the names this writer
// gives (the directory is prometheus', its other entries are not ours); unlinkat() removes
// the name, never what a link points to. Returns how many it removed; a directory it cannot
// read is the write's to report.
unsigned remove_stale_temporaries(int dir_fd, std::string_view name)
{
    // fdopendir() takes over the fd it is given, so give it its own.
    const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd), ::closedir);
    if (!dir) {
        ::close(fd);
        return 0;
    }
    unsigned removed = 0;
    while (const dirent* entry = ::readdir(dir.get())) {
        if (!is_temp_file_of(entry->d_name, name))
            continue;
        struct stat st {};
        if (::fstatat(dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && ::unlinkat(dir_fd, entry->d_name, 0) == 0)
            ++removed;
    }
    return removed;
}

// The directory of file, opened from / one component at a time with O_NOFOLLOW: none may be
// a symbolic link. The default directory is in /var/lib/prometheus, which prometheus owns on
// Debian: that user could put a link to anywhere in node-exporter's place, and root would
// write there. (openat2()'s RESOLVE_NO_SYMLINKS does the same in one call, from 5.6 on; this
// works on every kernel and names the link it found.)
Result<UniqueFd> open_directory_without_links(const std::filesystem::path& file)
{
    const std::filesystem::path directory = file.parent_path();
    UniqueFd at(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!at)
        return system_error("/", "cannot open the root directory", errno);
    std::filesystem::path walked = "/";
    for (const std::filesystem::path& part : directory.relative_path()) {
        if (part.empty())
            continue;
        walked /= part;
        UniqueFd next(
            ::openat(at.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) {
            const int errnum = errno;
            struct stat st {};
            if ((errnum == ELOOP || errnum == ENOTDIR) &&
                ::fstatat(at.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                return Error{ELOOP, walked.native() +
                                        ": is a symbolic link, which livepatchd does not follow "
                                        "to write the metrics file " +
                                        file.native() +
                                        " (its owner could point it anywhere): set "
                                        "metrics.textfile to a path without links"};
            return system_error(directory.native(),
                                "cannot open the directory of the metrics file", errnum);
        }
        at = std::move(next);
    }
    return at;
}

} // namespace

TextfileWriter::TextfileWriter(std::filesystem::path path, Log log)
    : path_(std::move(path)), log_(std::move(log))
{
    if (!log_)
        log_ = [file = path_.native()](LogLevel level, const std::string& message) {
            journal::log(level, message, {{"METRICS_TEXTFILE", file}});
        };
}

Result<void> TextfileWriter::write_once(std::string_view content)
{
    const std::string name = path_.filename().native();
    // Opened at each write: the directory may appear after livepatchd started (node_exporter
    // installed later), and a write is rare (a state change).
    auto opened = open_directory_without_links(path_);
    if (!opened)
        return std::move(opened).error();
    const UniqueFd dir = std::move(opened).value();
    // Once, at the first write that finds the directory (livepatchd's start, or the first
    // write after node_exporter was installed): later temporaries would be this process' own.
    if (!stale_temporaries_removed_) {
        stale_temporaries_removed_ = true;
        if (const unsigned removed = remove_stale_temporaries(dir.get(), name); removed > 0)
            log_(LogLevel::notice, "removed " + std::to_string(removed) +
                                       " temporary file(s) a crash left beside the metrics file " +
                                       path_.native());
    }
    // Unsynced: this runs up to ten times a second during a transition (the pending-task
    // gauge). Nothing needs this file to survive a power loss: livepatchd rewrites it at every
    // start.
    // The rename alone keeps a scrape from reading a part of it.
    auto file = AtomicFile::create(dir.get(), path_.parent_path().native(), name, textfile_mode);
    if (!file)
        return std::move(file).error();
    // The service's UMask=0077 took the read bits off.
    if (::fchmod(file->fd(), textfile_mode) < 0)
        return system_error(path_.native(), "cannot make it readable to node_exporter", errno);
    if (auto r = file->write(content); !r)
        return r;
    return file->commit(Overwrite::replace, Durability::unsynced);
}

Result<void> TextfileWriter::write(std::string_view content)
{
    auto written = write_once(content);
    if (!written) {
        ++failures_;
        // A link on the way is refused (open_directory_without_links()): an error, as it
        // takes the admin to fix it. No directory is what a host without node_exporter looks
        // like at the default path: a notice, not a warning, at every start of such a host.
        if (!failing_ && written.error().errnum == ELOOP)
            log_(LogLevel::err, "refusing to write the metrics file: " + written.error().message);
        else if (!failing_ && written.error().errnum == ENOENT)
            log_(LogLevel::notice,
                 "no metrics file: " + written.error().message +
                     " (install prometheus-node-exporter and restart livepatchd, or set "
                     "metrics.textfile to \"\" to write none)");
        else if (!failing_)
            log_(LogLevel::warning,
                 "cannot write the metrics file: " + written.error().message +
                     "; it keeps its previous content until a write works (set "
                     "metrics.textfile to \"\" to write none)");
        failing_ = true;
        return written;
    }
    if (failing_)
        log_(LogLevel::notice, "the metrics file " + path_.native() +
                                   " is written again after " + std::to_string(failures_) +
                                   " failed write(s)");
    failing_ = false;
    return {};
}

} // namespace livepatchd::metrics
