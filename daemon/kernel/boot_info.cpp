// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/boot_info.hpp"

#include "common/decimal.hpp"
#include "common/small_file.hpp"

#include <sys/utsname.h>
#include <systemd/sd-id128.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>

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

Result<std::string> read_boot_id()
{
    sd_id128_t id{};
    if (const int r = sd_id128_get_boot(&id); r < 0)
        return Error{-r, std::string("cannot read this boot's id: ") + std::strerror(-r)};
    char text[SD_ID128_STRING_MAX];
    return std::string(sd_id128_to_string(id, text));
}

namespace {

// The decimal number a kernel file holds (one line), or an Error naming the file.
Result<std::uint64_t> read_kernel_number(const std::filesystem::path& path)
{
    auto text = read_small_file(path, 64);
    if (!text)
        return std::move(text).error();
    std::string_view digits = *text;
    if (digits.ends_with('\n'))
        digits.remove_suffix(1);
    const auto value = parse_decimal<std::uint64_t>(digits);
    if (!value)
        return Error{EBADMSG, path.native() + ": not a number: \"" +
                                  std::string(digits.substr(0, 32)) + "\""};
    return *value;
}

} // namespace

Result<std::uint64_t> read_oops_count(const std::filesystem::path& count_path,
                                      const std::filesystem::path& tainted_path)
{
    auto count = read_kernel_number(count_path);
    if (count || count.error().errnum != ENOENT)
        return count;
    constexpr std::uint64_t taint_die = 1U << 7; // TAINT_DIE
    auto tainted = read_kernel_number(tainted_path);
    if (!tainted)
        return std::move(tainted).error();
    return (*tainted & taint_die) ? 1 : 0;
}

Result<std::string> read_kernel_command_line(const std::filesystem::path& path)
{
    auto text = read_small_file(path);
    if (!text)
        return std::move(text).error();
    return text;
}

std::string running_kernel_release()
{
    utsname names{};
    if (::uname(&names) < 0)
        return {};
    return names.release;
}

} // namespace livepatchd
