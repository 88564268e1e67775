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
// One process owns a state directory (livepatchd), and changes it from one thread at a time.
// list() and find() may run on another thread meanwhile (the metrics' read): a change is seen
// whole or not at all, but for an install between its module's rename and its record's (the
// module is listed with its problem).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/clock.hpp"
#include "store/patch_error.hpp"
#include "store/patch_file.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

inline constexpr std::string_view default_state_directory = LIVEPATCHD_STATE_DIR;

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
    // The objects whose non-exported symbols it references (PatchFile::livepatch_objects).
    std::vector<LivepatchObject> livepatch_objects;
    // Empty when the .ko reads as a patch; otherwise why not (a damaged file, listed so that
    // it can be removed). Such a patch is never applied.
    std::string problem;

    bool operator==(const InstalledPatch&) const = default;
};

// A stored module opened once, checked against its record, ready to load: the fd that was
// hashed and parsed is the fd finit_module() gets (PatchControl::apply).
struct CheckedModule {
    UniqueFd fd;
    InstalledPatch patch;
};

class PatchStore {
public:
    using Clock = std::function<std::uint64_t()>;

    // Opens (creating <state>/patches when missing) and tidies the store: removes temporaries
    // and records left by a crash. A module without a record (a crash between the two
    // renames of install()) is listed with its problem until it is removed and installed
    // again: a record is never made from a file nobody checked at install.
    static Result<PatchStore> open(const std::filesystem::path& state_directory,
                                   Clock clock = realtime_usec);

    const std::filesystem::path& directory() const { return directory_; }

    // Installs the patch read from source (an fd the caller opened and passed, D-Bus
    // Install(h)); source_name names it in messages and in the record ("" when unknown). The
    // file must be a regular file on a local file system (not FUSE: a read there could block
    // the daemon for as long as its owner likes), at most patch_file_max_size bytes. It is
    // copied into the store while hashed, and the copy (which nobody else can change) is
    // checked (PatchFile::validate). Refuses a name already installed (already_installed):
    // replacing a patch that may be applied is Remove + Install, a decision for the caller.
    PatchResult<InstalledPatch> install(UniqueFd source, std::string_view source_name,
                                        std::string_view kernel_release);

    // install() in two steps, for a caller that runs the first off its event loop (copying
    // and hashing a module takes tens of ms under emulation). prepare_install() copies, hashes
    // and checks the file into a temporary of the store, which no reader of the store sees;
    // it reads only what open() set, so it may run on another thread while the store is read
    // (not changed). commit_install() puts the patch in place and records it, as install().
    struct PreparedInstall {
        std::optional<AtomicFile> file; // the checked copy, a temporary until committed
        InstalledPatch patch;           // what the file says; not yet installed_at, file
        std::string origin;             // the source, for messages
    };
    PatchResult<PreparedInstall> prepare_install(UniqueFd source, std::string_view source_name,
                                                 std::string_view kernel_release) const;
    PatchResult<InstalledPatch> commit_install(PreparedInstall prepared);

    // The checks of an fd a caller passed, before authorization: they read no content.
    static PatchResult<void> check_source(int fd, std::string_view source_name);

    // Opens <name>.ko (openat, O_NOFOLLOW), hashes it and compares with the record (size and
    // SHA-256: tampered when they differ or the record is missing), and checks it as a patch
    // for kernel_release. The fd returned is the one that was checked.
    PatchResult<CheckedModule> open_checked(std::string_view name,
                                            std::string_view kernel_release) const;

    // Removes the patch's file and record (not_installed when there is none). Whether it is
    // applied or wanted is the caller's concern.
    PatchResult<void> remove(std::string_view name);

    // Every installed patch, by name, from the records: nothing is hashed or parsed (a module
    // without a valid record is listed with its problem).
    Result<std::vector<InstalledPatch>> list() const;

    // One installed patch, or not_installed.
    PatchResult<InstalledPatch> find(std::string_view name) const;

private:
    PatchStore(std::filesystem::path directory, UniqueFd directory_fd, Clock clock);

    PatchResult<InstalledPatch> read_record(std::string_view name) const;

    std::filesystem::path directory_;
    UniqueFd directory_fd_;
    Clock clock_;
};

} // namespace livepatchd
