// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/kernel_view.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <system_error>

namespace livepatchd {

namespace {

namespace fs = std::filesystem;

// The first line of a sysfs attribute, or nullopt when it cannot be read (the patch went away
// between the listing and the read).
std::optional<std::string> read_attribute(const fs::path& path)
{
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line))
        return std::nullopt;
    return line;
}

bool read_flag(const fs::path& path)
{
    const auto value = read_attribute(path);
    return value && *value == "1";
}

unsigned read_unsigned(const fs::path& path)
{
    const auto value = read_attribute(path);
    if (!value)
        return 0;
    try {
        return static_cast<unsigned>(std::stoul(*value));
    } catch (const std::exception&) {
        return 0;
    }
}

KernelFunction parse_function_directory(const std::string& name)
{
    // "<function>,<sympos>"
    KernelFunction function{name, 1};
    const std::size_t comma = name.rfind(',');
    if (comma != std::string::npos) {
        function.name = name.substr(0, comma);
        try {
            function.sympos = std::stoul(name.substr(comma + 1));
        } catch (const std::exception&) {
            function = KernelFunction{name, 1};
        }
    }
    return function;
}

std::vector<fs::path> subdirectories(const fs::path& path)
{
    std::vector<fs::path> found;
    std::error_code ec;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code type_ec;
        // A sysfs directory of a kobject is a directory, not a link; links (holders) skipped.
        if (it->is_directory(type_ec) && !it->is_symlink(type_ec))
            found.push_back(it->path());
    }
    std::sort(found.begin(), found.end());
    return found;
}

} // namespace

SysfsKernelView::SysfsKernelView(fs::path sysfs_root) : root_(std::move(sysfs_root)) {}

bool SysfsKernelView::shim_loaded() const
{
    std::error_code ec;
    return fs::is_directory(root_ / "kernel" / "lpshim", ec);
}

std::string SysfsKernelView::shim_version() const
{
    if (!shim_loaded())
        return {};
    return read_attribute(root_ / "module" / "lpshim" / "version").value_or("");
}

Result<std::vector<KernelPatch>> SysfsKernelView::patches() const
{
    const fs::path lpshim = root_ / "kernel" / "lpshim";
    std::error_code ec;
    if (!fs::is_directory(lpshim, ec))
        return std::vector<KernelPatch>{};
    // Listing errors below are "went away meanwhile"; an unreadable root is not.
    if (fs::directory_iterator probe(lpshim, ec); ec)
        return Error{ec.value(), lpshim.native() + ": cannot read: " + ec.message()};
    std::vector<KernelPatch> patches;
    for (const fs::path& directory : subdirectories(lpshim)) {
        const auto enabled = read_attribute(directory / "enabled");
        if (!enabled)
            continue; // went away meanwhile
        KernelPatch patch;
        patch.name = directory.filename().native();
        patch.enabled = *enabled == "1";
        patch.transition = read_flag(directory / "transition");
        patch.replace = read_flag(directory / "replace");
        patch.immediate = read_flag(directory / "immediate");
        patch.stack_order = read_unsigned(directory / "stack_order");
        for (const fs::path& object_directory : subdirectories(directory)) {
            KernelObject object;
            object.name = object_directory.filename().native();
            object.patched = read_flag(object_directory / "patched");
            for (const fs::path& function_directory : subdirectories(object_directory))
                object.functions.push_back(
                    parse_function_directory(function_directory.filename().native()));
            patch.objects.push_back(std::move(object));
        }
        patches.push_back(std::move(patch));
    }
    std::stable_sort(patches.begin(), patches.end(),
                     [](const KernelPatch& a, const KernelPatch& b) {
                         return a.stack_order < b.stack_order;
                     });
    return patches;
}

bool SysfsKernelView::module_loaded(std::string_view name) const
{
    // Built-in modules have a /sys/module directory too, but no initstate.
    return read_attribute(root_ / "module" / std::string(name) / "initstate").has_value();
}

} // namespace livepatchd
