// SPDX-License-Identifier: GPL-2.0-only
//
// TextfileWriter: puts the metrics file in place for node_exporter's textfile collector, so
// that a scrape never reads a part of it: the text goes to a temporary in the same directory
// (".#<name>XXXXXX": not *.prom, so the collector skips it), readable by node_exporter's user
// (0644, whatever livepatchd's umask), renamed over the file. Not fsync()ed: it is written up to
// ten times a second, and livepatchd rewrites it at every start (docs/metrics.md says what a power
// loss leaves). A write that fails leaves the previous file as it was and no temporary; it is
// logged once, until a write works again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "config/config.hpp"

namespace livepatchd::metrics {

class TextfileWriter {
public:
    // What it has to say about failing and working again; the journal by default.
    using Log = std::function<void(LogLevel, const std::string&)>;

    // path: absolute, its directory existing when writes are made (metrics.textfile).
    explicit TextfileWriter(std::filesystem::path path, Log log = nullptr);

    // The whole of content as the file, or the error (which is also logged, see above).
    Result<void> write(std::string_view content);

    const std::filesystem::path& path() const { return path_; }
    // Writes that failed so far.
    std::uint64_t failures() const { return failures_; }

private:
    Result<void> write_once(std::string_view content);

    std::filesystem::path path_;
    Log log_;
    std::uint64_t failures_ = 0;
    bool failing_ = false; // the last write failed, and said so
    bool stale_temporaries_removed_ = false; // a crash's temporaries, at the first write
};

} // namespace livepatchd::metrics
