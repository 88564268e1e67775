// SPDX-License-Identifier: GPL-2.0-only
//
// parse_decimal(): the numbers livepatchd reads from the kernel's files and its own records'
// names are the whole text or none; a damaged file never yields the number it begins with.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <sys/types.h>

#include "common/decimal.hpp"

using namespace livepatchd;

TEST_CASE("the whole text is the number")
{
    CHECK(parse_decimal<std::uint64_t>("0") == 0u);
    CHECK(parse_decimal<std::uint64_t>("18446744073709551615") == UINT64_MAX);
    CHECK(parse_decimal<std::uint32_t>("4194304") == 4194304u);
    CHECK(parse_decimal<pid_t>("-1") == -1); // a signed type takes its sign
}

TEST_CASE("anything else in the text, or nothing, is no number")
{
    for (const char* text : {"", " 1", "1 ", "1\n", "+1", "-1", "1x", "0x10", "1.5", "١"}) {
        CAPTURE(text);
        CHECK_FALSE(parse_decimal<std::uint64_t>(text));
    }
}

TEST_CASE("a number the type cannot hold is no number, not its prefix or a wrap")
{
    CHECK_FALSE(parse_decimal<std::uint64_t>("18446744073709551616"));
    CHECK_FALSE(parse_decimal<std::uint32_t>("4294967296"));
    CHECK_FALSE(parse_decimal<pid_t>("2147483648"));
}
