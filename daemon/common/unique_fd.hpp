// SPDX-License-Identifier: GPL-2.0-only
//
// UniqueFd: the one owner of a file descriptor. Every fd the daemon opens lives in one, so that
// no error path leaks it.
#pragma once

#include <unistd.h>

#include <utility>

namespace livepatchd {

class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept
    {
        if (this != &other)
            reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    int release() noexcept { return std::exchange(fd_, -1); }

    // close(2)'s result is ignored on purpose: on Linux the fd is gone whatever it returns, and
    // data that must be durable is fsync()ed, with its error checked, before this point.
    void reset(int fd = -1) noexcept
    {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

} // namespace livepatchd
