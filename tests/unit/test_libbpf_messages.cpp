// SPDX-License-Identifier: GPL-2.0-only
//
// route_libbpf_messages: what libbpf prints reaches the daemon's sink, the verifier's log whole
// enough to name the rejection's cause (at its end).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <bpf/libbpf.h>

#include <cstdarg>
#include <string>
#include <vector>

#include "bpf/libbpf_messages.hpp"

using namespace livepatchd;

namespace {

// libbpf's call of its print function.
int print_as_libbpf(libbpf_print_fn_t print, const char* format, ...)
{
    va_list args;
    va_start(args, format);
    const int r = print(LIBBPF_WARN, format, args);
    va_end(args);
    return r;
}

} // namespace

TEST_CASE("a verifier log reaches the journal with its end, where the cause is")
{
    // Review of the issue-18 change: messages were cut at 1,023 bytes, and libbpf prints the
    // whole verifier log in one message: the rejection's reason, at its end, was lost.
    std::vector<std::string> lines;
    route_libbpf_messages([&](std::string_view line) { lines.emplace_back(line); });
    const libbpf_print_fn_t ours = libbpf_set_print(nullptr);
    libbpf_set_print(ours);
    REQUIRE(static_cast<bool>(ours));

    std::string log;
    for (int i = 0; i < 2000; i++)
        log += std::to_string(i) + ": (85) call bpf_get_task_stack#141\n";
    log += "R1 invalid mem access 'scalar'\nprocessed 4000 insns\n";
    print_as_libbpf(ours, "libbpf: prog '%s': -- BEGIN PROG LOAD LOG --\n%s-- END PROG LOAD LOG --\n",
                    "dump_pending_tasks", log.c_str());
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("R1 invalid mem access 'scalar'") != std::string::npos);
    CHECK(lines[0].find("-- END PROG LOAD LOG --") != std::string::npos);
    CHECK(lines[0].size() <= 70 * 1024); // bounded: the journal gets its end, not megabytes

    // A short message is passed as it is, without its newline.
    lines.clear();
    print_as_libbpf(ours, "libbpf: failed to find BTF for %s\n", "extern");
    CHECK(lines == std::vector<std::string>{"libbpf: failed to find BTF for extern"});
}
