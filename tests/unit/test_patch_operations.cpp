// SPDX-License-Identifier: GPL-2.0-only
//
// PatchOperations over a real store and fakes for the kernel and the desired state's storage:
// every change saved or rolled back once; a desired state that cannot be read is never
// overwritten; a crash between saving and acting is settled at the next start from what the
// kernel shows; a failed save is an error, not a log line; the boot apply stacks nothing above
// a patch it could not apply; the file loaded is the file checked (Tampered otherwise).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fcntl.h>

#include <functional>
#include <map>
#include <new>

#include "common/fault.hpp"
#include "elf_builder.hpp"
#include "fake_kernel_view.hpp"
#include "service/event_sink.hpp"
#include "service/patch_operations.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using namespace livepatchd::test;

namespace {

const std::string this_kernel = "6.1.0-56-amd64";
const std::string boot = "0123456789abcdef0123456789abcdef";

struct MemoryStorage final : DesiredStateStorage {
    std::optional<Error> load_error;
    bool fail_save = false;
    std::optional<unsigned> fail_from_save; // saves made before the first that fails
    mutable DesiredState saved;
    mutable unsigned saves = 0;
    Result<DesiredState> load() const override
    {
        if (load_error)
            return *load_error;
        return saved;
    }
    Result<void> save(const DesiredState& state) const override
    {
        if (fail_save || (fail_from_save && saves >= *fail_from_save))
            return Error{ENOSPC, "desired.json: cannot write: No space left on device"};
        saved = state;
        ++saves;
        return {};
    }
};

struct FakeControl final : PatchControl {
    explicit FakeControl(FakeKernelView& k) : kernel(k) {}
    FakeKernelView& kernel;
    std::set<std::string> refuse;
    std::set<std::string> refuse_revert;
    std::set<std::string> replaces; // loaded as atomic replaces
    bool complete_within_load = false; // the transition completes in finit_module (immediate)
    std::vector<std::string> loaded;
    Result<void> apply(std::string_view name, int fd) override
    {
        REQUIRE(fd >= 0);
        if (refuse.contains(std::string(name)))
            return Error{EINVAL, "finit_module: Invalid argument"};
        loaded.emplace_back(name);
        const bool replace = replaces.contains(std::string(name));
        if (replace && complete_within_load)
            kernel.kernel_patches.clear(); // completed in finit_module: the rest discarded
        kernel.add(std::string(name), true, !complete_within_load, replace);
        return {};
    }
    std::set<std::string> refuse_unload;
    std::map<std::string, int> in_use; // how many more removals find the module in use
    std::vector<std::string> unloaded; // tried, in order
    Result<void> unload(std::string_view name) override
    {
        unloaded.emplace_back(name);
        if (auto it = in_use.find(std::string(name)); it != in_use.end() && it->second > 0) {
            --it->second;
            return Error{EWOULDBLOCK, "removing module " + std::string(name) +
                                          " failed: Resource temporarily unavailable"};
        }
        if (refuse_unload.contains(std::string(name)))
            return Error{EBUSY, "delete_module " + std::string(name) + ": Device or resource busy"};
        return {};
    }
    Result<void> revert(std::string_view name) override
    {
        if (refuse_revert.contains(std::string(name)))
            return Error{EPERM, "write to enabled: Operation not permitted"};
        for (KernelPatch& p : kernel.kernel_patches)
            if (p.name == name) {
                p.enabled = false;
                p.transition = true;
            }
        return {};
    }
    Result<void> enable(std::string_view name) override
    {
        for (KernelPatch& p : kernel.kernel_patches)
            if (p.name == name)
                p.enabled = true;
        return {};
    }
    Result<void> kick() override { return {}; }
    Result<void> force(std::string_view) override { return {}; }
    Result<std::vector<PendingTask>> pending_tasks() const override
    {
        return std::vector<PendingTask>{};
    }
    void complete()
    {
        std::erase_if(kernel.kernel_patches,
                      [](const KernelPatch& p) { return p.transition && !p.enabled; });
        for (KernelPatch& p : kernel.kernel_patches)
            p.transition = false;
    }
};

// The patches whose state or properties the operations said changed.
struct ChangedPatches final : NullEventSink {
    std::vector<std::string> names;
    void patch_changed(std::string_view name) override { names.emplace_back(name); }
};

struct SimulatedCrash {
    std::string at;
};

struct World {
    TempDir dir;
    PatchStore store = open_store();
    MemoryStorage storage;
    FakeKernelView kernel;
    FakeControl control{kernel};
    std::uint64_t boottime_usec = 5'000'000;
    std::optional<std::uint64_t> oops_count = 0; // the kernel's, at an apply

    PatchStore open_store()
    {
        auto s = PatchStore::open(dir.path / "state");
        REQUIRE(s);
        return std::move(s).value();
    }
    void install(const std::string& name)
    {
        ElfSpec spec;
        spec.modinfo = patch_modinfo(name);
        const auto path = dir.write(name + ".ko", build_elf(spec));
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        auto r = store.install(std::move(fd), path.native(), this_kernel);
        REQUIRE_MESSAGE(r, r.error().message);
    }
    // Installed and wanted since an earlier boot, where its apply survived the crash-loop
    // guard: the boot apply queues it.
    void wanted_from_earlier_boot(const std::string& name)
    {
        install(name);
        DesiredPatch& p = storage.saved.append(name);
        p.applied_boot_id = "fedcba9876543210fedcba9876543210";
        p.applied_at_usec = 1;
        p.survived_guard = true;
    }
    // A reboot: the kernel has no patch loaded; the store and the saved state stay.
    void new_boot()
    {
        kernel.kernel_patches.clear();
        kernel.modules.clear();
        control.loaded.clear();
    }
    std::unique_ptr<PatchOperations> operations(const std::string& boot_id = boot)
    {
        auto ops = std::make_unique<PatchOperations>(OperationsContext{
            .store = store,
            .storage = storage,
            .kernel = kernel,
            .control = control,
            .kernel_release = this_kernel,
            .boot_id = boot_id,
            .crash_guard_window = std::chrono::seconds(300),
            .realtime = [] { return std::uint64_t{1'700'000'000'000'000}; },
            .boottime = [this] { return boottime_usec; },
            .oops_count = [this] { return oops_count; },
        });
        (void)ops->load();
        return ops;
    }
};

template <typename T>
std::string name_of(const OpResult<T>& r)
{
    if (r)
        return "ok";
    if (const auto* c = std::get_if<OpErrc>(&r.error().code))
        return std::string(to_string(*c));
    if (const auto* c = std::get_if<PatchErrc>(&r.error().code))
        return std::string(to_string(*c));
    return "errno " + std::to_string(r.error().errnum);
}

} // namespace

TEST_CASE("apply: saved as pending, loaded from the checked fd, confirmed")
{
    World w;
    w.install("lp_a");
    auto ops = w.operations();
    CHECK(name_of(ops->check_apply("lp_a")) == "ok");
    REQUIRE(name_of(ops->apply("lp_a")) == "ok");
    CHECK(w.control.loaded == std::vector<std::string>{"lp_a"});
    REQUIRE(w.storage.saved.find("lp_a"));
    CHECK(w.storage.saved.find("lp_a")->pending == PendingAction::none);
    CHECK(w.storage.saved.find("lp_a")->applied_boottime_usec == 5'000'000);
    CHECK(w.storage.saves == 2); // pending, confirmed
    CHECK(name_of(ops->check_apply("lp_a")) == "TransitionInProgress");
    w.control.complete();
    CHECK(name_of(ops->check_apply("lp_a")) == "AlreadyApplied");
}

TEST_CASE("a store file changed after install is refused, and nothing is saved")
{
    World w;
    w.install("lp_a");
    auto ops = w.operations();
    const auto file = w.dir.path / "state/patches/lp_a.ko";
    std::string bytes = w.dir.read("state/patches/lp_a.ko");
    bytes[bytes.find("lpshim_patch=Y")] = 'L';
    w.dir.write("state/patches/lp_a.ko", bytes);
    CHECK(name_of(ops->check_apply("lp_a")) == "ok"); // cheap checks only, before polkit
    auto r = ops->apply("lp_a");
    CHECK(name_of(r) == "Tampered");
    CHECK(w.control.loaded.empty());
    CHECK(w.storage.saves == 0);
}

TEST_CASE("a desired state that cannot be read is never overwritten")
{
    // Issue 17: any load error was taken as "nothing wanted" and the next save overwrote it.
    for (const int errnum : {ENOTSUP, EIO}) {
        CAPTURE(errnum);
        World w;
        w.install("lp_a");
        w.storage.load_error = Error{errnum, "desired.json: written by a newer livepatchd"};
        auto ops = w.operations();
        CHECK_FALSE(ops->desired_available());
        CHECK(name_of(ops->check_apply("lp_a")) == "DesiredStateUnavailable");
        CHECK(name_of(ops->apply("lp_a")) == "DesiredStateUnavailable");
        w.kernel.applied("lp_b");
        ops->transition_ended("lp_b", "unpatched");
        ops->forget_replaced(w.kernel.kernel_patches);
        ops->keep_crash_guard(w.kernel.kernel_patches, 1);
        ops->record_clean_shutdown(0);
        ops->settle(w.kernel.kernel_patches);
        CHECK(w.storage.saves == 0);
        CHECK(w.control.loaded.empty());
    }
    World damaged; // moved aside by the storage: start from nothing, and save again
    damaged.install("lp_a");
    damaged.storage.load_error = Error{EBADMSG, "desired.json: not JSON"};
    auto ops = damaged.operations();
    CHECK(ops->desired_available());
    CHECK(name_of(ops->apply("lp_a")) == "ok");
}

TEST_CASE("SIGKILL between saving an apply and loading: the next start drops it")
{
    World w;
    w.install("lp_a");
    {
        auto ops = w.operations();
        set_fault_hook([](std::string_view at) {
            if (at == "apply-after-save")
                throw SimulatedCrash{std::string(at)};
        });
        CHECK_THROWS_AS((void)ops->apply("lp_a"), SimulatedCrash);
        set_fault_hook(nullptr);
    }
    REQUIRE(w.storage.saved.find("lp_a"));
    CHECK(w.storage.saved.find("lp_a")->pending == PendingAction::apply);
    auto next = w.operations();
    next->settle(w.kernel.kernel_patches);
    CHECK_FALSE(w.storage.saved.find("lp_a")); // its caller got an error: not wanted
    CHECK(w.control.loaded.empty());
}

TEST_CASE("SIGKILL between loading and confirming: the next start confirms it")
{
    World w;
    w.install("lp_a");
    {
        auto ops = w.operations();
        set_fault_hook([](std::string_view at) {
            if (at == "apply-after-load")
                throw SimulatedCrash{std::string(at)};
        });
        CHECK_THROWS_AS((void)ops->apply("lp_a"), SimulatedCrash);
        set_fault_hook(nullptr);
    }
    auto next = w.operations();
    next->settle(w.kernel.kernel_patches);
    REQUIRE(w.storage.saved.find("lp_a"));
    CHECK(w.storage.saved.find("lp_a")->pending == PendingAction::none);
}

TEST_CASE("SIGKILL between saving a revert and writing sysfs: still applied, still wanted")
{
    // Issue 17: the patch stayed applied and was labelled unmanaged.
    World w;
    w.install("lp_a");
    {
        auto ops = w.operations();
        REQUIRE(name_of(ops->apply("lp_a")) == "ok");
        w.control.complete();
        set_fault_hook([](std::string_view at) {
            if (at == "revert-after-save")
                throw SimulatedCrash{std::string(at)};
        });
        CHECK_THROWS_AS((void)ops->revert("lp_a"), SimulatedCrash);
        set_fault_hook(nullptr);
    }
    CHECK(w.storage.saved.find("lp_a")->pending == PendingAction::revert);
    auto next = w.operations();
    next->settle(w.kernel.kernel_patches);
    REQUIRE(w.storage.saved.find("lp_a"));
    CHECK(w.storage.saved.find("lp_a")->pending == PendingAction::none);
    // A revert that reached the kernel before the crash is completed instead.
    REQUIRE(name_of(next->revert("lp_a")) == "ok");
    CHECK_FALSE(w.storage.saved.find("lp_a"));
}

TEST_CASE("a full disk: the apply fails with the error and nothing is loaded")
{
    World w;
    w.install("lp_a");
    auto ops = w.operations();
    w.storage.fail_save = true;
    auto r = ops->apply("lp_a");
    REQUIRE_FALSE(r);
    CHECK(r.error().errnum == ENOSPC);
    CHECK(w.control.loaded.empty());
    CHECK(ops->save_failed());
    CHECK_FALSE(ops->desired().find("lp_a"));
    // A transition that ends while the disk is full: reported, and memory keeps what the
    // file says.
    w.storage.fail_save = false;
    REQUIRE(name_of(ops->apply("lp_a")) == "ok");
    CHECK_FALSE(ops->save_failed());
    w.storage.fail_save = true;
    ops->transition_ended("lp_a", "unpatched");
    CHECK(ops->save_failed());
    CHECK(ops->desired().find("lp_a"));
}

TEST_CASE("a refused apply whose restore fails: the state it leaves is announced")
{
    // The kernel refused the load and the desired state could not be put back: the file wants
    // the patch (its pending record), so it shows as skipped until the next start drops it.
    // PatchStateChanged and the metrics follow patch_changed: without it they keep
    // "installed" while State says "skipped".
    World w;
    w.install("lp_a");
    auto ops = w.operations();
    ChangedPatches changed;
    ops->set_sink(&changed);
    w.control.refuse.insert("lp_a");
    w.storage.fail_from_save = w.storage.saves + 1; // the pending record is saved, not undone
    CHECK(name_of(ops->apply("lp_a")) == "LoadRefused");
    auto all = ops->statuses();
    REQUIRE(all);
    REQUIRE(all->size() == 1);
    CHECK(all->front().state == PatchState::skipped);
    CHECK(changed.names == std::vector<std::string>{"lp_a"});

    SUBCASE("a refusal whose restore is saved announces nothing")
    {
        w.install("lp_b");
        w.control.refuse.insert("lp_b");
        w.storage.fail_from_save.reset();
        changed.names.clear();
        const unsigned saves = w.storage.saves;
        CHECK(name_of(ops->apply("lp_b")) == "LoadRefused");
        CHECK(w.storage.saves == saves + 2); // the pending record, then its undo
        CHECK(w.storage.saved.find("lp_b") == nullptr);
        CHECK(changed.names.empty());
    }

    SUBCASE("a refused revert whose restore fails: still wanted and applied, nothing to say")
    {
        w.install("lp_c");
        w.storage.fail_from_save.reset();
        REQUIRE(name_of(ops->apply("lp_c")) == "ok");
        w.control.complete();
        w.control.refuse_revert.insert("lp_c");
        w.storage.fail_from_save = w.storage.saves + 1;
        changed.names.clear();
        CHECK_FALSE(ops->revert("lp_c"));
        CHECK(changed.names.empty());
    }
}

TEST_CASE("an unpatched patch's module is removed as blocking work, its end said on the loop")
{
    // delete_module() waits for the kernel (30 ms of the loop and two sleeps under emulation):
    // it runs as an operation's work, off the loop; its outcome is said at the work's end.
    World w;
    w.install("lp_a");
    w.install("lp_b");
    w.kernel.modules = {"lp_a", "lp_b"}; // loaded, and lpshim lists neither: unpatched
    w.control.refuse_unload = {"lp_b"};
    auto ops = w.operations();
    ChangedPatches changed;
    ops->set_sink(&changed);
    struct Queued {
        std::function<void()> work, then;
    };
    std::vector<Queued> queued;
    ops->set_work_runner([&queued](std::function<void()> work, std::function<void()> then) {
        queued.push_back({std::move(work), std::move(then)});
    });
    REQUIRE(ops->unload_unpatched(w.kernel.kernel_patches));
    REQUIRE(queued.size() == 1);
    CHECK(ops->busy());
    CHECK(w.control.unloaded.empty()); // not on the loop
    queued[0].work();
    CHECK(w.control.unloaded == std::vector<std::string>{"lp_a", "lp_b"});
    CHECK(changed.names.empty()); // said at its end only
    queued[0].then();
    CHECK_FALSE(ops->busy());
    CHECK(changed.names == std::vector<std::string>{"lp_a"});
    // lp_b's removal was refused: not tried again at every tick; lp_a is gone.
    w.kernel.modules = {"lp_b"};
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
    CHECK(queued.size() == 1);
    // Nothing to remove: no work, so the tick goes on (the boot apply's next patch).
    w.kernel.modules.clear();
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
}

// name applied in this boot, its transition completed and its end told.
void applied_in_this_boot(World& w, PatchOperations& ops, const std::string& name)
{
    REQUIRE(name_of(ops.apply(name)) == "ok");
    w.control.complete();
    ops.transition_ended(name, "patched");
}

TEST_CASE("a patch whose module is still loaded is not removed: its module would stay for good")
{
    // s84: `livepatchctl revert` then `remove` at once. lpshim lets go of an unpatched patch's
    // module a moment after the end (its sysfs entry first): Remove found it no longer listed
    // and deleted the store's copy, and the tick, which only looks at the store's patches,
    // never removed the module.
    World w;
    w.install("lp_a");
    auto ops = w.operations();
    applied_in_this_boot(w, *ops, "lp_a");
    REQUIRE(name_of(ops->revert("lp_a")) == "ok");
    w.control.complete(); // lpshim lists it no more; its module is still loaded
    ops->transition_ended("lp_a", "unpatched");
    REQUIRE(w.kernel.modules.contains("lp_a"));
    const auto refused = ops->remove("lp_a");
    CHECK(name_of(refused) == "StillApplied");
    if (!refused)
        CHECK(refused.error().message ==
              "lp_a's module is still loaded: livepatchd removes it a moment after the revert's "
              "end; try again in a second");
    CHECK(ops->unload_unpatched(w.kernel.kernel_patches));
    CHECK(w.control.unloaded == std::vector<std::string>{"lp_a"});
    w.kernel.modules.clear();
    CHECK(name_of(ops->remove("lp_a")) == "ok");
}

// Works run at once, their ends kept for the case to run: the loop's turn after the work.
struct WorkEnds {
    std::vector<std::function<void()>> ends;
    explicit WorkEnds(PatchOperations& ops)
    {
        ops.set_work_runner([this](std::function<void()> work, std::function<void()> then) {
            work();
            ends.push_back(std::move(then));
        });
    }
    void run_last() { ends.back()(); }
};

TEST_CASE("a module lpshim has not let go of yet is removed once it has")
{
    // CI, 2026-12-07: lpshim lets go of an unpatched patch's module just after its sysfs entry
    // goes; a removal right then found the module in use (EWOULDBLOCK) and was never tried
    // again: the module stayed loaded.
    World w;
    w.install("lp_a");
    w.kernel.modules = {"lp_a"}; // lpshim no longer lists it
    w.control.in_use = {{"lp_a", 2}};
    auto ops = w.operations();
    ChangedPatches changed;
    ops->set_sink(&changed);
    WorkEnds works(*ops);
    // A tick: whether it started a removal, run to its end.
    auto tick = [&] {
        const std::size_t before = works.ends.size();
        if (!ops->unload_unpatched(w.kernel.kernel_patches))
            return false;
        REQUIRE(works.ends.size() == before + 1);
        works.run_last();
        return true;
    };
    REQUIRE(tick()); // in use
    CHECK(changed.names.empty());
    CHECK_FALSE(tick()); // not at once again
    w.boottime_usec += 100'000;
    REQUIRE(tick()); // in use again
    w.boottime_usec += 150'000;
    CHECK_FALSE(tick()); // the wait doubles
    w.boottime_usec += 50'000;
    REQUIRE(tick());
    CHECK(changed.names == std::vector<std::string>{"lp_a"});
    CHECK(w.control.unloaded == std::vector<std::string>{"lp_a", "lp_a", "lp_a"});
    w.kernel.modules.clear();
    w.boottime_usec += 10'000'000;
    CHECK_FALSE(tick());
}

TEST_CASE("an unpatched patch still listed by lpshim is looked at again until it can go")
{
    // No event says when lpshim lets go of an unpatched patch (its sysfs entry, then its
    // module): the tick comes back for it, 0.1 s doubling to 2 s, and gives up after ten.
    World w;
    w.install("lp_a");
    w.kernel.add("lp_a", false, false); // unpatched, still listed
    auto ops = w.operations();
    ChangedPatches changed;
    ops->set_sink(&changed);
    WorkEnds works(*ops);
    CHECK_FALSE(ops->next_removal_usec());
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
    CHECK(ops->next_removal_usec() == w.boottime_usec + 100'000);
    CHECK(w.control.unloaded.empty());
    // Applied again: nothing waits.
    w.kernel.kernel_patches.front().enabled = true;
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
    CHECK_FALSE(ops->next_removal_usec());
    // Unpatched again, and lpshim never lets go: ten looks, then no tick for it.
    w.kernel.kernel_patches.front().enabled = false;
    std::uint64_t waited = 0;
    for (int look = 0; look < 10; ++look) {
        CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
        const auto due = ops->next_removal_usec();
        REQUIRE(due);
        waited += *due - w.boottime_usec;
        w.boottime_usec = *due;
    }
    CHECK(waited == 13'100'000);
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
    CHECK_FALSE(ops->next_removal_usec());
    // It goes at last (an event's tick), its module still in use: that wait has its own
    // tries, from 0.1 s again.
    w.kernel.kernel_patches.clear();
    w.control.in_use = {{"lp_a", 1}};
    REQUIRE(ops->unload_unpatched(w.kernel.kernel_patches));
    works.run_last();
    CHECK(ops->next_removal_usec() == w.boottime_usec + 100'000);
    w.boottime_usec += 100'000;
    REQUIRE(ops->unload_unpatched(w.kernel.kernel_patches));
    works.run_last();
    CHECK(changed.names == std::vector<std::string>{"lp_a"});
    CHECK_FALSE(ops->next_removal_usec());
}

TEST_CASE("a removal wait ends with its patch's removal from the store")
{
    // Left, it would bring a tick for nothing (and a given-up one would stay for good).
    World w;
    w.install("lp_a");
    w.kernel.modules = {"lp_a"};
    w.control.in_use = {{"lp_a", 1}};
    auto ops = w.operations();
    WorkEnds works(*ops);
    REQUIRE(ops->unload_unpatched(w.kernel.kernel_patches));
    works.run_last();
    REQUIRE(ops->next_removal_usec());
    REQUIRE(w.store.remove("lp_a"));
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
    CHECK_FALSE(ops->next_removal_usec());
}

TEST_CASE("a removal that cannot start looks again a second later, a try each time")
{
    // Not at once: the tick would come back again and again while it cannot.
    World w;
    w.install("lp_a");
    w.kernel.add("lp_a", false, false); // unpatched, still listed
    auto ops = w.operations();
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
    w.kernel.kernel_patches.clear(); // let go of
    w.boottime_usec = *ops->next_removal_usec();
    ops->set_work_runner([](std::function<void()>, std::function<void()>) {
        throw std::bad_alloc(); // no memory to queue it
    });
    for (int look = 1; look < 10; ++look) {
        CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
        CHECK(ops->next_removal_usec() == w.boottime_usec + 1'000'000);
        w.boottime_usec += 1'000'000;
    }
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches));
    CHECK_FALSE(ops->next_removal_usec()); // ten tries: given up
    CHECK(w.control.unloaded.empty());
}

TEST_CASE("a module that stays in use is said once, after ten tries")
{
    World w;
    w.install("lp_a");
    w.kernel.modules = {"lp_a"};
    w.control.in_use = {{"lp_a", 1000}};
    auto ops = w.operations();
    WorkEnds works(*ops);
    for (int tried = 0; tried < 11; ++tried) {
        REQUIRE(ops->unload_unpatched(w.kernel.kernel_patches));
        works.run_last();
        if (const auto due = ops->next_removal_usec())
            w.boottime_usec = *due;
    }
    CHECK(w.control.unloaded.size() == 11);
    CHECK_FALSE(ops->next_removal_usec());
    w.boottime_usec += 60'000'000;
    CHECK_FALSE(ops->unload_unpatched(w.kernel.kernel_patches)); // not again
    // A patch forced by livepatchd keeps its module for good: no wait at all.
    World f;
    f.install("lp_f");
    f.kernel.modules = {"lp_f"};
    f.control.in_use = {{"lp_f", 1000}};
    f.storage.saved.forced_boot_id = boot; // forced in this boot
    f.storage.saved.forced = {"lp_f"};
    auto forced = f.operations();
    WorkEnds forced_works(*forced);
    REQUIRE(forced->unload_unpatched(f.kernel.kernel_patches));
    forced_works.run_last();
    CHECK_FALSE(forced->next_removal_usec());
    f.boottime_usec += 60'000'000;
    CHECK_FALSE(forced->unload_unpatched(f.kernel.kernel_patches));
}

TEST_CASE("the boot apply: a patch that cannot be applied stops the queue; it never survives")
{
    // Issue 17: the queue went on, stacking later patches without the one below them.
    World w;
    for (const char* name : {"lp_a", "lp_b", "lp_c"})
        w.install(name);
    // Wanted from an earlier boot that survived the guard.
    for (const char* name : {"lp_a", "lp_b", "lp_c"}) {
        DesiredPatch& p = w.storage.saved.append(name);
        p.applied_boot_id = "fedcba9876543210fedcba9876543210";
        p.applied_at_usec = 1;
        p.survived_guard = true;
    }
    w.control.refuse = {"lp_b"};
    auto ops = w.operations();
    ops->plan_boot_apply({true, {}});
    CHECK(ops->boot_queue_size() == 3);
    CHECK(ops->apply_next_queued(w.kernel.kernel_patches) == "lp_a");
    w.control.complete();
    CHECK_FALSE(ops->apply_next_queued(w.kernel.kernel_patches));
    CHECK(ops->boot_queue_size() == 0);
    CHECK(w.control.loaded == std::vector<std::string>{"lp_a"});
    CHECK(ops->skip_reasons().at("lp_b").find("could not apply it") != std::string::npos);
    CHECK(ops->skip_reasons().at("lp_c").find("lp_b, which comes before it") !=
          std::string::npos);
    // lp_b's record is the earlier boot's, as before the attempt; the guard never marks it.
    CHECK(w.storage.saved.find("lp_b")->applied_boot_id == "fedcba9876543210fedcba9876543210");
    ops->keep_crash_guard(w.kernel.kernel_patches, 0);
    CHECK(w.storage.saved.find("lp_b")->applied_boot_id != boot);
}

TEST_CASE("a clean shutdown inside the guard's window still counts after a boot that applied nothing")
{
    // The first boot applies lp_a and shuts down cleanly inside the crash-loop guard's window;
    // the second boot (livepatchd.apply=0) applies nothing and shuts down cleanly too. The
    // third applies lp_a: its boot ended cleanly. (The record of the first clean shutdown was
    // overwritten by the second's, and the third held lp_a for a crash of the first boot.)
    World w;
    w.install("lp_a");
    const std::string first(32, '1'), second(32, '2'), third(32, '3');
    {
        auto ops = w.operations(first);
        REQUIRE(name_of(ops->apply("lp_a")) == "ok");
        w.control.complete();
        ops->transition_ended("lp_a", "patched");
        ops->keep_crash_guard(w.kernel.kernel_patches, 0); // inside the window
        CHECK_FALSE(w.storage.saved.find("lp_a")->survived_guard);
        ops->record_clean_shutdown(0);
    }
    w.new_boot();
    {
        auto ops = w.operations(second);
        BootFlags held;
        held.apply = false;
        ops->plan_boot_apply({true, held});
        CHECK(ops->boot_queue_size() == 0);
        ops->record_clean_shutdown(0);
    }
    w.new_boot();
    auto ops = w.operations(third);
    ops->plan_boot_apply({true, {}});
    const auto held = ops->skip_reasons().find("lp_a");
    CHECK_MESSAGE(held == ops->skip_reasons().end(),
                  (held == ops->skip_reasons().end() ? "" : held->second));
    CHECK(ops->boot_queue_size() == 1);
    CHECK(ops->apply_next_queued(w.kernel.kernel_patches) == "lp_a");
}

TEST_CASE("an oops no look saw, then a clean shutdown: the patch did not survive")
{
    // An idle service looks at the kernel only at the guard's deadline: an oops after the
    // last look and an admin's reboot marked the patch as having survived.
    World w;
    w.install("lp_a");
    const std::string first(32, '1'), second(32, '2');
    {
        auto ops = w.operations(first);
        REQUIRE(name_of(ops->apply("lp_a")) == "ok");
        w.control.complete();
        ops->transition_ended("lp_a", "patched");
        ops->keep_crash_guard(w.kernel.kernel_patches, 0);
        ops->record_clean_shutdown(1); // the kernel oopsed since that look
    }
    CHECK(w.storage.saved.find("lp_a")->oops_after_apply);
    CHECK_FALSE(w.storage.saved.find("lp_a")->survived_guard);
    w.new_boot();
    auto ops = w.operations(second);
    ops->plan_boot_apply({true, {}});
    CHECK(ops->boot_queue_size() == 0);
    REQUIRE(ops->skip_reasons().contains("lp_a"));
    CHECK(ops->skip_reasons().at("lp_a").starts_with("crash-loop guard: the kernel oopsed in boot " +
                                                     first));
}

TEST_CASE("an oops after one before the start still marks the patch")
{
    // TAINT_DIE never clears: one oops before livepatchd started (nothing of ours) hid every
    // later one, a patch's too. The kernel's oops count tells each.
    World w;
    w.install("lp_a");
    auto ops = w.operations();
    ops->start_oops_watch(1); // an oops before the start
    applied_in_this_boot(w, *ops, "lp_a");
    ops->keep_crash_guard(w.kernel.kernel_patches, 1);
    CHECK_FALSE(w.storage.saved.find("lp_a")->oops_after_apply);
    ops->keep_crash_guard(w.kernel.kernel_patches, 2); // the patch's
    CHECK(w.storage.saved.find("lp_a")->oops_after_apply);
}

TEST_CASE("an oops while livepatchd was down in the same boot is not lost")
{
    // `systemctl restart livepatchd`, or a crash of it, after an oops no look saw: the new
    // instance took the kernel's oopses at its start as seen, and the patch survived.
    World w;
    w.install("lp_a");
    {
        auto ops = w.operations();
        ops->start_oops_watch(0);
        applied_in_this_boot(w, *ops, "lp_a");
        ops->keep_crash_guard(w.kernel.kernel_patches, 0);
    } // the kernel oopses, then livepatchd stops before a look
    SUBCASE("started again in that boot: the oops is new")
    {
        auto ops = w.operations();
        ops->start_oops_watch(1);
        ops->keep_crash_guard(w.kernel.kernel_patches, 1);
        CHECK(w.storage.saved.find("lp_a")->oops_after_apply);
    }
    SUBCASE("a later boot's count says nothing of this one")
    {
        w.new_boot();
        auto ops = w.operations(std::string(32, '2'));
        ops->start_oops_watch(1); // this boot's, before the start
        ops->keep_crash_guard(w.kernel.kernel_patches, 1);
        CHECK_FALSE(w.storage.saved.find("lp_a")->oops_after_apply);
    }
}

TEST_CASE("an oops with no patch to mark, then an apply and a restart: the new patch is not marked")
{
    // Review: only the guard's own saves kept the count accounted for; an Apply's save kept
    // an older one, so a livepatchd started again in this boot (before the transition's end
    // was saved) took that oops as new and marked the patch applied after it.
    World w;
    w.install("lp_b");
    {
        auto ops = w.operations();
        ops->start_oops_watch(0);
        ops->settle(w.kernel.kernel_patches);
        ops->keep_crash_guard(w.kernel.kernel_patches, 1); // an oops: no patch to mark
        REQUIRE(name_of(ops->apply("lp_b")) == "ok");
    } // restarted while lp_b's transition runs
    w.control.complete();
    auto ops = w.operations();
    ops->start_oops_watch(1);
    ops->keep_crash_guard(w.kernel.kernel_patches, 1);
    CHECK_FALSE(w.storage.saved.find("lp_b")->oops_after_apply);
    ops->keep_crash_guard(w.kernel.kernel_patches, 2); // one after lp_b's apply still counts
    CHECK(w.storage.saved.find("lp_b")->oops_after_apply);
}

TEST_CASE("an oops whose record could not be saved is recorded at the next look")
{
    World w;
    w.install("lp_a");
    auto ops = w.operations();
    ops->start_oops_watch(0);
    applied_in_this_boot(w, *ops, "lp_a");
    w.storage.fail_save = true;
    ops->keep_crash_guard(w.kernel.kernel_patches, 1);
    CHECK_FALSE(w.storage.saved.find("lp_a")->oops_after_apply);
    w.storage.fail_save = false;
    ops->keep_crash_guard(w.kernel.kernel_patches, 1);
    CHECK(w.storage.saved.find("lp_a")->oops_after_apply);
}

TEST_CASE("an oops whose record could not be saved does not mark a patch applied after it")
{
    // Review: the failed save kept the guard's count back, so that the next look marks lp_a;
    // that look marked lp_b too, applied after the oops, and held it at the next boot.
    World w;
    w.install("lp_a");
    w.install("lp_b");
    auto ops = w.operations();
    ops->start_oops_watch(0);
    applied_in_this_boot(w, *ops, "lp_a");
    w.storage.fail_save = true;
    ops->keep_crash_guard(w.kernel.kernel_patches, 1); // the kernel oopsed; not saved
    w.storage.fail_save = false;
    SUBCASE("the kernel's count read at lp_b's apply")
    {
        w.oops_count = 1;
    }
    SUBCASE("no count at lp_b's apply: the one the look read counts")
    {
        w.oops_count = std::nullopt;
    }
    applied_in_this_boot(w, *ops, "lp_b");
    ops->keep_crash_guard(w.kernel.kernel_patches, 1);
    CHECK(w.storage.saved.find("lp_a")->oops_after_apply);
    CHECK_FALSE(w.storage.saved.find("lp_b")->oops_after_apply);
    ops->keep_crash_guard(w.kernel.kernel_patches, 2); // one after lp_b's apply
    CHECK(w.storage.saved.find("lp_b")->oops_after_apply);
}

TEST_CASE("a patch's count at its apply past the kernel's now (a hand-edited file) hides no oops")
{
    World w;
    w.install("lp_a");
    {
        auto ops = w.operations();
        ops->start_oops_watch(0);
        applied_in_this_boot(w, *ops, "lp_a");
    }
    w.storage.saved.find("lp_a")->applied_oops_count = UINT64_MAX;
    auto ops = w.operations(); // restarted in the same boot
    ops->start_oops_watch(0);
    ops->keep_crash_guard(w.kernel.kernel_patches, 1);
    CHECK(w.storage.saved.find("lp_a")->oops_after_apply);
}

TEST_CASE("a clean shutdown whose oops count cannot be read is not counted")
{
    World w;
    w.install("lp_a");
    auto ops = w.operations();
    ops->start_oops_watch(0);
    applied_in_this_boot(w, *ops, "lp_a");
    ops->record_clean_shutdown(std::nullopt);
    CHECK_FALSE(w.storage.saved.find("lp_a")->survived_guard);
    CHECK(w.storage.saved.clean_shutdown_boot_id.empty());
}

TEST_CASE("an atomic replace's end: what it replaced is no longer wanted, without a look")
{
    // The end (lpshim's event, on the event loop) reads nothing from the kernel: what the
    // kernel had below the replace was read off the loop before its load, and is dropped in
    // the end's own save.
    World w;
    for (const char* name : {"lp_a", "lp_b", "lp_r", "lp_x"})
        w.install(name);
    w.control.replaces = {"lp_r"};
    auto ops = w.operations();
    const auto wanted = [&] {
        std::vector<std::string> names;
        for (const DesiredPatch& p : ops->desired().patches)
            names.push_back(p.name);
        return names;
    };
    for (const char* name : {"lp_a", "lp_b", "lp_r"}) {
        REQUIRE(name_of(ops->apply(name)) == "ok");
        w.control.complete();
        ops->transition_ended(name, "patched");
    }
    CHECK(wanted() == std::vector<std::string>{"lp_r"});
    CHECK(w.storage.saved.find("lp_a") == nullptr);
    CHECK(w.storage.saved.find("lp_b") == nullptr);
    // Applied on top of the replace: stays.
    REQUIRE(name_of(ops->apply("lp_x")) == "ok");
    w.control.complete();
    ops->transition_ended("lp_x", "patched");
    ops->forget_replaced(w.kernel.kernel_patches);
    CHECK(wanted() == std::vector<std::string>{"lp_r", "lp_x"});

    SUBCASE("a replace whose transition completed within its load")
    {
        // lpshim discarded the replaced patches before the apply could read them: what the
        // kernel had was read before the load.
        World v;
        for (const char* name : {"lp_a", "lp_r"})
            v.install(name);
        v.control.replaces = {"lp_r"};
        auto ops2 = v.operations();
        REQUIRE(name_of(ops2->apply("lp_a")) == "ok");
        v.control.complete();
        ops2->transition_ended("lp_a", "patched");
        v.control.complete_within_load = true;
        REQUIRE(name_of(ops2->apply("lp_r")) == "ok");
        ops2->transition_ended("lp_r", "patched");
        REQUIRE(ops2->desired().patches.size() == 1);
        CHECK(ops2->desired().patches.front().name == "lp_r");
    }

    SUBCASE("a replace reverted before any look still replaced")
    {
        World v;
        for (const char* name : {"lp_b", "lp_r"})
            v.install(name);
        v.control.replaces = {"lp_r"};
        auto ops2 = v.operations();
        REQUIRE(name_of(ops2->apply("lp_b")) == "ok");
        v.control.complete();
        ops2->transition_ended("lp_b", "patched");
        REQUIRE(name_of(ops2->apply("lp_r")) == "ok");
        ops2->transition_ended("lp_r", "patched");
        ops2->transition_ended("lp_r", "unpatched");
        CHECK(ops2->desired().patches.empty());
    }
}

TEST_CASE("a replace's end announces the patches it replaced: their State is no longer applied")
{
    // A script waiting for lp_a's PatchStateChanged saw nothing when a replace took it out:
    // only the replace's own change was announced.
    World w;
    for (const char* name : {"lp_a", "lp_b", "lp_r", "lp_h"})
        w.install(name);
    w.control.replaces = {"lp_r"};
    auto ops = w.operations();
    ChangedPatches changed;
    ops->set_sink(&changed);
    for (const char* name : {"lp_a", "lp_b", "lp_r"}) {
        REQUIRE(name_of(ops->apply(name)) == "ok");
        w.control.complete();
        changed.names.clear();
        ops->transition_ended(name, "patched");
    }
    CHECK(changed.names == std::vector<std::string>{"lp_a", "lp_b"});

    SUBCASE("one loaded by hand, known at the next look")
    {
        w.kernel.applied("lp_h", true);
        for (KernelPatch& p : w.kernel.kernel_patches)
            p.enabled = p.name == "lp_h"; // lp_r replaced: disabled until lpshim frees it
        changed.names.clear();
        ops->transition_ended("lp_h", "patched");
        ops->forget_replaced(w.kernel.kernel_patches);
        CHECK(changed.names == std::vector<std::string>{"lp_r"});
    }
}

TEST_CASE("a replace loaded by hand: what it replaced is known at the next look")
{
    World w;
    for (const char* name : {"lp_a", "lp_y"}) {
        w.install(name);
        w.storage.saved.append(name);
    }
    // lp_a was replaced (disabled until lpshim frees it); lp_y was applied after the replace.
    w.kernel.applied("lp_a").applied("lp_h", true).applied("lp_y");
    w.kernel.kernel_patches.front().enabled = false;
    auto ops = w.operations();
    ops->transition_ended("lp_h", "patched"); // not known as a replace yet: nothing dropped
    CHECK(ops->desired().patches.size() == 2);
    ops->forget_replaced(w.kernel.kernel_patches);
    REQUIRE(ops->desired().patches.size() == 1);
    CHECK(ops->desired().patches.front().name == "lp_y");
    CHECK(w.storage.saved.find("lp_a") == nullptr);
    // A patch that is not a replace replaced nothing.
    ops->transition_ended("lp_y", "patched");
    ops->forget_replaced(w.kernel.kernel_patches);
    CHECK(ops->desired().patches.size() == 1);
}

TEST_CASE("the boot apply: a replace's end keeps the patches queued after it")
{
    // The boot apply runs on the loop and does not read whether its patch is a replace: the
    // next look tells, and drops only what the kernel had at the load, not lp_x, wanted on
    // top of the replace and not loaded yet.
    World w;
    w.control.replaces = {"lp_r"};
    for (const char* name : {"lp_r", "lp_x"})
        w.wanted_from_earlier_boot(name);
    auto ops = w.operations();
    ops->plan_boot_apply({true, {}});
    CHECK(ops->apply_next_queued(w.kernel.kernel_patches) == "lp_r");
    w.control.complete();
    ops->transition_ended("lp_r", "patched");
    ops->forget_replaced(w.kernel.kernel_patches);
    CHECK(ops->desired().find("lp_x") != nullptr);
    CHECK(ops->apply_next_queued(w.kernel.kernel_patches) == "lp_x");
}

TEST_CASE("the boot apply: a patch a later replace replaced does not stop the queue")
{
    // lp_a, boot-applied, then replaced by lp_r: no longer wanted, and not "reverted during the
    // boot apply": lp_x, queued after lp_r, is applied.
    World w;
    w.control.replaces = {"lp_r"};
    for (const char* name : {"lp_a", "lp_r", "lp_x"})
        w.wanted_from_earlier_boot(name);
    auto ops = w.operations();
    ops->plan_boot_apply({true, {}});
    CHECK(ops->apply_next_queued(w.kernel.kernel_patches) == "lp_a");
    w.control.complete();
    ops->transition_ended("lp_a", "patched");
    CHECK(ops->apply_next_queued(w.kernel.kernel_patches) == "lp_r");
    w.control.complete();
    std::erase_if(w.kernel.kernel_patches, [](const KernelPatch& p) { return p.name == "lp_a"; });
    ops->transition_ended("lp_r", "patched");
    ops->forget_replaced(w.kernel.kernel_patches);
    CHECK(ops->desired().find("lp_a") == nullptr);
    CHECK(ops->apply_next_queued(w.kernel.kernel_patches) == "lp_x");
    CHECK(ops->skip_reasons().empty());
}

TEST_CASE("the boot apply: a patch reverted during it stops the queue")
{
    // The stall policy's revert (or an admin's) takes lp_a out while the queue waits.
    World w;
    for (const char* name : {"lp_a", "lp_b"})
        w.wanted_from_earlier_boot(name);
    auto ops = w.operations();
    ops->plan_boot_apply({true, {}});
    CHECK(ops->apply_next_queued(w.kernel.kernel_patches) == "lp_a");
    REQUIRE(w.control.revert("lp_a"));
    w.control.complete();
    ops->transition_ended("lp_a", "unpatched");
    CHECK_FALSE(ops->apply_next_queued(w.kernel.kernel_patches));
    CHECK(w.control.loaded == std::vector<std::string>{"lp_a"});
    CHECK(ops->boot_queue_size() == 0);
    CHECK(ops->skip_reasons().at("lp_b").find("lp_a, which comes before it in the desired order, "
                                              "was reverted during the boot apply") !=
          std::string::npos);
}

TEST_CASE("Forced: set by Force, kept when livepatchd restarts in the same boot, not in another")
{
    // Issue 18: Forced lived in livepatchd's memory only: a restart lost it, while the forced
    // patch's module can still never be removed.
    World w;
    w.install("lp_a");
    const auto forced = [](PatchOperations& ops) {
        auto all = ops.statuses();
        REQUIRE(all);
        for (const PatchStatus& s : *all)
            if (s.name == "lp_a")
                return s.forced;
        FAIL("no lp_a");
        return false;
    };
    auto ops = w.operations();
    REQUIRE(name_of(ops->apply("lp_a")) == "ok");
    CHECK(!forced(*ops));
    REQUIRE(name_of(ops->force("lp_a")) == "ok");
    w.control.complete();
    CHECK(forced(*ops));
    CHECK(forced(*w.operations()));                                   // restarted
    CHECK(!forced(*w.operations("fedcba9876543210fedcba9876543210"))); // rebooted
}

TEST_CASE("a Revert off the loop: adopted at its end; a refusal puts the desired state back")
{
    // Issue 18: Revert's saves and its write to lpshim run as blocking work (the bus test
    // shows the loop free meanwhile); here the work and its end are run by hand.
    World w;
    w.install("lp_a");
    w.install("lp_b");
    auto ops = w.operations();
    REQUIRE(name_of(ops->apply("lp_a")) == "ok");
    w.control.complete();
    struct Queued {
        std::function<void()> work, then;
    };
    std::vector<Queued> queued;
    ops->set_work_runner([&queued](std::function<void()> work, std::function<void()> then) {
        queued.push_back({std::move(work), std::move(then)});
    });
    std::optional<std::string> answer;
    const auto answered = [&answer](OpResult<void> r) { answer = name_of(r); };

    ops->revert("lp_a", answered);
    REQUIRE(queued.size() == 1);
    CHECK(ops->busy());
    CHECK(!answer);
    CHECK(w.kernel.kernel_patches.front().enabled); // not written before the work
    queued[0].work();
    CHECK(!w.storage.saved.find("lp_a"));             // saved by the work
    CHECK(ops->desired().find("lp_a") != nullptr);    // adopted only at the end
    CHECK(!w.kernel.kernel_patches.front().enabled);  // written by the work
    CHECK(!answer);
    queued[0].then();
    CHECK(!ops->busy());
    CHECK(answer == "ok");
    CHECK(ops->desired().find("lp_a") == nullptr);
    w.control.complete();

    // Refused by the kernel: the pending record is put back, in the file and in memory.
    ops->set_work_runner(nullptr);
    REQUIRE(name_of(ops->apply("lp_b")) == "ok");
    w.control.complete();
    ops->set_work_runner([&queued](std::function<void()> work, std::function<void()> then) {
        queued.push_back({std::move(work), std::move(then)});
    });
    w.control.refuse_revert.insert("lp_b");
    answer.reset();
    ops->revert("lp_b", answered);
    REQUIRE(queued.size() == 2);
    queued[1].work();
    queued[1].then();
    CHECK(!ops->busy());
    CHECK(answer == "errno " + std::to_string(EPERM));
    REQUIRE(w.storage.saved.find("lp_b"));
    CHECK(w.storage.saved.find("lp_b")->pending == PendingAction::none);
    REQUIRE(ops->desired().find("lp_b"));
    CHECK(ops->desired().find("lp_b")->pending == PendingAction::none);
    CHECK(w.kernel.kernel_patches.back().enabled);
}
