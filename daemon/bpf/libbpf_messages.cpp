// SPDX-License-Identifier: GPL-2.0-only
#include "bpf/libbpf_messages.hpp"

#include <cstdarg>
#include <cstdio>
#include <string>

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
        // libbpf prints a verifier's whole log in one message, its cause at the end: sized to
        // fit, and when longer than 64 KiB, its end kept.
        constexpr std::size_t keep = 64 * 1024;
        va_list measure;
        va_copy(measure, args);
        const int length = std::vsnprintf(nullptr, 0, format, measure);
        va_end(measure);
        if (length < 0)
            return 0;
        std::string text(static_cast<std::size_t>(length) + 1, '\0');
        std::vsnprintf(text.data(), text.size(), format, args);
        text.resize(static_cast<std::size_t>(length));
        if (text.size() > keep)
            text = "[" + std::to_string(text.size() - keep) + " bytes cut] " +
                   text.substr(text.size() - keep);
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
