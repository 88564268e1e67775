// SPDX-License-Identifier: GPL-2.0-only
#include "common/journal.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace livepatchd::journal {

namespace {
LogLevel max_level = LogLevel::info;
Output output = Output::native;
} // namespace

void set_level(LogLevel level)
{
    max_level = level;
}

bool stderr_is_journal()
{
    const char* value = std::getenv("JOURNAL_STREAM");
    if (!value)
        return false;
    const std::string_view text(value);
    const auto colon = text.find(':');
    if (colon == std::string_view::npos)
        return false;
    unsigned long long dev = 0, ino = 0;
    const auto d = std::from_chars(text.data(), text.data() + colon, dev);
    const auto i = std::from_chars(text.data() + colon + 1, text.data() + text.size(), ino);
    if (d.ec != std::errc() || d.ptr != text.data() + colon || i.ec != std::errc() ||
        i.ptr != text.data() + text.size())
        return false;
    struct stat st {};
    return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

void set_output(Output to)
{
    output = to;
}

void log(LogLevel level, std::string_view message, std::initializer_list<Field> fields)
{
    if (static_cast<int>(level) > static_cast<int>(max_level))
        return;
    if (output == Output::stream) {
        // One line each: a newline would start another entry, at the default priority.
        std::string line(message);
        for (char& c : line)
            if (c == '\n')
                c = ' ';
        std::fprintf(stderr, "<%d>%s\n", static_cast<int>(level), line.c_str());
        std::fflush(stderr);
        return;
    }
    std::vector<std::string> items;
    items.reserve(fields.size() + 2);
    items.push_back("MESSAGE=" + std::string(message));
    items.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
    for (const Field& field : fields)
        items.push_back(std::string(field.name) + "=" + field.value);
    std::vector<iovec> iov;
    iov.reserve(items.size());
    for (std::string& item : items)
        iov.push_back({item.data(), item.size()});
    sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

} // namespace livepatchd::journal
