// SPDX-License-Identifier: GPL-2.0-only
#include "bpf/libbpf_messages.hpp"

#include <cstdarg>
#include <cstdio>

#include <bpf/libbpf.h>

namespace livepatchd {

namespace {

std::function<void(std::string_view)>& sink()
{
    static std::function<void(std::string_view)> s;
    return s;
}

std::string& rejected_program()
{
    static std::string name;
    return name;
}

// libbpf: "libbpf: prog 'NAME': BPF program load failed: ..." precedes the verifier's log.
void note_rejection(std::string_view line)
{
    constexpr std::string_view prefix = "libbpf: prog '";
    constexpr std::string_view failed = "': BPF program load failed";
    const auto at = line.find(prefix);
    if (at == std::string_view::npos)
        return;
    const auto name_at = at + prefix.size();
    const auto end = line.find(failed, name_at);
    if (end != std::string_view::npos)
        rejected_program() = std::string(line.substr(name_at, end - name_at));
}

int print(enum libbpf_print_level level, const char* format, va_list args) noexcept
{
    try {
        char text[1024];
        std::vsnprintf(text, sizeof text, format, args);
        std::string_view line(text);
        while (!line.empty() && line.back() == '\n')
            line.remove_suffix(1);
        note_rejection(line);
        if (sink() && (level != LIBBPF_DEBUG || !line.empty()))
            sink()(line);
    } catch (...) {
    }
    return 0;
}

} // namespace

void route_libbpf_messages(std::function<void(std::string_view)> to)
{
    sink() = std::move(to);
    libbpf_set_print(print);
}

bool libbpf_saw_program_rejected(std::string* program)
{
    if (rejected_program().empty())
        return false;
    if (program)
        *program = rejected_program();
    rejected_program().clear();
    return true;
}

} // namespace livepatchd
