// SPDX-License-Identifier: GPL-2.0-only
//
// Fuzz target: <state>/desired.json and <state>/transition.json, the state files livepatchd
// reads back at every start. Whatever the bytes: a state or an error, and a state that is
// accepted is written and read back unchanged.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "service/transition_watcher.hpp"
#include "store/desired_state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace livepatchd;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)parse_transition_record(text, "0123456789abcdef0123456789abcdef");
    auto state = parse_desired_state(text, "fuzz.json");
    if (!state)
        return 0;
    auto again = parse_desired_state(to_desired_state_json(*state), "again.json");
    if (!again || !(*again == *state))
        std::abort();
    return 0;
}
