// SPDX-License-Identifier: GPL-2.0-only
#include "file_io.hpp"

#include <fcntl.h>
#include <lzma.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.hpp"

namespace klpconvert {

namespace {

Error io_error(const std::string& path, const std::string& doing, int errnum)
{
    return Error{errnum, path + ": cannot " + doing + ": " + std::strerror(errnum)};
}

} // namespace

bool is_xz(std::span<const std::uint8_t> data)
{
    static const std::uint8_t magic[] = {0xfd, '7', 'z', 'X', 'Z', 0x00};
    return data.size() >= sizeof(magic) && std::memcmp(data.data(), magic, sizeof(magic)) == 0;
}

Result<std::vector<std::uint8_t>> xz_decompress(std::span<const std::uint8_t> data,
                                                const std::string& origin, std::size_t limit)
{
    lzma_stream strm = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&strm, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
        return Error{ENOMEM, origin + ": cannot start the xz decoder"};
    std::vector<std::uint8_t> out;
    strm.next_in = data.data();
    strm.avail_in = data.size();
    lzma_ret ret = LZMA_OK;
    while (ret == LZMA_OK) {
        const std::size_t done = out.size();
        if (done >= limit) {
            lzma_end(&strm);
            return Error{EFBIG, origin + ": decompresses to more than " + std::to_string(limit) +
                                    " bytes"};
        }
        out.resize(done + std::min<std::size_t>(1 << 20, limit - done));
        strm.next_out = out.data() + done;
        strm.avail_out = out.size() - done;
        ret = lzma_code(&strm, LZMA_FINISH);
        out.resize(out.size() - strm.avail_out);
    }
    lzma_end(&strm);
    if (ret != LZMA_STREAM_END)
        return Error{EINVAL, origin + ": not a valid xz file (liblzma error " +
                                 std::to_string(static_cast<int>(ret)) + ")"};
    return out;
}

Result<std::vector<std::uint8_t>> read_file(const std::string& path, std::size_t limit)
{
    livepatchd::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return io_error(path, "open it", errno);
    struct stat st;
    if (fstat(fd.get(), &st) != 0)
        return io_error(path, "read it", errno);
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
        return Error{EINVAL, path + ": not a file"};
    std::vector<std::uint8_t> data;
    // /proc files report size 0: read until the end, whatever fstat says.
    for (;;) {
        const std::size_t done = data.size();
        if (done >= limit)
            return Error{EFBIG, path + ": larger than " + std::to_string(limit) + " bytes"};
        data.resize(done + (1 << 16));
        const ssize_t n = read(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) {
            data.resize(done);
            continue;
        }
        if (n < 0)
            return io_error(path, "read it", errno);
        data.resize(done + static_cast<std::size_t>(n));
        if (n == 0)
            break;
    }
    if (is_xz(data))
        return xz_decompress(data, path, limit);
    return data;
}

Result<void> write_file_atomic(const std::string& path, std::span<const std::uint8_t> data,
                               mode_t mode)
{
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0                ? ""
                                                        : path.substr(0, slash);
    std::string tmp = dir + "/.lpshim-klp-convert.XXXXXX";
    livepatchd::UniqueFd fd(mkstemp(tmp.data()));
    if (!fd)
        return io_error(dir, "create a temporary file there", errno);
    const auto give_up = [&](const std::string& doing, int errnum) {
        unlink(tmp.c_str());
        return io_error(path, doing, errnum);
    };
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return give_up("write it", errno);
        done += static_cast<std::size_t>(n);
    }
    if (fchmod(fd.get(), mode) != 0)
        return give_up("set its mode", errno);
    if (fsync(fd.get()) != 0)
        return give_up("write it", errno);
    if (rename(tmp.c_str(), path.c_str()) != 0)
        return give_up("replace it", errno);
    return {};
}

} // namespace klpconvert
