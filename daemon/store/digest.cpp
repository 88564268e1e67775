// SPDX-License-Identifier: GPL-2.0-only
#include "store/digest.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

namespace livepatchd {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new())
{
    if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
        EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
        throw std::bad_alloc();
    }
}

Sha256::~Sha256()
{
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void Sha256::update(std::string_view data)
{
    if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size()) != 1)
        throw std::bad_alloc();
}

std::string Sha256::hex_digest()
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &length) != 1)
        throw std::bad_alloc();
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    for (unsigned int i = 0; i < length; ++i) {
        text += hex[digest[i] >> 4];
        text += hex[digest[i] & 0xf];
    }
    return text;
}

Result<std::string> sha256_of_fd(int fd, std::string_view origin, std::uint64_t& size,
                                 std::uint64_t max_size)
{
    Sha256 hash;
    constexpr std::size_t chunk = 1 << 16;
    std::unique_ptr<char[]> buffer(new char[chunk]);
    size = 0;
    for (;;) {
        const ssize_t n = ::pread(fd, buffer.get(), chunk, static_cast<off_t>(size));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const int errnum = errno;
            return Error{errnum, std::string(origin) + ": cannot read the file: " +
                                     std::strerror(errnum)};
        }
        if (n == 0)
            return hash.hex_digest();
        size += static_cast<std::uint64_t>(n);
        if (size > max_size)
            return Error{EFBIG, std::string(origin) + ": larger than " +
                                    std::to_string(max_size) + " bytes"};
        hash.update(std::string_view(buffer.get(), static_cast<std::size_t>(n)));
    }
}

} // namespace livepatchd
