// SPDX-License-Identifier: GPL-2.0-only
#include "metrics/textfile_writer.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <utility>

#include "common/journal.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd::metrics {

namespace {

constexpr mode_t textfile_mode = 0644; // node_exporter runs as its own user

// The temporary's name: ".#<name>" and temp_suffix_size characters of temp_alphabet, as
// AtomicFile names its own.
constexpr std::string_view temp_prefix = ".#";
constexpr std::size_t temp_suffix_size = 8;
constexpr std::string_view temp_alphabet =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

Error system_error(const std::string& origin, std::string_view doing, int errnum)
{
    return Error{errnum, origin + ": " + std::string(doing) + ": " + std::strerror(errnum)};
}

std::string temp_suffix()
{
    unsigned char bytes[temp_suffix_size] = {};
    // A short read or an error only costs uniqueness, which O_EXCL checks anyway.
    if (::getrandom(bytes, sizeof bytes, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bytes)) {
        static unsigned counter;
        const unsigned long mix = static_cast<unsigned long>(::getpid()) * 2654435761u + ++counter;
        std::memcpy(bytes, &mix, std::min(sizeof bytes, sizeof mix));
    }
    std::string suffix;
    for (unsigned char byte : bytes)
        suffix += temp_alphabet[byte % temp_alphabet.size()];
    return suffix;
}

// The temporary, removed again unless it was renamed into place.
class Temporary {
public:
    Temporary(int dir_fd, std::string name) : dir_fd_(dir_fd), name_(std::move(name)) {}
    Temporary(const Temporary&) = delete;
    Temporary& operator=(const Temporary&) = delete;
    ~Temporary()
    {
        if (!name_.empty())
            (void)::unlinkat(dir_fd_, name_.c_str(), 0);
    }
    const std::string& name() const { return name_; }
    void renamed() { name_.clear(); }

private:
    int dir_fd_;
    std::string name_;
};

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
    const std::string directory = path_.parent_path().native();
    const std::string name = path_.filename().native();
    // Opened at each write: the directory may appear after livepatchd started (node_exporter
    // installed later), and a write is rare (a state change).
    UniqueFd dir(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir)
        return Error{errno, directory + ": cannot open the directory of the metrics file: " +
                                std::strerror(errno)};
    // Not AtomicFile: its commit() fsyncs the file and the directory, and this runs on the
    // event loop, up to ten times a second during a transition (the pending-task gauge), where
    // a slow disk would hold up the SIGCONT of a stopped task. Nothing needs this file to
    // survive a power loss: livepatchd rewrites it at every start. The rename alone keeps a
    // scrape from reading a part of it.
    UniqueFd fd;
    std::string temp_name;
    for (int attempt = 0; attempt < 100 && !fd; ++attempt) {
        temp_name = std::string(temp_prefix) + name + temp_suffix();
        fd.reset(::openat(dir.get(), temp_name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, textfile_mode));
        if (!fd && errno != EEXIST)
            return system_error(path_.native(), "cannot create a temporary file beside it",
                                errno);
    }
    if (!fd)
        return system_error(path_.native(), "cannot create a temporary file beside it", EEXIST);
    Temporary temporary(dir.get(), temp_name);
    // The service's UMask=0077 took the read bits off.
    if (::fchmod(fd.get(), textfile_mode) < 0)
        return system_error(path_.native(), "cannot make it readable to node_exporter", errno);
    for (std::string_view rest = content; !rest.empty();) {
        const ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return system_error(path_.native(), "cannot write", errno);
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::renameat(dir.get(), temporary.name().c_str(), dir.get(), name.c_str()) < 0)
        return system_error(path_.native(), "cannot put in place", errno);
    temporary.renamed();
    return {};
}

Result<void> TextfileWriter::write(std::string_view content)
{
    auto written = write_once(content);
    if (!written) {
        ++failures_;
        // No directory is what a host without node_exporter looks like at the default path: a
        // notice, not a warning, at every start of such a host.
        if (!failing_ && written.error().errnum == ENOENT)
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
