// SPDX-License-Identifier: GPL-2.0-only
//
// Sha256 against the FIPS 180-4 examples, fed in pieces of every awkward size.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "sha256.hpp"

using livepatchd::Sha256;

namespace {

std::string digest(std::string_view data, std::size_t piece)
{
    Sha256 hash;
    while (!data.empty()) {
        const std::size_t n = std::min(piece, data.size());
        hash.update(data.substr(0, n));
        data.remove_prefix(n);
    }
    return hash.hex_digest();
}

} // namespace

TEST_CASE("FIPS 180-4 examples")
{
    const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    const std::string million(1'000'000, 'a');
    for (std::size_t piece : {1, 3, 55, 56, 63, 64, 65, 1000, 1'000'000}) {
        CAPTURE(piece);
        CHECK(digest("", piece) ==
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK(digest("abc", piece) ==
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK(digest(two_blocks, piece) ==
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        CHECK(digest(million, piece) ==
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
}
