// SPDX-License-Identifier: GPL-2.0-only
//
// DesiredState: which patches should be applied, in which order, and what the crash-loop guard
// needs to know about each apply. It survives reboots in <state>/desired.json; livepatchd
// applies it again at boot (Reconciler) unless the kernel command line, the configuration or
// the guard says not to.
//
// The file is written whole through AtomicFile (temporary, fsync, rename, directory fsync), so
// after a crash it holds the old list or the new one. A file that cannot be read as a desired
// state is moved aside to desired.json.corrupt, never overwritten and never silently dropped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

// An action on a patch that was recorded before it was done and not yet confirmed: a crash of
// livepatchd in between leaves it in the file, and the next start settles it from what the
// kernel shows (PatchOperations::settle).
enum class PendingAction { none, apply, revert };
std::string_view to_string(PendingAction action);

struct DesiredPatch {
    std::string name;
    // When livepatchd last applied it (CLOCK_REALTIME, µs; 0: never) and in which boot
    // (/proc/sys/kernel/random/boot_id without dashes, 32 hex digits; "": never).
    std::uint64_t applied_at_usec = 0;
    std::string applied_boot_id;
    // That boot then ran boot.crash_guard_seconds past the apply, or shut down cleanly before,
    // with no oops: the apply did not bring the system down. Reset by every apply.
    bool survived_guard = false;
    // The kernel oopsed in that boot after the apply (its oops count grew).
    bool oops_after_apply = false;
    // CLOCK_BOOTTIME of the apply, µs, in applied_boot_id: the crash-loop guard's window is
    // measured on it, never on the wall clock. 0: not known (a file of an older livepatchd).
    std::uint64_t applied_boottime_usec = 0;
    // The kernel's oops count at the apply, in applied_boot_id (or the oopses the crash-loop
    // guard had accounted for then, if more): only an oops past it is after the apply. 0: not
    // known (a file of an older livepatchd), and the guard's own count decides alone.
    std::uint64_t applied_oops_count = 0;
    PendingAction pending = PendingAction::none;

    bool operator==(const DesiredPatch&) const = default;
};

struct DesiredState {
    // In the order they are to be applied: the stack order, oldest first.
    std::vector<DesiredPatch> patches;
    // The last boot that livepatchd saw shut down cleanly (stopped during a system shutdown).
    // The patches applied in that boot are marked survived_guard then: a later boot's clean
    // shutdown replaces this id and loses nothing (a file of an older livepatchd had only it).
    std::string clean_shutdown_boot_id;
    // The patches whose transition was forced in boot forced_boot_id (Force, on_stall: force):
    // their modules can never be removed in that boot (the Patch property Forced), whether
    // they are still wanted or not. Another boot's list means nothing.
    std::string forced_boot_id;
    std::vector<std::string> forced;
    // The kernel's oops count (/sys/kernel/oops_count) the crash-loop guard has accounted for
    // in boot oops_boot_id: a livepatchd started again in that boot (a restart, a crash) takes
    // every oops past it as new, so none that came while it was down is lost. Another boot's
    // count means nothing.
    std::string oops_boot_id;
    std::uint64_t oops_count = 0;

    const DesiredPatch* find(std::string_view name) const;
    DesiredPatch* find(std::string_view name);
    // Adds name at the end (the top of the stack) unless it is there; returns the entry.
    DesiredPatch& append(std::string_view name);
    // Returns whether it was there.
    bool erase(std::string_view name);

    bool operator==(const DesiredState&) const = default;
};

inline constexpr std::string_view desired_state_file_name = "desired.json";
inline constexpr std::string_view corrupt_suffix = ".corrupt";
inline constexpr std::size_t desired_state_max_size = 1 << 20;

// Where the desired state lives: DesiredStateFile, or a fake in tests.
class DesiredStateStorage {
public:
    virtual ~DesiredStateStorage() = default;
    virtual Result<DesiredState> load() const = 0;
    virtual Result<void> save(const DesiredState& state) const = 0;
};

// The desired state's file in a state directory. Not thread-safe; one process owns it.
class DesiredStateFile final : public DesiredStateStorage {
public:
    // Opens the state directory (creating it when missing) and removes the temporaries a crash
    // left there.
    static Result<DesiredStateFile> open(const std::filesystem::path& state_directory);

    const std::filesystem::path& path() const { return path_; }

    // A missing file is the empty state. A file that is not a valid desired state is renamed
    // to desired.json.corrupt (replacing an older one) and reported as an error naming both,
    // so that the caller starts from the empty state knowing what was kept aside. A file
    // written by a newer livepatchd (a larger "version") is an error and is left in place.
    // Errors: EBADMSG for a damaged file (moved aside), ENOTSUP for a newer format (left in
    // place), or the errno of reading it (left in place). Only EBADMSG means "start from
    // nothing": after any other error, the file still holds what is wanted and must not be
    // overwritten.
    Result<DesiredState> load() const override;

    // Replaces the file durably.
    Result<void> save(const DesiredState& state) const override;

private:
    DesiredStateFile(std::filesystem::path directory, UniqueFd directory_fd);

    std::filesystem::path directory_;
    std::filesystem::path path_;
    UniqueFd directory_fd_;
};

// The JSON form, and back. parse_desired_state(to_desired_state_json(s), ...) == s.
std::string to_desired_state_json(const DesiredState& state);
// Errors carry EBADMSG for damaged content and ENOTSUP for a newer format. A field whose
// damage costs nothing wanted (a malformed "forced") is dropped instead, and why is added to
// warnings (DesiredStateFile::load() logs them).
Result<DesiredState> parse_desired_state(std::string_view text, std::string_view origin,
                                         std::vector<std::string>* warnings = nullptr);

} // namespace livepatchd
