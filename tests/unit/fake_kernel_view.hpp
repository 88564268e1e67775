// SPDX-License-Identifier: GPL-2.0-only
//
// A KernelView the test sets up by hand.
#pragma once

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kernel/kernel_view.hpp"

namespace livepatchd::test {

class FakeKernelView final : public KernelView {
public:
    bool loaded = true;
    std::string version = "0.1.0";
    std::vector<KernelPatch> kernel_patches;
    std::set<std::string, std::less<>> modules;
    std::optional<Error> failure;

    // An applied patch on top of the stack (its module loaded).
    FakeKernelView& applied(const std::string& name, bool replace = false)
    {
        return add(name, true, false, replace);
    }
    FakeKernelView& add(const std::string& name, bool enabled, bool transition,
                        bool replace = false)
    {
        KernelPatch patch;
        patch.name = name;
        patch.enabled = enabled;
        patch.transition = transition;
        patch.replace = replace;
        patch.stack_order = static_cast<unsigned>(kernel_patches.size() + 1);
        patch.objects.push_back({"vmlinux", true, {{"cmdline_proc_show", 1}}});
        kernel_patches.push_back(std::move(patch));
        modules.insert(name);
        return *this;
    }

    bool shim_loaded() const override { return loaded; }
    std::string shim_version() const override { return loaded ? version : ""; }
    Result<std::vector<KernelPatch>> patches() const override
    {
        if (failure)
            return *failure;
        return kernel_patches;
    }
    bool module_loaded(std::string_view name) const override
    {
        return modules.find(name) != modules.end();
    }
};

} // namespace livepatchd::test
