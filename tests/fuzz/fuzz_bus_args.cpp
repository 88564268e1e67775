// SPDX-License-Identifier: GPL-2.0-only
//
// Fuzz target: the D-Bus arguments every caller may send before polkit is asked, through the
// validation the adapter runs (PatchOperations::check_*, patch object paths, printable()) on a
// store and a fake kernel. Whatever the bytes: a named outcome, never a crash, and every text
// that goes back on the bus is valid UTF-8.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include <unistd.h>

#include "common/text.hpp"
#include "dbus/manager.hpp"
#include "service/patch_operations.hpp"
#include "store/patch_file.hpp"

namespace {

using namespace livepatchd;

class EmptyKernel final : public KernelView {
public:
    bool shim_loaded() const override { return true; }
    std::string shim_version() const override { return "0"; }
    Result<std::vector<KernelPatch>> patches() const override
    {
        KernelPatch p;
        p.name = "lp_moving";
        p.enabled = true;
        p.transition = true;
        return std::vector<KernelPatch>{p};
    }
    bool module_loaded(std::string_view) const override { return false; }
};

class NoControl final : public PatchControl {
public:
    Result<void> apply(std::string_view, int) override { std::abort(); }
    Result<void> unload(std::string_view) override { std::abort(); }
    Result<void> revert(std::string_view) override { std::abort(); }
    Result<void> enable(std::string_view) override { std::abort(); }
    Result<void> kick() override { std::abort(); }
    Result<void> force(std::string_view) override { std::abort(); }
    Result<std::vector<PendingTask>> pending_tasks() const override
    {
        return std::vector<PendingTask>{};
    }
};

class NoStorage final : public DesiredStateStorage {
public:
    Result<DesiredState> load() const override { return DesiredState{}; }
    Result<void> save(const DesiredState&) const override { std::abort(); }
};

struct World {
    std::filesystem::path dir;
    PatchStore store;
    EmptyKernel kernel;
    NoControl control;
    NoStorage storage;
    PatchOperations operations;

    static std::filesystem::path make_dir()
    {
        char templ[] = "/tmp/livepatchd-fuzz-XXXXXX";
        if (!::mkdtemp(templ))
            std::abort();
        return templ;
    }
    World()
        : dir(make_dir()), store(PatchStore::open(dir).value()),
          operations(OperationsContext{store, storage, kernel, control, "6.1.0-56-amd64",
                                       "0123456789abcdef0123456789abcdef"})
    {
        (void)operations.load();
    }
    ~World() { std::filesystem::remove_all(dir); }
};

template <typename T>
void check(const OpResult<T>& r)
{
    if (!r && !is_valid_utf8(printable(r.error().message)))
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static World world;
    // A D-Bus string is valid UTF-8 without NULs: sd-bus refuses anything else before any
    // handler runs. The fuzzer's bytes are used as they come, and made to fit.
    std::string argument(reinterpret_cast<const char*>(data), size);
    std::erase(argument, '\0');
    if (!is_valid_utf8(argument))
        argument = printable(argument);
    check(world.operations.check_apply(argument));
    check(world.operations.check_revert(argument));
    check(world.operations.check_remove(argument));
    check(world.operations.check_force(argument));
    (void)dbus::patch_name_from_path(argument.c_str());
    if (is_valid_patch_name(argument) &&
        dbus::patch_name_from_path(dbus::patch_object_path(argument).c_str()) != argument)
        std::abort();
    if (!is_valid_utf8(printable(std::string_view(reinterpret_cast<const char*>(data), size))))
        std::abort();
    return 0;
}
