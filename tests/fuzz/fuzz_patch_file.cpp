// SPDX-License-Identifier: GPL-2.0-only
//
// Fuzz target: a patch module (.ko), as Install gets it from any caller polkit allows. Whatever
// the bytes, PatchFile::parse() (libelf) names what is wrong or returns a patch whose every
// string is printable where it is shown (a name that is a valid patch name, a description
// that is valid UTF-8).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/text.hpp"
#include "store/patch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace livepatchd;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    auto patch = PatchFile::parse(bytes, "fuzz.ko");
    if (!patch) {
        if (patch.error().message.empty())
            std::abort();
        return 0;
    }
    if (!is_valid_patch_name(patch->name) || !is_valid_utf8(patch->description) ||
        !is_valid_utf8(patch->vermagic) || patch->built_for.empty())
        std::abort();
    return 0;
}
