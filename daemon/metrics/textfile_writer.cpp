// SPDX-License-Identifier: GPL-2.0-only
#include "metrics/textfile_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/atomic_file.hpp"
#include "common/journal.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd::metrics {

namespace {

constexpr mode_t textfile_mode = 0644; // node_exporter runs as its own user

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
    auto file = AtomicFile::create(dir.get(), directory, name, textfile_mode);
    if (!file)
        return std::move(file).error();
    // The service's UMask=0077 took the read bits off.
    if (::fchmod(file->fd(), textfile_mode) < 0)
        return Error{errno, path_.native() + ": cannot make it readable to node_exporter: " +
                                std::strerror(errno)};
    if (auto written = file->write(content); !written)
        return written;
    return file->commit(Overwrite::replace);
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
