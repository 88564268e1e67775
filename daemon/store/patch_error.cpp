// SPDX-License-Identifier: GPL-2.0-only
#include "store/patch_error.hpp"

namespace livepatchd {

std::string_view to_string(PatchErrc code)
{
    switch (code) {
    case PatchErrc::io: return "IOError";
    case PatchErrc::invalid_path: return "InvalidPath";
    case PatchErrc::not_regular_file: return "NotRegularFile";
    case PatchErrc::too_large: return "TooLarge";
    case PatchErrc::not_elf: return "NotElf";
    case PatchErrc::wrong_architecture: return "WrongArchitecture";
    case PatchErrc::not_a_module: return "NotAModule";
    case PatchErrc::malformed: return "Malformed";
    case PatchErrc::not_a_patch: return "NotAPatch";
    case PatchErrc::invalid_modinfo: return "InvalidModinfo";
    case PatchErrc::kernel_mismatch: return "KernelMismatch";
    case PatchErrc::invalid_relocations: return "InvalidRelocations";
    case PatchErrc::already_installed: return "AlreadyInstalled";
    case PatchErrc::not_installed: return "NotInstalled";
    case PatchErrc::invalid_name: return "InvalidName";
    case PatchErrc::tampered: return "Tampered";
    }
    return "IOError";
}

} // namespace livepatchd
