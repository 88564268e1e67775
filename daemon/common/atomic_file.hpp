// SPDX-License-Identifier: GPL-2.0-only
//
// AtomicFile: writes a file in a directory so that a crash at any point leaves either the old
// file or the complete new one, never a part of it: the data goes to a temporary file in the
// same directory (".#<name>XXXXXX", as systemd names its own), which is fsync()ed, renamed over
// the target, and then the directory is fsync()ed so that the rename itself is durable.
// A temporary left by a crash is never read as data; remove_stale_temp_files() cleans up.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

enum class Overwrite {
    replace, // the new file replaces an existing one (state files)
    refuse,  // fail with EEXIST if the name exists (installing a patch: no silent replace)
};

enum class Durability {
    synced,   // fsync the file before the rename and the directory after: survives a power loss
    unsynced, // the rename alone: a reader never sees a part of it, but a power loss may leave
              // the old file (or, but on ext4, an empty one); for files rewritten at every start
};

class AtomicFile {
public:
    // dir_fd is borrowed and must outlive the AtomicFile; dir_origin names the directory in
    // messages.
    static Result<AtomicFile> create(int dir_fd, std::string dir_origin, std::string name,
                                     mode_t mode);

    AtomicFile(AtomicFile&& other) noexcept;
    AtomicFile& operator=(AtomicFile&&) = delete;
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    // Removes the temporary file unless commit() succeeded.
    ~AtomicFile();

    // Open for reading too, so that what was written can be checked before commit().
    int fd() const noexcept { return fd_.get(); }
    const std::string& temp_name() const noexcept { return temp_name_; }

    Result<void> write(std::string_view data);
    // The name commit() gives the file, when it is known only from the content (a patch's
    // name is in its modinfo): the temporary keeps its own name.
    void set_name(std::string name) { name_ = std::move(name); }
    // fsync, rename into place, fsync the directory (Durability::unsynced: the rename only).
    // With Overwrite::refuse an existing file makes it fail with errnum EEXIST and nothing
    // changes.
    Result<void> commit(Overwrite overwrite, Durability durability = Durability::synced);

private:
    AtomicFile(int dir_fd, std::string dir_origin, std::string name, std::string temp_name,
               UniqueFd fd);

    int dir_fd_;
    std::string dir_origin_;
    std::string name_;
    std::string temp_name_;
    UniqueFd fd_;
    bool committed_ = false;
};

// The whole of content as dir/name, atomically (and durably unless unsynced), replacing what
// was there.
Result<void> write_file_atomically(int dir_fd, const std::string& dir_origin,
                                   const std::string& name, std::string_view content,
                                   mode_t mode, Durability durability = Durability::synced);

// fsync(2) on a directory: makes the creation, renaming and removal of its entries durable.
Result<void> sync_directory(int dir_fd, std::string_view dir_origin);

// The counterpart for reading state: the whole of dir/name, refusing more than max_size bytes
// (a state file that large is damaged). errnum ENOENT when the file does not exist.
Result<std::string> read_file_at(int dir_fd, std::string_view dir_origin,
                                 const std::string& name, std::size_t max_size);

// Whether name is one of AtomicFile's temporaries; of_name: one it made for the file of_name.
bool is_temp_file_name(std::string_view name);
bool is_temp_file_of(std::string_view name, std::string_view of_name);

// Removes the temporaries a crash left in the directory. Returns how many it removed.
Result<unsigned> remove_stale_temp_files(int dir_fd, std::string_view dir_origin);

} // namespace livepatchd
