// SPDX-License-Identifier: GPL-2.0-only
#include "common/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

namespace livepatchd {

namespace {

constexpr std::string_view temp_prefix = ".#";

Error system_error(std::string_view origin, std::string_view doing, int errnum)
{
    return Error{errnum, std::string(origin) + ": " + std::string(doing) + ": " +
                             std::strerror(errnum)};
}

constexpr std::string_view temp_alphabet =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr std::size_t temp_suffix_size = 8;

std::string random_suffix()
{
    unsigned char bytes[temp_suffix_size] = {};
    // GRND_INSECURE would do, but needs 5.6; a short read or an error only costs uniqueness,
    // which O_EXCL checks anyway.
    if (::getrandom(bytes, sizeof bytes, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bytes)) {
        static std::atomic<unsigned> counter; // an Apply's saves run on a thread of their own
        const unsigned long mix = static_cast<unsigned long>(::getpid()) * 2654435761u + ++counter;
        std::memcpy(bytes, &mix, std::min(sizeof bytes, sizeof mix));
    }
    std::string suffix;
    for (unsigned char byte : bytes)
        suffix += temp_alphabet[byte % temp_alphabet.size()];
    return suffix;
}

// renameat2(RENAME_NOREPLACE) where the file system has it; elsewhere link() + unlink(), which
// refuses an existing target just the same.
int rename_noreplace(int dir_fd, const char* from, const char* to)
{
    if (::renameat2(dir_fd, from, dir_fd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (::linkat(dir_fd, from, dir_fd, to, 0) < 0)
        return -1;
    (void)::unlinkat(dir_fd, from, 0);
    return 0;
}

} // namespace

AtomicFile::AtomicFile(int dir_fd, std::string dir_origin, std::string name,
                       std::string temp_name, UniqueFd fd)
    : dir_fd_(dir_fd), dir_origin_(std::move(dir_origin)), name_(std::move(name)),
      temp_name_(std::move(temp_name)), fd_(std::move(fd))
{
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : dir_fd_(other.dir_fd_), dir_origin_(std::move(other.dir_origin_)),
      name_(std::move(other.name_)), temp_name_(std::move(other.temp_name_)),
      fd_(std::move(other.fd_)), committed_(std::exchange(other.committed_, true))
{
}

AtomicFile::~AtomicFile()
{
    if (!committed_ && !temp_name_.empty())
        (void)::unlinkat(dir_fd_, temp_name_.c_str(), 0);
}

Result<AtomicFile> AtomicFile::create(int dir_fd, std::string dir_origin, std::string name,
                                      mode_t mode)
{
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::string temp_name = std::string(temp_prefix) + name + random_suffix();
        UniqueFd fd(::openat(dir_fd, temp_name.c_str(),
                             O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
        if (fd)
            return AtomicFile(dir_fd, std::move(dir_origin), std::move(name),
                              std::move(temp_name), std::move(fd));
        if (errno != EEXIST)
            return system_error(dir_origin + "/" + name, "cannot create a temporary file beside it", errno);
    }
    return system_error(dir_origin + "/" + name, "cannot create a temporary file beside it", EEXIST);
}

Result<void> AtomicFile::write(std::string_view data)
{
    while (!data.empty()) {
        const ssize_t n = ::write(fd_.get(), data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return system_error(dir_origin_ + "/" + name_, "cannot write", errno);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

Result<void> AtomicFile::commit(Overwrite overwrite, Durability durability)
{
    const bool synced = durability == Durability::synced;
    // The data must be on disk before the name points at it: otherwise a crash after the
    // rename can leave an empty or partial file under the real name (ext4 delalloc, xfs).
    if (synced && ::fsync(fd_.get()) < 0)
        return system_error(dir_origin_ + "/" + name_, "cannot write to disk", errno);
    const int r = overwrite == Overwrite::replace
                      ? ::renameat(dir_fd_, temp_name_.c_str(), dir_fd_, name_.c_str())
                      : rename_noreplace(dir_fd_, temp_name_.c_str(), name_.c_str());
    if (r < 0)
        return system_error(dir_origin_ + "/" + name_, "cannot put in place", errno);
    committed_ = true;
    fd_.reset();
    // The rename is done and visible: a failure here only means it may not survive a crash.
    return synced ? sync_directory(dir_fd_, dir_origin_) : Result<void>{};
}

Result<void> write_file_atomically(int dir_fd, const std::string& dir_origin,
                                   const std::string& name, std::string_view content,
                                   mode_t mode, Durability durability)
{
    auto file = AtomicFile::create(dir_fd, dir_origin, name, mode);
    if (!file)
        return std::move(file).error();
    if (auto r = file->write(content); !r)
        return r;
    return file->commit(Overwrite::replace, durability);
}

Result<void> sync_directory(int dir_fd, std::string_view dir_origin)
{
    if (::fsync(dir_fd) < 0)
        return system_error(dir_origin, "cannot write the directory to disk", errno);
    return {};
}

Result<std::string> read_file_at(int dir_fd, std::string_view dir_origin,
                                 const std::string& name, std::size_t max_size)
{
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd)
        return system_error(std::string(dir_origin) + "/" + name, "cannot open", errno);
    std::string text;
    char buffer[16384];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return system_error(std::string(dir_origin) + "/" + name, "cannot read", errno);
        }
        if (n == 0)
            return text;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > max_size)
            return Error{EFBIG, std::string(dir_origin) + "/" + name + ": larger than " +
                                    std::to_string(max_size) + " bytes, so it is damaged"};
    }
}

bool is_temp_file_name(std::string_view name)
{
    return name.starts_with(temp_prefix);
}

bool is_temp_file_of(std::string_view name, std::string_view of_name)
{
    if (!name.starts_with(temp_prefix))
        return false;
    name.remove_prefix(temp_prefix.size());
    if (!name.starts_with(of_name))
        return false;
    name.remove_prefix(of_name.size());
    return name.size() == temp_suffix_size &&
           name.find_first_not_of(temp_alphabet) == std::string_view::npos;
}

Result<unsigned> remove_stale_temp_files(int dir_fd, std::string_view dir_origin)
{
    // fdopendir() takes over the fd it is given, so give it its own.
    const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return system_error(dir_origin, "cannot read the directory", errno);
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd), ::closedir);
    if (!dir) {
        const int errnum = errno;
        ::close(fd);
        return system_error(dir_origin, "cannot read the directory", errnum);
    }
    unsigned removed = 0;
    errno = 0;
    while (const dirent* entry = ::readdir(dir.get())) {
        if (is_temp_file_name(entry->d_name) &&
            ::unlinkat(dir_fd, entry->d_name, 0) == 0)
            ++removed;
        errno = 0;
    }
    if (errno != 0)
        return system_error(dir_origin, "cannot read the directory", errno);
    if (removed > 0)
        if (auto r = sync_directory(dir_fd, dir_origin); !r)
            return std::move(r).error();
    return removed;
}

} // namespace livepatchd
