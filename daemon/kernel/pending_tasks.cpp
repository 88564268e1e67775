// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/pending_tasks.hpp"

#include "common/decimal.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

namespace livepatchd {

std::optional<PendingTask> parse_pending_task_line(std::string_view line)
{
    auto next_word = [&line]() -> std::optional<std::string_view> {
        const auto end = line.find(' ');
        if (end == std::string_view::npos || end == 0)
            return std::nullopt;
        std::string_view word = line.substr(0, end);
        line.remove_prefix(end + 1);
        return word;
    };
    auto last_word = [&line]() -> std::optional<std::string_view> {
        const auto start = line.rfind(' ');
        if (start == std::string_view::npos || start + 1 == line.size())
            return std::nullopt;
        std::string_view word = line.substr(start + 1);
        line.remove_suffix(line.size() - start);
        return word;
    };

    if (!line.empty() && line.back() == '\n')
        line.remove_suffix(1);
    const auto tid = next_word();
    const auto tgid = next_word();
    auto function = last_word();
    // %ps names a module's function "name [module]".
    std::string function_text(function ? *function : std::string_view{});
    if (function && function->size() > 2 && function->front() == '[' && function->back() == ']') {
        const auto name = last_word();
        if (!name)
            return std::nullopt;
        function_text = std::string(*name) + " " + function_text;
    }
    const auto reason = last_word();
    // A comm of up to 15 bytes, each escaped by lpshim as up to 4 ("\\012").
    // An empty comm is a name a task may give itself (PR_SET_NAME ""): still a task.
    if (!tid || !tgid || !function || !reason || line.size() > 15 * 4)
        return std::nullopt;
    static constexpr std::string_view reasons[] = {"not-checked-yet", "running",
                                                   "sleeping-in-function", "unreliable-stack"};
    if (std::find(std::begin(reasons), std::end(reasons), *reason) == std::end(reasons))
        return std::nullopt;
    PendingTask task;
    const auto tid_value = parse_decimal<std::uint32_t>(*tid);
    const auto tgid_value = parse_decimal<std::uint32_t>(*tgid);
    if (!tid_value || !tgid_value)
        return std::nullopt;
    task.tid = *tid_value;
    task.tgid = *tgid_value;
    task.comm = printable(line);
    task.reason = std::string(*reason);
    if (function_text != "0x0" && function_text != "(null)")
        task.function = std::move(function_text);
    return task;
}

Result<std::vector<PendingTask>> parse_pending_tasks(std::string_view text)
{
    std::vector<PendingTask> tasks;
    for (std::size_t number = 1; !text.empty(); number++) {
        const std::size_t end = std::min(text.find('\n'), text.size());
        const std::string_view line = text.substr(0, end);
        auto task = parse_pending_task_line(line);
        if (!task)
            return Error{EBADMSG, "lpshim's list of pending tasks has a malformed line " +
                                      std::to_string(number) + " (\"" + printable(line) +
                                      "\"): is lpshim.ko of the same version as livepatchd?"};
        tasks.push_back(std::move(*task));
        text.remove_prefix(std::min(end + 1, text.size()));
    }
    return tasks;
}

} // namespace livepatchd
