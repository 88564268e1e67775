// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/kmod_patch_control.hpp"

#include <fcntl.h>
#include <libkmod.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <string>

#include "common/small_file.hpp"
#include "kernel/pending_tasks.hpp"
#include "common/unique_fd.hpp"

namespace livepatchd {

namespace {

constexpr std::string_view shim_name = "lpshim";

std::string errno_text(int errnum)
{
    return std::strerror(errnum);
}

struct ModuleUnref {
    void operator()(kmod_module* m) const { kmod_module_unref(m); }
};
using ModulePtr = std::unique_ptr<kmod_module, ModuleUnref>;

// What the kernel's refusal of a patch module means, in words that say where to look: the
// kernel logs the cause (lpshim: ..., docs/kernel-messages.md).
std::string load_failure(std::string_view name, int errnum)
{
    std::string text = "loading the module of " + std::string(name) + " failed: " +
                       errno_text(errnum);
    switch (errnum) {
    case EEXIST:
        text += " (a module of that name is loaded already)";
        break;
    case ENOEXEC:
        text += " (not a module for the running kernel)";
        break;
    default:
        text += "; the kernel log says why: journalctl -k -g lpshim";
        break;
    }
    return text;
}

} // namespace

Result<std::unique_ptr<KmodPatchControl>> KmodPatchControl::create(
    std::filesystem::path sysfs_root, std::filesystem::path debugfs_root)
{
    kmod_ctx* ctx = kmod_new(nullptr, nullptr);
    if (!ctx)
        return Error{ENOMEM, "cannot start libkmod (kmod_new failed)"};
    if (kmod_load_resources(ctx) < 0) {
        // Lookups by name need modules.dep; loading from a path does not. Not fatal here:
        // load_shim() says what is missing if it comes to that.
    }
    return std::unique_ptr<KmodPatchControl>(
        new KmodPatchControl(ctx, std::move(sysfs_root), std::move(debugfs_root)));
}

KmodPatchControl::KmodPatchControl(kmod_ctx* ctx, std::filesystem::path sysfs_root,
                                   std::filesystem::path debugfs_root)
    : ctx_(ctx), lpshim_dir_(sysfs_root / "kernel" / "lpshim"),
      tasks_file_(debugfs_root / "lpshim" / "tasks")
{
}

KmodPatchControl::~KmodPatchControl()
{
    kmod_unref(ctx_);
}

Result<void> KmodPatchControl::load_shim()
{
    std::error_code ec;
    if (std::filesystem::is_directory(lpshim_dir_, ec))
        return {};
    kmod_list* list = nullptr;
    int r = kmod_module_new_from_lookup(ctx_, std::string(shim_name).c_str(), &list);
    if (r < 0 || !list)
        return Error{ENOENT, "lpshim.ko is not installed for the running kernel: install it "
                             "under /lib/modules/$(uname -r) and run depmod"};
    ModulePtr module(kmod_module_get_module(list));
    kmod_module_unref_list(list);
    r = kmod_module_probe_insert_module(module.get(), 0, nullptr, nullptr, nullptr, nullptr);
    if (r < 0 && r != -EEXIST)
        return Error{-r, "loading lpshim.ko (" +
                             std::string(kmod_module_get_path(module.get())
                                             ? kmod_module_get_path(module.get())
                                             : "lpshim") +
                             ") failed: " + errno_text(-r) +
                             "; the kernel log says why: journalctl -k -g lpshim"};
    if (!std::filesystem::is_directory(lpshim_dir_, ec))
        return Error{ENODEV, "lpshim.ko is loaded but " + lpshim_dir_.string() + " is missing"};
    return {};
}

Result<void> KmodPatchControl::apply(std::string_view name, int module_fd)
{
    if (!std::filesystem::is_directory(lpshim_dir_))
        return Error{ENODEV, "lpshim.ko is not loaded"};
    if (::syscall(SYS_finit_module, module_fd, "", 0) < 0) {
        const int errnum = errno;
        return Error{errnum, load_failure(name, errnum)};
    }
    return {};
}

Result<void> KmodPatchControl::unload(std::string_view name)
{
    kmod_module* raw = nullptr;
    int r = kmod_module_new_from_name(ctx_, std::string(name).c_str(), &raw);
    if (r < 0)
        return Error{-r, "cannot look up module " + std::string(name) + ": " + errno_text(-r)};
    ModulePtr module(raw);
    r = kmod_module_remove_module(module.get(), KMOD_REMOVE_NOWAIT);
    if (r < 0 && r != -ENOENT)
        return Error{-r, "removing module " + std::string(name) + " failed: " + errno_text(-r)};
    return {};
}

Result<void> KmodPatchControl::write_attribute(std::string_view patch,
                                               std::string_view attribute,
                                               std::string_view value) const
{
    const std::filesystem::path path = lpshim_dir_ / std::string(patch) / std::string(attribute);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
        return Error{errno == ENOENT ? ENODEV : errno,
                     "cannot open " + path.string() + ": " + errno_text(errno)};
    const std::string text = std::string(value) + "\n";
    const ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0)
        return Error{errno, "writing " + std::string(value) + " to " + path.string() +
                                " failed: " + errno_text(errno)};
    return {};
}

Result<void> KmodPatchControl::revert(std::string_view name)
{
    return write_attribute(name, "enabled", "0");
}

Result<void> KmodPatchControl::enable(std::string_view name)
{
    return write_attribute(name, "enabled", "1");
}

Result<void> KmodPatchControl::force(std::string_view name)
{
    return write_attribute(name, "force", "1");
}

Result<void> KmodPatchControl::kick()
{
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(lpshim_dir_, ec)) {
        const auto value = read_small_file(entry.path() / "transition", 64);
        if (value && value->starts_with("1"))
            return write_attribute(entry.path().filename().string(), "signal", "1");
    }
    if (ec)
        return Error{ENODEV, "cannot read " + lpshim_dir_.string() + ": " + ec.message()};
    return Error{ESRCH, "no transition is under way: there is nothing to kick"};
}

Result<std::vector<PendingTask>> KmodPatchControl::pending_tasks() const
{
    auto text = read_small_file(tasks_file_, 64 << 20);
    if (!text)
        return std::move(text).error();
    return parse_pending_tasks(*text);
}

} // namespace livepatchd
