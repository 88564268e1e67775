// SPDX-License-Identifier: GPL-2.0-only
//
// Fuzz target: /etc/livepatchd/livepatchd.json. Whatever the bytes, parse_config() returns a
// Config or an Error (never throws, never crashes), and a Config it accepts survives to_json()
// and parse_config() again unchanged.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace livepatchd;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto config = parse_config(text, "fuzz.json");
    if (!config)
        return 0;
    auto again = parse_config(to_json(*config).dump(), "again.json");
    if (!again || !(*again == *config))
        std::abort();
    return 0;
}
