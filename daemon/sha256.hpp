// SPDX-License-Identifier: GPL-2.0-only
//
// SHA-256 (FIPS 180-4) of the patch files in the store: the digest is recorded at install and
// shown to people, so that "which build is installed?" has an answer that does not depend on
// timestamps. Small enough to carry rather than link a crypto library for one digest.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace livepatchd {

class Sha256 {
public:
    Sha256() noexcept;
    void update(const void* data, std::size_t size) noexcept;
    void update(std::string_view data) noexcept { update(data.data(), data.size()); }
    // The digest as 64 lowercase hex digits. The object is spent afterwards.
    std::string hex_digest();

private:
    void block(const std::uint8_t* data) noexcept;

    std::array<std::uint32_t, 8> state_;
    std::array<std::uint8_t, 64> buffer_{};
    std::size_t buffered_ = 0;
    std::uint64_t length_ = 0; // bytes hashed
};

} // namespace livepatchd
