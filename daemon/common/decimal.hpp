// SPDX-License-Identifier: GPL-2.0-only
//
// A decimal number that is the whole of a piece of text: the kernel's files (/proc, sysfs),
// the stop records' names. std::from_chars stops at the first byte that is not a digit and
// says nothing of the rest; here text with anything else in it (a sign an unsigned type cannot
// take, a space, a trailing byte), empty text, or a number the type cannot hold is no number.
#pragma once

#include <charconv>
#include <concepts>
#include <optional>
#include <string_view>

namespace livepatchd {

template <std::integral T>
std::optional<T> parse_decimal(std::string_view text)
{
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

} // namespace livepatchd
