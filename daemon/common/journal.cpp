// SPDX-License-Identifier: GPL-2.0-only
#include "common/journal.hpp"

#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <vector>

namespace livepatchd::journal {

namespace {
LogLevel max_level = LogLevel::info;
} // namespace

void set_level(LogLevel level)
{
    max_level = level;
}

void log(LogLevel level, std::string_view message, std::initializer_list<Field> fields)
{
    if (static_cast<int>(level) > static_cast<int>(max_level))
        return;
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
