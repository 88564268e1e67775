// SPDX-License-Identifier: GPL-2.0-only
#include "common/small_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.hpp"

namespace livepatchd {

namespace {

Result<std::string> read_all(int fd, std::string_view origin, std::size_t max_size)
{
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const int errnum = errno;
            return Error{errnum, std::string(origin) + ": cannot read: " + std::strerror(errnum)};
        }
        if (n == 0)
            return text;
        if (text.size() + static_cast<std::size_t>(n) > max_size)
            return Error{EFBIG, std::string(origin) + ": larger than " +
                                    std::to_string(max_size) + " bytes"};
        text.append(buffer, static_cast<std::size_t>(n));
    }
}

Error open_error(std::string_view origin, int errnum)
{
    return Error{errnum, std::string(origin) + ": cannot open: " + std::strerror(errnum)};
}

} // namespace

Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_size)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd)
        return open_error(path.native(), errno);
    return read_all(fd.get(), path.native(), max_size);
}

Result<std::string> read_small_file_at(int dir_fd, const std::string& name,
                                       std::string_view origin, std::size_t max_size)
{
    UniqueFd fd(::openat(dir_fd, name.c_str(),
                         O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW));
    if (!fd)
        return open_error(origin, errno);
    return read_all(fd.get(), origin, max_size);
}

} // namespace livepatchd
