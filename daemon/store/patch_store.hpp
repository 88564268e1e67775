// SPDX-License-Identifier: GPL-2.0-only
//
// PatchStore: the patch modules livepatchd keeps, so that it can apply them again at every boot
// whatever happens to the file the admin installed from.
//
//   <state>/patches/<name>.ko     the module, a checked copy (PatchFile); the commit point
//   <state>/patches/<name>.json   what the store recorded at install: time, SHA-256, source
//
// A .ko is in the store exactly when its name is; the .json beside it is written after it and
// rebuilt from the .ko when a crash came in between. Every change goes through a temporary
// file in the same directory, fsync, rename and a directory fsync (AtomicFile), so a crash
// leaves a patch either installed completely or not at all.
//
// The store is not thread-safe, and one process owns a state directory (livepatchd).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "patch_error.hpp"
#include "unique_fd.hpp"

namespace livepatchd {

inline constexpr std::string_view default_state_directory = LOCALSTATEDIR "/lib/livepatchd";

struct InstalledPatch {
    std::string name;
    std::filesystem::path file;       // <state>/patches/<name>.ko
    std::uint64_t installed_at_usec = 0; // CLOCK_REALTIME
    std::string sha256;               // of the .ko, 64 hex digits
    std::uint64_t size = 0;           // of the .ko, bytes
    std::string source;               // the path it was installed from ("" when unknown)
    std::string vermagic;
    std::string built_for;            // the kernel release of vermagic
    std::string description;
    // Empty when the .ko reads as a patch; otherwise why not (a damaged file, listed so that
    // it can be removed). Such a patch is never applied.
    std::string problem;

    bool operator==(const InstalledPatch&) const = default;
};

// Microseconds since the epoch, CLOCK_REALTIME: what installed_at records.
std::uint64_t realtime_usec();

class PatchStore {
public:
    using Clock = std::function<std::uint64_t()>;

    // Opens (creating <state>/patches when missing) and tidies the store: removes temporaries
    // and records left by a crash, and rebuilds missing records.
    static Result<PatchStore> open(const std::filesystem::path& state_directory,
                                   Clock clock = realtime_usec);

    const std::filesystem::path& directory() const { return directory_; }

    // The rules for a path a caller names (D-Bus Install). Checked before authorization: they
    // look at the string only and reveal nothing about the file system.
    //  - absolute: the service does not share the caller's working directory;
    //  - no "." or ".." component: the path names the file directly;
    //  - at most PATH_MAX - 1 bytes.
    static PatchResult<void> check_source_path(std::string_view path);

    // Opens a file a caller named, after check_source_path(): for reading, without following a
    // symbolic link in the last component (O_NOFOLLOW: the file installed is the file the path
    // names, and the path recorded is its real one; livepatchctl resolves links before
    // sending), without blocking on a FIFO, and only if it is a regular file. Links in the
    // directories above are followed (/lib -> usr/lib).
    //
    // This opens with the daemon's own credentials. The D-Bus layer may instead open the file
    // with the caller's (the hook is install(UniqueFd, ...) below); see docs/dbus-api.md for
    // why the daemon's credentials are used after authorization.
    static PatchResult<UniqueFd> open_source(std::string_view path);

    // check_source_path(), open_source(), install(fd, ...).
    PatchResult<InstalledPatch> install(std::string_view source_path,
                                        std::string_view kernel_release);

    // Installs the patch read from source, which names source_path in messages and in the
    // record. The file is checked (PatchFile::validate), copied while hashed, and the copy is
    // checked again, so that what the store holds is what was checked even if the source
    // changes meanwhile. Refuses a name already installed (already_installed): replacing a
    // patch that may be applied is Remove + Install, a decision for the caller.
    PatchResult<InstalledPatch> install(UniqueFd source, std::string_view source_path,
                                        std::string_view kernel_release);

    // Removes the patch's file and record (not_installed when there is none). Whether it is
    // applied or wanted is the caller's concern.
    PatchResult<void> remove(std::string_view name);

    // Every installed patch, by name.
    Result<std::vector<InstalledPatch>> list() const;

    // One installed patch, or not_installed.
    PatchResult<InstalledPatch> find(std::string_view name) const;

private:
    PatchStore(std::filesystem::path directory, UniqueFd directory_fd, Clock clock);

    PatchResult<InstalledPatch> read_record(std::string_view name) const;
    PatchResult<InstalledPatch> rebuild_record(std::string_view name) const;

    std::filesystem::path directory_;
    UniqueFd directory_fd_;
    Clock clock_;
};

} // namespace livepatchd
