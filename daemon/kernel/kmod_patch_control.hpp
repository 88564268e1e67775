// SPDX-License-Identifier: GPL-2.0-only
//
// KmodPatchControl: PatchControl on a real kernel. Patch modules are loaded with
// finit_module(2) on the fd the store checked (libkmod 30 can only insert from a path, which
// would be opened again), lpshim.ko and removals go through libkmod (delete_module); transitions are steered through lpshim's sysfs ABI
// (docs/sysfs-abi.md) and pending tasks read from /sys/kernel/debug/lpshim/tasks.
//
// lpshim.ko itself is found by name in /lib/modules/<release> (modules.dep, as modprobe finds
// it): it is installed with the kernel's other modules, never loaded from a path a caller names.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/patch_control.hpp"

struct kmod_ctx;

namespace livepatchd {

class KmodPatchControl final : public PatchControl {
public:
    // sysfs_root and debugfs_root are "/sys" and "/sys/kernel/debug" on a real system.
    static Result<std::unique_ptr<KmodPatchControl>> create(
        std::filesystem::path sysfs_root = "/sys",
        std::filesystem::path debugfs_root = "/sys/kernel/debug");
    ~KmodPatchControl() override;

    // Loads lpshim.ko unless it is loaded. Errors name the module and what to install.
    Result<void> load_shim();

    Result<void> apply(std::string_view name, int module_fd) override;
    Result<void> unload(std::string_view name) override;
    Result<void> revert(std::string_view name) override;
    Result<void> enable(std::string_view name) override;
    Result<void> kick() override;
    Result<void> force(std::string_view name) override;
    Result<std::vector<PendingTask>> pending_tasks() const override;

private:
    KmodPatchControl(kmod_ctx* ctx, std::filesystem::path sysfs_root,
                     std::filesystem::path debugfs_root);

    // Writes value to /sys/kernel/lpshim/<patch>/<attribute> in one write.
    Result<void> write_attribute(std::string_view patch, std::string_view attribute,
                                 std::string_view value) const;

    kmod_ctx* ctx_;
    std::filesystem::path lpshim_dir_;
    std::filesystem::path tasks_file_;
};

} // namespace livepatchd
