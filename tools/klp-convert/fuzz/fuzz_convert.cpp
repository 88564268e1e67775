// SPDX-License-Identifier: GPL-2.0-only
//
// libFuzzer target: any bytes as a patch module (and as a module object's .ko) through the
// whole conversion. The converter may refuse; it must not crash, read out of bounds (run with
// ASan/UBSan: ./run-fuzzer), or accept a module and then write one that does not verify.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "converter.hpp"

using namespace klpconvert;

namespace {

// A fixture kernel in which the names that compilers emit for small test modules resolve.
constexpr const char* kallsyms = R"(# release: 6.1.0-test
ffffffff81000000 T _text
ffffffff81001000 t static_fn
ffffffff81001100 t dup_fn
ffffffff81001400 t dup_fn
ffffffff81001500 t both_fn
ffffffff82000000 D __init_begin
ffffffff82000100 t init_only_fn
ffffffff82001000 R __init_end
ffffffff83000000 b static_var
ffffffff83000100 d static_array
)";
constexpr const char* symvers = "0x1\texported_fn\tvmlinux\tEXPORT_SYMBOL\t\n"
                                "0x2\ttarget_exported\tdrivers/mytarget\tEXPORT_SYMBOL_GPL\t\n";

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static Exports exports = [] {
        Exports e;
        if (!e.add_symvers(symvers, "symvers").ok())
            std::abort();
        return e;
    }();
    static ObjectSymbols vmlinux = [] {
        auto t = ObjectSymbols::from_kallsyms(kallsyms, "kallsyms");
        if (!t.ok())
            std::abort();
        return std::move(t).value();
    }();

    const std::span<const std::uint8_t> bytes(data, size);
    // The same bytes as kallsyms text: the parser must hold too.
    (void)ObjectSymbols::from_kallsyms(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");

    auto elf = ElfObject::parse(bytes, "fuzz");
    if (!elf.ok())
        return 0;
    auto target = ObjectSymbols::from_module(elf.value(), "mytarget");
    ConvertInputs in;
    in.exports = &exports;
    in.vmlinux = &vmlinux;
    if (target.ok())
        in.modules.push_back(&target.value());
    (void)needs(elf.value(), exports, {"mytarget"});
    (void)module_release(elf.value());
    const Report report = convert(elf.value(), in);
    if (!report.errors.empty() || !report.changed)
        return 0;
    auto out = elf->serialize();
    if (!out.ok())
        std::abort(); // accepted, then unwritable
    auto reread = ElfObject::parse(out.value(), "fuzz-out");
    if (!reread.ok() || !verify_livepatch_elf(reread.value()).ok())
        std::abort(); // accepted, then broken
    return 0;
}
