// SPDX-License-Identifier: GPL-2.0-only
//
// The "did you mean" suggestions: close typos get one, unrelated words do not.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <array>
#include <string_view>

#include "common/spelling.hpp"

using namespace livepatchd;
using namespace std::string_view_literals;

TEST_CASE("edit distance counts insertions, deletions, substitutions and transpositions")
{
    CHECK(edit_distance("", "") == 0);
    CHECK(edit_distance("boot", "boot") == 0);
    CHECK(edit_distance("bot", "boot") == 1);
    CHECK(edit_distance("boot", "boat") == 1);
    CHECK(edit_distance("jsno", "json") == 1);
    CHECK(edit_distance("", "log") == 3);
    CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("closest_match suggests likely typos only")
{
    constexpr std::array keys{"boot"sv, "transition"sv, "remediation"sv, "log"sv};
    CHECK(closest_match("bot", keys) == "boot"sv);
    CHECK(closest_match("transtion", keys) == "transition"sv);
    CHECK(closest_match("remidiation", keys) == "remediation"sv);
    CHECK(closest_match("logs", keys) == "log"sv);
    CHECK_FALSE(closest_match("frobnicate", keys));
    CHECK_FALSE(closest_match("xyz", keys));
    CHECK_FALSE(closest_match("anything", std::span<const std::string_view>{}));
    constexpr std::array levels{"debug"sv, "info"sv, "notice"sv, "warning"sv, "err"sv};
    CHECK(closest_match("error", levels) == "err"sv);
    CHECK(closest_match("warn", levels) == "warning"sv);
}
