// SPDX-License-Identifier: GPL-2.0-only
//
// KernelView: what the kernel says about live patches, read-only. SysfsKernelView reads
// lpshim's sysfs ABI (shim-kmod/core.c) and /sys/module; tests give a fake. Decisions
// (Reconciler) see the kernel only through this.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace livepatchd {

struct KernelFunction {
    std::string name;
    unsigned long sympos = 1; // 1-based position among symbols of that name, as sysfs shows it
    bool operator==(const KernelFunction&) const = default;
};

struct KernelObject {
    std::string name; // "vmlinux" or a module name
    bool patched = false; // its functions are redirected (for a module: it is loaded)
    std::vector<KernelFunction> functions;
    bool operator==(const KernelObject&) const = default;
};

// One /sys/kernel/lpshim/<patch>/: a patch that is enabled, or in a transition either way.
struct KernelPatch {
    std::string name;
    bool enabled = false;    // target state: patched
    bool transition = false; // tasks are still moving to the target state
    bool replace = false;    // atomic replace: applying it disables every other patch
    bool immediate = false;  // no per-task consistency model
    unsigned stack_order = 0; // 1-based, oldest first
    std::vector<KernelObject> objects;

    bool applied() const { return enabled && !transition; }
    bool operator==(const KernelPatch&) const = default;
};

class KernelView {
public:
    virtual ~KernelView() = default;

    // lpshim.ko is loaded (/sys/kernel/lpshim exists).
    virtual bool shim_loaded() const = 0;
    // lpshim's version (its MODULE_VERSION), or "" when it is not loaded.
    virtual std::string shim_version() const = 0;
    // Every patch lpshim knows, by stack_order.
    virtual Result<std::vector<KernelPatch>> patches() const = 0;
    // A module of that name is loaded. A patch's module stays loaded after its unpatch
    // transition, out of sysfs, until it is removed; it must be removed before the patch can
    // be applied again.
    virtual bool module_loaded(std::string_view name) const = 0;
};

class SysfsKernelView final : public KernelView {
public:
    // sysfs_root is "/sys" on a real system, a directory tree in tests.
    explicit SysfsKernelView(std::filesystem::path sysfs_root = "/sys");

    bool shim_loaded() const override;
    std::string shim_version() const override;
    Result<std::vector<KernelPatch>> patches() const override;
    bool module_loaded(std::string_view name) const override;

private:
    std::filesystem::path root_;
};

} // namespace livepatchd
