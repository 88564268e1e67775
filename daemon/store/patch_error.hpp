// SPDX-License-Identifier: GPL-2.0-only
//
// The named outcomes of checking, installing and removing a patch file. Each one is an answer a
// caller can act on ("rebuild it for this kernel", "remove the old one first"), so the D-Bus
// layer maps each to its own error name (docs/dbus-api.md) instead of a bare errno.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.hpp"

namespace livepatchd {

enum class PatchErrc {
    io,                 // a system call failed; Error::errnum says why
    invalid_path,       // not absolute, a ".." component, a symbolic link, too long
    not_regular_file,   // a directory, device, FIFO, socket
    too_large,          // larger than patch_file_max_size
    not_elf,            // no ELF magic
    wrong_architecture, // ELF, but not ELF64 little-endian x86-64
    not_a_module,       // not a relocatable object with .modinfo and .gnu.linkonce.this_module
    malformed,          // headers or sections point outside the file
    not_a_patch,        // a kernel module without lpshim_patch=Y
    invalid_modinfo,    // name= or vermagic= missing or unusable
    kernel_mismatch,    // built for another kernel release
    invalid_relocations, // livepatch relocations (.klp.rela, .klp.sym) the kernel would refuse
    already_installed,  // a patch of that name is in the store
    not_installed,      // no patch of that name in the store
    invalid_name,       // a name that no kernel module can have
    tampered,           // a stored file that no longer matches what the store recorded
};

// "NotElf", "KernelMismatch", ...: the last part of the D-Bus error name
// org.livepatchd.LivePatch1.Error.<name>, and what logs and tests print.
std::string_view to_string(PatchErrc code);

struct PatchError : Error {
    PatchErrc code = PatchErrc::io;

    PatchError() = default;
    PatchError(PatchErrc c, int errnum, std::string message)
        : Error{errnum, std::move(message)}, code(c)
    {
    }
    bool operator==(const PatchError&) const = default;
};

template <typename T>
using PatchResult = Result<T, PatchError>;

} // namespace livepatchd
