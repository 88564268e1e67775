// SPDX-License-Identifier: GPL-2.0-only
#include "boot_info.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace livepatchd {

using namespace std::string_view_literals;

namespace {

std::vector<std::string> split_command_line(std::string_view line)
{
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    bool in_quote = false;
    for (char c : line) {
        if (c == '"') {
            in_quote = !in_quote;
            in_word = true;
            continue;
        }
        if (!in_quote && std::isspace(static_cast<unsigned char>(c))) {
            if (in_word)
                words.push_back(std::move(word));
            word.clear();
            in_word = false;
            continue;
        }
        word += c;
        in_word = true;
    }
    if (in_word)
        words.push_back(std::move(word));
    return words;
}

// Parameter names compare with '-' and '_' as one character, as the kernel's parameq() and
// systemd's proc_cmdline_key_streq() do.
bool key_equal(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const char x = a[i] == '-' ? '_' : a[i];
        const char y = b[i] == '-' ? '_' : b[i];
        if (x != y)
            return false;
    }
    return true;
}

std::optional<bool> parse_boolean(std::string_view value)
{
    std::string lower(value);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (std::string_view yes : {"1"sv, "yes"sv, "y"sv, "true"sv, "t"sv, "on"sv})
        if (lower == yes)
            return true;
    for (std::string_view no : {"0"sv, "no"sv, "n"sv, "false"sv, "f"sv, "off"sv})
        if (lower == no)
            return false;
    return std::nullopt;
}

Result<std::string> read_small_file(const std::filesystem::path& path)
{
    std::ifstream in(path);
    if (!in)
        return Error{errno ? errno : EIO, path.native() + ": cannot read: " +
                                              std::strerror(errno ? errno : EIO)};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

BootFlags parse_kernel_command_line(std::string_view command_line)
{
    BootFlags flags;
    for (const std::string& word : split_command_line(command_line)) {
        const std::size_t eq = word.find('=');
        const std::string_view key = std::string_view(word).substr(0, eq);
        if (!key_equal(key, "livepatchd.apply"))
            continue;
        if (eq == std::string::npos) {
            flags.apply = true;
            continue;
        }
        const std::string_view value = std::string_view(word).substr(eq + 1);
        if (auto parsed = parse_boolean(value))
            flags.apply = parsed;
        else
            flags.warnings.push_back("the kernel command line says " + word +
                                     ", which is not a boolean (use livepatchd.apply=0 or "
                                     "livepatchd.apply=1), ignoring");
    }
    return flags;
}

bool is_boot_id(std::string_view id)
{
    return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::optional<std::string> boot_id_from_uuid(std::string_view text)
{
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.remove_suffix(1);
    // 8-4-4-4-12
    static constexpr std::array<std::size_t, 4> dashes{8, 13, 18, 23};
    if (text.size() != 36)
        return std::nullopt;
    std::string id;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (std::find(dashes.begin(), dashes.end(), i) != dashes.end()) {
            if (text[i] != '-')
                return std::nullopt;
            continue;
        }
        id += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
    }
    if (!is_boot_id(id))
        return std::nullopt;
    return id;
}

Result<std::string> read_boot_id(const std::filesystem::path& path)
{
    auto text = read_small_file(path);
    if (!text)
        return text;
    if (auto id = boot_id_from_uuid(*text))
        return *id;
    return Error{EBADMSG, path.native() + ": does not hold a boot id (a UUID)"};
}

Result<std::string> read_kernel_command_line(const std::filesystem::path& path)
{
    return read_small_file(path);
}

std::string running_kernel_release()
{
    utsname names{};
    if (::uname(&names) < 0)
        return {};
    return names.release;
}

} // namespace livepatchd
