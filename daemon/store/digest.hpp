// SPDX-License-Identifier: GPL-2.0-only
//
// SHA-256 of a file, from an fd, with OpenSSL's EVP interface: what the store records at
// install and checks again before every load.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace livepatchd {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(std::string_view data);
    // 64 lowercase hex digits; the object is spent afterwards.
    std::string hex_digest();

private:
    void* ctx_; // EVP_MD_CTX
};

// The SHA-256 of the whole file behind fd, read with pread() from offset 0; size is set to the
// number of bytes hashed. Stops with EFBIG past max_size bytes.
Result<std::string> sha256_of_fd(int fd, std::string_view origin, std::uint64_t& size,
                                 std::uint64_t max_size = UINT64_MAX);

} // namespace livepatchd
