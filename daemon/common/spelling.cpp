// SPDX-License-Identifier: GPL-2.0-only
#include "common/spelling.hpp"

#include <algorithm>
#include <vector>

namespace livepatchd {

std::size_t edit_distance(std::string_view a, std::string_view b)
{
    // Optimal string alignment distance: Levenshtein plus the transposition of two adjacent
    // characters, the most common typo ("--jsno"). Inputs are short: keys, values, commands.
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i)
        d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j)
        d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

std::optional<std::string_view> closest_match(std::string_view word,
                                              std::span<const std::string_view> candidates)
{
    const std::size_t allowed = std::max<std::size_t>(2, word.size() / 3);
    std::optional<std::string_view> best;
    std::size_t best_distance = allowed + 1;
    for (std::string_view candidate : candidates) {
        std::size_t d = edit_distance(word, candidate);
        // A truncated word ("warn", "tran") is a typo too, however many letters are missing.
        if (d > allowed && word.size() >= 3 && candidate.starts_with(word))
            d = allowed;
        if (d < best_distance) {
            best = candidate;
            best_distance = d;
        }
    }
    return best;
}

} // namespace livepatchd
