// SPDX-License-Identifier: GPL-2.0-only
//
// "Did you mean ...?" for mistyped configuration keys, enum values and commands.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace livepatchd {

// Number of single-character insertions, deletions, substitutions and adjacent transpositions
// turning a into b.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to word, if it is close enough to be a likely typo (two edits, or a
// third of the word's length for longer words, or word being a prefix of at least three
// characters); the first one on ties.
std::optional<std::string_view> closest_match(std::string_view word,
                                              std::span<const std::string_view> candidates);

} // namespace livepatchd
