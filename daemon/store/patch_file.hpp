// SPDX-License-Identifier: GPL-2.0-only
//
// PatchFile: what livepatchd knows about a patch module (.ko) before it goes near the kernel.
// A patch is an x86-64 kernel module (ELF64 ET_REL, linked by modpost) whose .modinfo carries
// lpshim_patch=Y (docs/writing-patches.md), a name and a vermagic naming the kernel it was built
// for. Checking all of that here turns what would be an opaque finit_module() failure
// ("Exec format error", a line in dmesg) into an answer naming the file and the fix.
//
// The ELF file is read with libelf (ELF_C_READ: pread(), no mapping that a truncation could
// turn into SIGBUS), and every offset is checked against the file's size before use: the file
// comes from a caller and may be anything.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/patch_error.hpp"

namespace livepatchd {

// A kernel module name: KBUILD_MODNAME, which kbuild makes of [A-Za-z0-9_] (it turns '-' into
// '_'), at most MODULE_NAME_LEN - 1 bytes. The name becomes a file name in the store, a sysfs
// directory and part of a D-Bus object path, so nothing else is accepted.
inline constexpr std::size_t patch_name_max = 55;
bool is_valid_patch_name(std::string_view name);

// Far above any real patch (a thousand patched functions make a few MiB) and far below what
// could hurt the daemon or the state directory.
inline constexpr std::uint64_t patch_file_max_size = std::uint64_t{256} << 20;

struct ModinfoEntry {
    std::string key;
    std::string value;
    bool operator==(const ModinfoEntry&) const = default;
};

// The .modinfo section: NUL-separated "key=value" strings, possibly padded with extra NULs.
// Strings without '=' are skipped, as the kernel's get_modinfo() skips them.
std::vector<ModinfoEntry> parse_modinfo(std::string_view section);

// The release a vermagic names: its first word ("6.1.0-56-amd64 SMP preempt mod_unload ...").
std::string_view kernel_release_of(std::string_view vermagic);

// What a patch needs of one object through livepatch relocations (docs/klp-convert.md): the
// symbols it references there that are not exported (static functions and data).
struct LivepatchObject {
    std::string name;         // "vmlinux" or a module's name
    std::size_t symbols = 0;  // distinct .klp.sym.<name>.* symbols its relocations use
    bool operator==(const LivepatchObject&) const = default;
};

struct PatchFile {
    std::string name;        // modinfo name=: the module name, the patch's name everywhere
    std::string vermagic;    // modinfo vermagic=, whole
    std::string built_for;   // its first word: the kernel release
    std::string description; // modinfo description=, or empty
    std::string srcversion;  // modinfo srcversion=, or empty
    std::vector<ModinfoEntry> modinfo; // every entry, in file order
    // The objects whose non-exported symbols the patch references, in the order of the
    // relocation sections; empty for a patch that uses exported symbols only.
    std::vector<LivepatchObject> livepatch_objects;

    // Reads and checks the file: a patch module for x86-64 with a usable name and vermagic.
    // Does not look at the kernel release. origin names the file in messages.
    static PatchResult<PatchFile> read(int fd, std::string_view origin);
    // The same checks on bytes in memory (the fuzzer's entry point).
    static PatchResult<PatchFile> parse(std::string_view bytes, std::string_view origin);

    // read(), then the release check: the patch must be built for kernel_release (normally
    // uname -r; a parameter so that tests choose it). The path is opened as given, following
    // symbolic links; PatchStore applies the stricter rules for files that callers name.
    static PatchResult<PatchFile> validate(const std::filesystem::path& path,
                                           std::string_view kernel_release);
    static PatchResult<PatchFile> validate(int fd, std::string_view origin,
                                           std::string_view kernel_release);

    // kernel_mismatch unless built_for == kernel_release.
    PatchResult<void> check_kernel(std::string_view origin,
                                   std::string_view kernel_release) const;
};

} // namespace livepatchd
