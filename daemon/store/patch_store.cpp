// SPDX-License-Identifier: GPL-2.0-only
#include "store/patch_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "common/text.hpp"
#include "store/patch_file.hpp"
#include "store/digest.hpp"

namespace livepatchd {

using nlohmann::json;

namespace {

constexpr std::string_view module_suffix = ".ko";
constexpr std::string_view record_suffix = ".json";
constexpr std::size_t record_max_size = 64 * 1024;
constexpr mode_t directory_mode = 0700;
constexpr mode_t file_mode = 0600;

std::string module_file(std::string_view name)
{
    return std::string(name) + std::string(module_suffix);
}

std::string record_file(std::string_view name)
{
    return std::string(name) + std::string(record_suffix);
}

PatchError io_error(std::string_view origin, std::string_view doing, int errnum)
{
    return PatchError(PatchErrc::io, errnum,
                      std::string(origin) + ": " + std::string(doing) + ": " +
                          std::strerror(errnum));
}

PatchError from_error(Error error)
{
    return PatchError(PatchErrc::io, error.errnum, std::move(error.message));
}

constexpr std::string_view realpath_hint = "give the file's real path (realpath FILE)";

json livepatch_objects_record(const std::vector<LivepatchObject>& objects)
{
    json list = json::array();
    for (const LivepatchObject& o : objects)
        list.push_back({{"object", o.name}, {"symbols", o.symbols}});
    return list;
}

json to_record(const InstalledPatch& patch)
{
    return json{{"name", patch.name},         {"installed_at_usec", patch.installed_at_usec},
                {"sha256", patch.sha256},     {"size", patch.size},
                {"source", patch.source},     {"vermagic", patch.vermagic},
                {"built_for", patch.built_for}, {"description", patch.description},
                {"livepatch_objects", livepatch_objects_record(patch.livepatch_objects)}};
}

// Reads source from its start into file, hashing what it writes.
PatchResult<std::string> copy_and_hash(int source, std::string_view source_origin,
                                       AtomicFile& file, std::uint64_t& size)
{
    Sha256 hash;
    constexpr std::size_t chunk = 1 << 16;
    std::unique_ptr<char[]> buffer(new char[chunk]);
    size = 0;
    for (;;) {
        const ssize_t n = ::pread(source, buffer.get(), chunk, static_cast<off_t>(size));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_error(source_origin, "cannot read the file", errno);
        }
        if (n == 0)
            break;
        size += static_cast<std::uint64_t>(n);
        if (size > patch_file_max_size)
            return PatchError(PatchErrc::too_large, EFBIG,
                              std::string(source_origin) +
                                  ": is larger than the " + std::to_string(patch_file_max_size) +
                                  " bytes a patch module may have; is this really a patch?");
        const std::string_view piece(buffer.get(), static_cast<std::size_t>(n));
        hash.update(piece);
        if (auto r = file.write(piece); !r)
            return from_error(std::move(r).error());
    }
    return hash.hex_digest();
}

// The names of the entries of dir_fd ending in suffix whose stem is a patch name.
Result<std::vector<std::string>> names_with_suffix(int dir_fd, std::string_view origin,
                                                   std::string_view suffix)
{
    const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return Error{errno, std::string(origin) + ": cannot read the directory: " +
                                std::strerror(errno)};
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd), ::closedir);
    if (!dir) {
        const int errnum = errno;
        ::close(fd);
        return Error{errnum, std::string(origin) + ": cannot read the directory: " +
                                 std::strerror(errnum)};
    }
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(dir.get())) {
        const std::string_view file = entry->d_name;
        if (file.ends_with(suffix) && !is_temp_file_name(file)) {
            const std::string_view stem = file.substr(0, file.size() - suffix.size());
            if (is_valid_patch_name(stem))
                names.emplace_back(stem);
        }
        errno = 0;
    }
    if (errno != 0)
        return Error{errno, std::string(origin) + ": cannot read the directory: " +
                                std::strerror(errno)};
    std::sort(names.begin(), names.end());
    return names;
}

bool exists_at(int dir_fd, const std::string& file)
{
    struct stat st {};
    return ::fstatat(dir_fd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

} // namespace

PatchStore::PatchStore(std::filesystem::path directory, UniqueFd directory_fd, Clock clock)
    : directory_(std::move(directory)), directory_fd_(std::move(directory_fd)),
      clock_(std::move(clock))
{
}

Result<PatchStore> PatchStore::open(const std::filesystem::path& state_directory, Clock clock)
{
    // StateDirectory= creates the state directory for the service; creating it here too keeps
    // the daemon usable (and testable) without systemd.
    if (::mkdir(state_directory.c_str(), directory_mode) < 0 && errno != EEXIST)
        return Error{errno, state_directory.native() + ": cannot create the state directory: " +
                                std::strerror(errno)};
    const std::filesystem::path directory = state_directory / "patches";
    if (::mkdir(directory.c_str(), directory_mode) < 0 && errno != EEXIST)
        return Error{errno, directory.native() + ": cannot create the patch store: " +
                                std::strerror(errno)};
    UniqueFd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
        return Error{errno, directory.native() + ": cannot open the patch store: " +
                                std::strerror(errno)};

    PatchStore store(directory, std::move(fd), std::move(clock));
    const int dir_fd = store.directory_fd_.get();
    if (auto r = remove_stale_temp_files(dir_fd, directory.native()); !r)
        return std::move(r).error();

    // A record without its module is what a crash during remove() (or install()'s rollback)
    // leaves; a module without a valid record is what a crash during install() leaves.
    auto records = names_with_suffix(dir_fd, directory.native(), record_suffix);
    if (!records)
        return std::move(records).error();
    bool removed = false;
    for (const std::string& name : *records) {
        if (!exists_at(dir_fd, module_file(name))) {
            (void)::unlinkat(dir_fd, record_file(name).c_str(), 0);
            removed = true;
        }
    }
    if (removed)
        if (auto r = sync_directory(dir_fd, directory.native()); !r)
            return std::move(r).error();
    return store;
}

PatchResult<void> PatchStore::check_source(int fd, std::string_view source_name)
{
    const std::string origin(source_name.empty() ? "the file given" : source_name);
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0)
        return io_error(origin, "not an open file", errno);
    if ((flags & O_PATH) || ((flags & O_ACCMODE) != O_RDONLY && (flags & O_ACCMODE) != O_RDWR))
        return PatchError(PatchErrc::invalid_path, EBADF,
                          origin + ": the file descriptor is not open for reading; open the "
                                   "patch module for reading and pass that");
    struct stat st {};
    if (::fstat(fd, &st) < 0)
        return io_error(origin, "cannot examine the file", errno);
    if (!S_ISREG(st.st_mode))
        return PatchError(PatchErrc::not_regular_file, EINVAL,
                          origin + ": is " +
                              (S_ISDIR(st.st_mode)    ? "a directory"
                               : S_ISFIFO(st.st_mode) ? "a FIFO"
                               : S_ISSOCK(st.st_mode) ? "a socket"
                                                      : "a device") +
                              ", not a regular file; pass the patch module (.ko) itself");
    if (static_cast<std::uint64_t>(st.st_size) > patch_file_max_size)
        return PatchError(PatchErrc::too_large, EFBIG,
                          origin + ": is " + std::to_string(st.st_size) +
                              " bytes long, more than the " +
                              std::to_string(patch_file_max_size) +
                              " a patch module may have; is this really a patch?");
    struct statfs fs {};
    if (::fstatfs(fd, &fs) < 0)
        return io_error(origin, "cannot examine the file system", errno);
    if (fs.f_type == FUSE_SUPER_MAGIC)
        return PatchError(PatchErrc::invalid_path, EXDEV,
                          origin + ": is on a FUSE file system, whose owner could stall "
                                   "livepatchd while it reads; copy it to a local file system "
                                   "first");
    return {};
}

PatchResult<InstalledPatch> PatchStore::install(UniqueFd source, std::string_view source_name,
                                                std::string_view kernel_release)
{
    auto prepared = prepare_install(std::move(source), source_name, kernel_release);
    if (!prepared)
        return std::move(prepared).error();
    return commit_install(std::move(prepared).value());
}

PatchResult<PatchStore::PreparedInstall>
PatchStore::prepare_install(UniqueFd source, std::string_view source_name,
                            std::string_view kernel_release) const
{
    PreparedInstall prepared;
    prepared.origin = source_name.empty() ? "the file given" : std::string(source_name);
    const std::string& origin = prepared.origin;
    if (auto r = check_source(source.get(), source_name); !r)
        return std::move(r).error();

    // Copied first, checked second: what is checked is the store's own copy, which no caller
    // can change between the check and the load. The temporary is removed on every error.
    auto file = AtomicFile::create(directory_fd_.get(), directory_.native(), "install",
                                   file_mode);
    if (!file)
        return from_error(std::move(file).error());
    prepared.file.emplace(std::move(file).value());
    InstalledPatch& patch = prepared.patch;
    auto digest = copy_and_hash(source.get(), origin, *prepared.file, patch.size);
    if (!digest)
        return std::move(digest).error();
    patch.sha256 = std::move(digest).value();
    source.reset();

    auto checked = PatchFile::validate(prepared.file->fd(), origin, kernel_release);
    if (!checked)
        return std::move(checked).error();
    patch.name = checked->name;
    patch.source = printable(source_name);
    patch.vermagic = checked->vermagic;
    patch.built_for = checked->built_for;
    patch.description = checked->description;
    patch.livepatch_objects = checked->livepatch_objects;
    // The copy's data on disk here, not in commit_install()'s fsync on the caller's loop.
    if (::fsync(prepared.file->fd()) != 0)
        return io_error(origin, "cannot write the copy to disk", errno);
    return prepared;
}

PatchResult<InstalledPatch> PatchStore::commit_install(PreparedInstall prepared)
{
    InstalledPatch& patch = prepared.patch;
    const std::string& name = patch.name;
    const std::string& origin = prepared.origin;
    if (!prepared.file || !is_valid_patch_name(name))
        return PatchError(PatchErrc::invalid_name, EINVAL,
                          origin + ": not a prepared install (the store's error)");

    if (auto existing = find(name); existing)
        return PatchError(PatchErrc::already_installed, EEXIST,
                          origin + ": a patch named " + name + " is already installed (sha256 " +
                              (existing->sha256.empty() ? "unknown" : existing->sha256) +
                              "); to replace it, revert it if it is applied, remove it, and "
                              "install the new one");
    else if (existing.error().code != PatchErrc::not_installed)
        return std::move(existing).error();

    // The record's text before the module is in place: nothing may fail between the two
    // that would leave a module without its record.
    patch.file = directory_ / module_file(name);
    patch.installed_at_usec = clock_();
    const std::string record = to_record(patch).dump(2) + "\n";

    prepared.file->set_name(module_file(name));
    if (auto r = prepared.file->commit(Overwrite::refuse); !r) {
        if (r.error().errnum == EEXIST)
            return PatchError(PatchErrc::already_installed, EEXIST,
                              origin + ": a patch named " + name +
                                  " was installed meanwhile; remove it first to replace it");
        return from_error(std::move(r).error());
    }

    if (auto r = write_file_atomically(directory_fd_.get(), directory_.native(),
                                       record_file(name), record, file_mode);
        !r) {
        // Nothing half-done: without its record the patch is taken out again.
        (void)::unlinkat(directory_fd_.get(), module_file(name).c_str(), 0);
        (void)sync_directory(directory_fd_.get(), directory_.native());
        return from_error(std::move(r).error());
    }
    return std::move(patch);
}

PatchResult<CheckedModule> PatchStore::open_checked(std::string_view name,
                                                    std::string_view kernel_release) const
{
    auto record = find(name);
    if (!record)
        return std::move(record).error();
    if (!record->problem.empty())
        return PatchError(PatchErrc::tampered, EBADMSG, record->problem);
    const std::string origin = record->file.native();
    UniqueFd fd(::openat(directory_fd_.get(), module_file(name).c_str(),
                         O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
    if (!fd)
        return io_error(origin, "cannot open the patch", errno);
    std::uint64_t size = 0;
    auto digest = sha256_of_fd(fd.get(), origin, size, patch_file_max_size);
    if (!digest)
        return from_error(std::move(digest).error());
    if (size != record->size || *digest != record->sha256)
        return PatchError(PatchErrc::tampered, EBADMSG,
                          origin + ": has changed since it was installed (sha256 " + *digest +
                              ", " + std::to_string(size) + " bytes; installed as sha256 " +
                              record->sha256 + ", " + std::to_string(record->size) +
                              " bytes); it is not loaded. Remove it and install the patch "
                              "again from a trusted copy");
    auto checked = PatchFile::validate(fd.get(), origin, kernel_release);
    if (!checked)
        return std::move(checked).error();
    if (checked->name != name)
        return PatchError(PatchErrc::tampered, EBADMSG,
                          origin + ": holds the patch " + checked->name + ", not " +
                              std::string(name) + "; remove it and install the patch again");
    return CheckedModule{std::move(fd), std::move(record).value()};
}

PatchResult<void> PatchStore::remove(std::string_view name)
{
    auto patch = find(name);
    if (!patch)
        return std::move(patch).error();
    // The module is the commit point: once it is gone the patch is not installed, and open()
    // removes a record left behind.
    if (::unlinkat(directory_fd_.get(), module_file(name).c_str(), 0) < 0)
        return io_error(patch->file.native(), "cannot remove the patch", errno);
    if (::unlinkat(directory_fd_.get(), record_file(name).c_str(), 0) < 0 && errno != ENOENT)
        return io_error((directory_ / record_file(name)).native(), "cannot remove the record",
                        errno);
    if (auto r = sync_directory(directory_fd_.get(), directory_.native()); !r)
        return from_error(std::move(r).error());
    return {};
}

Result<std::vector<InstalledPatch>> PatchStore::list() const
{
    auto names = names_with_suffix(directory_fd_.get(), directory_.native(), module_suffix);
    if (!names)
        return std::move(names).error();
    std::vector<InstalledPatch> patches;
    for (const std::string& name : *names) {
        auto patch = find(name);
        if (patch) {
            patches.push_back(std::move(patch).value());
        } else if (patch.error().code != PatchErrc::not_installed) { // not: removed meanwhile
            InstalledPatch unreadable;
            unreadable.name = name;
            unreadable.file = directory_ / module_file(name);
            unreadable.problem = patch.error().message;
            patches.push_back(std::move(unreadable));
        }
    }
    return patches;
}

PatchResult<InstalledPatch> PatchStore::find(std::string_view name) const
{
    if (!is_valid_patch_name(name))
        return PatchError(PatchErrc::invalid_name, EINVAL,
                          "\"" + printable(name.substr(0, 80)) +
                              "\" is not a patch name; a patch is named after its kernel module: "
                              "1 to " +
                              std::to_string(patch_name_max) +
                              " letters, digits and underscores");
    if (!exists_at(directory_fd_.get(), module_file(name)))
        return PatchError(PatchErrc::not_installed, ENOENT,
                          "no patch named " + std::string(name) +
                              " is installed; 'livepatchctl list' shows the installed ones");
    if (auto record = read_record(name))
        return record;
    else if (record.error().errnum != EBADMSG && record.error().errnum != ENOENT)
        return std::move(record).error();
    else {
        // Listed, so that it can be removed; never applied.
        InstalledPatch unchecked;
        unchecked.name = std::string(name);
        unchecked.file = directory_ / module_file(name);
        unchecked.problem = unchecked.file.native() + ": " +
                            (record.error().errnum == ENOENT
                                 ? std::string("has no record of its install (an install that "
                                               "did not complete?)")
                                 : record.error().message) +
                            "; remove it and install the patch again";
        return unchecked;
    }
}

PatchResult<InstalledPatch> PatchStore::read_record(std::string_view name) const
{
    const std::string file = record_file(name);
    auto text = read_file_at(directory_fd_.get(), directory_.native(), file, record_max_size);
    if (!text)
        return from_error(std::move(text).error());
    const std::string origin = (directory_ / file).native();
    InstalledPatch patch;
    try {
        const json record = json::parse(*text);
        patch.name = record.at("name").get<std::string>();
        patch.installed_at_usec = record.at("installed_at_usec").get<std::uint64_t>();
        patch.sha256 = record.at("sha256").get<std::string>();
        patch.size = record.at("size").get<std::uint64_t>();
        patch.source = record.at("source").get<std::string>();
        patch.vermagic = record.at("vermagic").get<std::string>();
        patch.built_for = record.at("built_for").get<std::string>();
        patch.description = record.at("description").get<std::string>();
        // Records written before livepatch relocations were understood have none.
        if (const auto objects = record.find("livepatch_objects"); objects != record.end())
            for (const json& o : objects->get_ref<const json::array_t&>())
                patch.livepatch_objects.push_back(
                    {o.at("object").get<std::string>(), o.at("symbols").get<std::size_t>()});
    } catch (const json::exception& e) {
        return PatchError(PatchErrc::io, EBADMSG, origin + ": damaged record: " + e.what());
    }
    struct stat st {};
    if (::fstatat(directory_fd_.get(), module_file(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
        return io_error((directory_ / module_file(name)).native(), "cannot examine the patch",
                        errno);
    // A record that does not describe the module beside it (another name, another size) is
    // not trusted; the module is read again instead.
    if (patch.name != name || patch.size != static_cast<std::uint64_t>(st.st_size) ||
        patch.sha256.size() != 64)
        return PatchError(PatchErrc::io, EBADMSG, origin + ": does not match its module");
    patch.file = directory_ / module_file(name);
    return patch;
}

} // namespace livepatchd
