// SPDX-License-Identifier: GPL-2.0-only
#include "config/config.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/spelling.hpp"

namespace livepatchd {

using nlohmann::json;
using namespace std::string_view_literals;

namespace {

constexpr std::int64_t max_ms = 3'600'000; // one hour: longer is a typo, not a policy

constexpr std::array stall_action_names{
    std::pair{"wait"sv, StallAction::wait},
    std::pair{"revert"sv, StallAction::revert},
    std::pair{"force"sv, StallAction::force},
};

constexpr std::array log_level_names{
    std::pair{"debug"sv, LogLevel::debug},     std::pair{"info"sv, LogLevel::info},
    std::pair{"notice"sv, LogLevel::notice},   std::pair{"warning"sv, LogLevel::warning},
    std::pair{"err"sv, LogLevel::err},
};

// The unit types that own a cgroup and so can contain processes; excluding any other type
// (.target, .timer, ...) would silently match nothing.
constexpr std::array process_unit_suffixes{
    ".service"sv, ".scope"sv, ".slice"sv, ".socket"sv, ".mount"sv, ".swap"sv,
};

constexpr std::size_t unit_name_max = 255; // systemd's UNIT_NAME_MAX - 1

std::string_view example_unit(std::string_view suffix)
{
    static constexpr std::array examples{"sshd.service"sv, "session-1.scope"sv, "user.slice"sv,
                                         "dbus.socket"sv,  "home.mount"sv,      "dev-sda2.swap"sv};
    for (std::string_view example : examples)
        if (example.ends_with(suffix))
            return example;
    return examples[0];
}

// Known keys, in documentation order; used both to reject unknown keys and to list the
// accepted ones in the error.
constexpr std::array top_keys{"boot"sv, "transition"sv, "remediation"sv, "log"sv, "metrics"sv};
constexpr std::array boot_keys{"apply"sv, "crash_guard_seconds"sv};
constexpr std::array transition_keys{"stall_timeout_ms"sv, "on_stall"sv};
constexpr std::array remediation_keys{"enabled"sv, "grace_ms"sv, "kick"sv, "stop_continue"sv};
constexpr std::array kick_keys{"enabled"sv, "interval_ms"sv};
constexpr std::array stop_continue_keys{"enabled"sv,       "after_ms"sv,
                                        "hold_ms"sv,       "exclude_units"sv,
                                        "exclude_commands"sv, "other_pid_namespaces"sv};
constexpr std::array log_keys{"level"sv};
constexpr std::array metrics_keys{"textfile"sv};

std::string dotted(std::string_view parent, std::string_view key)
{
    std::string path(parent);
    if (!path.empty())
        path += '.';
    path += key;
    return path;
}

std::string quoted_list(std::span<const std::string_view> words)
{
    std::string list;
    for (std::string_view word : words) {
        if (!list.empty())
            list += ", ";
        list += '"';
        list += word;
        list += '"';
    }
    return list;
}

// JSON text never yields a binary value, so one with this subtype can only be a number that
// is not an integer (a fraction, an exponent, or digits too many for 64 bits), kept as the
// text the user wrote: every number in a configuration is an integer, so such a number is
// always an error, and its message quotes it as written ("1e4", not "10000.0").
constexpr std::uint8_t number_as_written = 'N';

// A float that nlohmann holds (zero), shorter than any number it cannot ("1e309").
constexpr std::string_view overflow_stand_in = "-0E-0";

std::optional<std::string_view> written_number(const json& value)
{
    if (!value.is_binary())
        return std::nullopt;
    const json::binary_t& bytes = value.get_binary();
    if (!bytes.has_subtype() || bytes.subtype() != number_as_written)
        return std::nullopt;
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Digits only (and a sign): an integer that is too large, not a fraction.
bool is_integer_text(std::string_view text)
{
    return text.find_first_of(".eE") == std::string_view::npos;
}

// value as compact JSON, numbers as written; stops once out holds more than limit bytes.
void write_shown(const json& value, std::string& out, std::size_t limit)
{
    if (out.size() > limit)
        return;
    if (auto text = written_number(value)) {
        out += *text;
    } else if (value.is_array()) {
        out += '[';
        for (std::size_t i = 0; i < value.size() && out.size() <= limit; ++i) {
            if (i > 0)
                out += ',';
            write_shown(value[i], out, limit);
        }
        out += ']';
    } else if (value.is_object()) {
        out += '{';
        bool first = true;
        for (const auto& [key, member] : value.items()) {
            if (out.size() > limit)
                break;
            if (!first)
                out += ',';
            first = false;
            out += json(key).dump(-1, ' ', false, json::error_handler_t::replace);
            out += ':';
            write_shown(member, out, limit);
        }
        out += '}';
    } else {
        out += value.dump(-1, ' ', false, json::error_handler_t::replace);
    }
}

// A value as the user wrote it (JSON), shortened so that a pasted blob does not flood the
// message, and never inside a UTF-8 character.
std::string shown(const json& value)
{
    constexpr std::size_t max = 60;
    std::string text;
    write_shown(value, text, max);
    if (text.size() > max) {
        std::size_t cut = max - 3;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80)
            --cut;
        text.resize(cut);
        text += "...";
    }
    return text;
}

// Builds the document from the parser's SAX events and, on the way:
// - stops at an array or object that would be level config_max_depth + 1, before it costs
//   anything (a parse callback sees a level only once the DOM parser has built it, and cannot
//   stop the parse);
// - finds a key given twice in one object (nlohmann keeps the last one without a word, but a
//   key given twice is as much a mistake as a misspelt one);
// - keeps a number that is not an integer as the user wrote it (number_as_written).
// Memory stays linear in the input: each level keeps its own key and key set, and the dotted
// path is built only for the message.
class DocumentBuilder {
public:
    bool null() { return add(json(nullptr)); }
    bool boolean(bool value) { return add(json(value)); }
    bool number_integer(json::number_integer_t value) { return add(json(value)); }
    bool number_unsigned(json::number_unsigned_t value) { return add(json(value)); }
    bool number_float(json::number_float_t /*value*/, const std::string& text)
    {
        std::string written = text;
        if (text == overflow_stand_in && !overflows_.empty()) {
            written = std::move(overflows_.front());
            overflows_.pop_front();
        }
        return add(json::binary(json::binary_t::container_type(written.begin(), written.end()),
                                number_as_written));
    }
    bool string(std::string& value) { return add(json(std::move(value))); }
    bool binary(json::binary_t& value) { return add(json(std::move(value))); } // not from JSON text
    bool start_object(std::size_t /*elements*/) { return open(json::object(), true); }
    bool start_array(std::size_t /*elements*/) { return open(json::array(), false); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }

    bool key(std::string& key)
    {
        Level& level = levels_.back();
        if (!level.keys.insert(key).second && !duplicate_)
            duplicate_ = path_of(key);
        level.key = std::move(key);
        return true;
    }

    bool parse_error(std::size_t position, const std::string& /*last_token*/,
                     const json::exception& error)
    {
        overflow_ = error.id == 406; // out_of_range: a number no double holds
        syntax_error_ = {position, error.what()};
        return false;
    }

    // The texts of the numbers that with_overflows_replaced() stood in for, in order.
    explicit DocumentBuilder(std::deque<std::string> overflows = {})
        : overflows_(std::move(overflows))
    {
    }

    bool too_deep() const { return too_deep_; }
    bool overflow() const { return overflow_; }
    // The parser's byte count (the offending byte included) and its message.
    const std::optional<std::pair<std::size_t, std::string>>& syntax_error() const
    {
        return syntax_error_;
    }
    const std::optional<std::string>& duplicate() const { return duplicate_; }
    json take_document() { return std::move(document_); }

private:
    struct Level {
        json* container;
        bool is_object;
        std::string key; // the key whose value comes next, in an object
        std::set<std::string, std::less<>> keys;
    };

    // A value goes into the innermost open container, which is the only one that grows while
    // it is open: the pointers to the outer ones stay valid.
    json* place(json&& value)
    {
        if (levels_.empty()) {
            document_ = std::move(value);
            return &document_;
        }
        Level& level = levels_.back();
        if (level.is_object)
            return &((*level.container)[level.key] = std::move(value));
        level.container->push_back(std::move(value));
        return &level.container->back();
    }

    bool add(json&& value)
    {
        place(std::move(value));
        return true;
    }

    bool open(json&& container, bool is_object)
    {
        if (levels_.size() == config_max_depth) {
            too_deep_ = true;
            return false; // stops the parse
        }
        json* placed = place(std::move(container));
        levels_.push_back({placed, is_object, {}, {}});
        return true;
    }

    bool close()
    {
        levels_.pop_back();
        return true;
    }

    std::string path_of(std::string_view key) const
    {
        std::string path;
        for (std::size_t i = 0; i + 1 < levels_.size(); ++i)
            path = levels_[i].is_object ? dotted(path, levels_[i].key) : path + "[]";
        return dotted(path, key);
    }

    json document_;
    std::vector<Level> levels_;
    std::deque<std::string> overflows_;
    bool too_deep_ = false;
    bool overflow_ = false;
    std::optional<std::pair<std::size_t, std::string>> syntax_error_;
    std::optional<std::string> duplicate_;
};

// nlohmann stops at a number no double holds ("1e400": out_of_range 406), without the key it
// belongs to. Such a number is never valid here, so the text is read again with each one
// replaced by overflow_stand_in and spaces to its length (positions stay), and the builder
// restores what the user wrote. A stand-in the user wrote is replaced too, by itself, so that
// the order holds. Called only after a 406, so the text up to that number is valid JSON.
std::string with_overflows_replaced(std::string_view text, std::deque<std::string>& written)
{
    std::string out(text);
    bool in_string = false;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const char c = out[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9'))
            continue;
        const std::size_t end = out.find_first_not_of("0123456789+-.eE", i);
        const std::string token = out.substr(i, end == std::string::npos ? end : end - i);
        if (token == overflow_stand_in || !std::isfinite(std::strtod(token.c_str(), nullptr))) {
            if (token.size() >= overflow_stand_in.size()) {
                written.push_back(token);
                out.replace(i, token.size(), std::string(overflow_stand_in) +
                                                 std::string(token.size() - overflow_stand_in.size(), ' '));
            }
        }
        i += token.size() - 1;
    }
    return out;
}

// "LINE:COLUMN" of the byte at offset.
std::string position(std::string_view text, std::size_t offset)
{
    const std::string_view before = text.substr(0, std::min(offset, text.size()));
    const std::size_t line =
        1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
    const auto line_start = before.rfind('\n');
    const std::size_t column =
        1 + before.size() - (line_start == std::string_view::npos ? 0 : line_start + 1);
    return std::to_string(line) + ":" + std::to_string(column);
}

// The offset of the bracket that opens level config_max_depth + 1. Called once the parser
// stopped there, so the text before it is valid JSON: strings are where a JSON lexer saw them.
std::size_t too_deep_offset(std::string_view text)
{
    std::size_t depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > config_max_depth)
                return i;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return text.size();
}

// Reads one JSON object of the schema into a struct. The first error sticks: later reads are
// no-ops, so each section reads as a flat list of fields and the caller checks once.
class Reader {
public:
    explicit Reader(std::string_view origin) : origin_(origin) {}

    bool failed() const { return error_.has_value(); }
    Error take_error() { return std::move(*error_); }

    // The object at path (or the top level for an empty path), after checking its keys.
    // Returns nullptr when absent, so that its fields keep their defaults.
    const json* section(const json* parent, std::string_view path, std::string_view key,
                        std::span<const std::string_view> known_keys)
    {
        const json* value = member(parent, key);
        if (!value)
            return nullptr;
        const std::string name = dotted(path, key);
        if (!value->is_object()) {
            fail(name, shown(*value) + " is not an object; use an object with the keys " +
                               quoted_list(known_keys));
            return nullptr;
        }
        check_keys(*value, name, known_keys);
        return failed() ? nullptr : value;
    }

    void check_keys(const json& object, std::string_view path,
                    std::span<const std::string_view> known_keys)
    {
        if (failed())
            return;
        for (const auto& [key, _] : object.items()) {
            if (std::find(known_keys.begin(), known_keys.end(), key) != known_keys.end())
                continue;
            std::string why = "unknown key";
            if (auto guess = closest_match(key, known_keys))
                why += " (did you mean \"" + std::string(*guess) + "\"?)";
            why += path.empty() ? "; the top-level keys are "
                                : "; the keys in \"" + std::string(path) + "\" are ";
            why += quoted_list(known_keys);
            fail(dotted(path, key), why);
            return;
        }
    }

    void boolean(const json* object, std::string_view path, std::string_view key, bool& out)
    {
        const json* value = member(object, key);
        if (!value)
            return;
        if (!value->is_boolean())
            return fail(dotted(path, key), shown(*value) + " is not a boolean; use true or false");
        out = value->get<bool>();
    }

    template <typename Duration>
    void duration(const json* object, std::string_view path, std::string_view key,
                  Duration& out, std::int64_t min, std::int64_t max)
    {
        const json* value = member(object, key);
        if (!value)
            return;
        const std::string unit =
            std::is_same_v<Duration, std::chrono::seconds> ? "seconds" : "milliseconds";
        const std::string accepted = "use an integer from " + std::to_string(min) + " to " +
                                     std::to_string(max) + " (" + unit + ")";
        // Digits too many for 64 bits are an integer still, only out of range.
        if (auto text = written_number(*value); text && is_integer_text(*text))
            return fail(dotted(path, key), shown(*value) + " is out of range; " + accepted);
        if (!value->is_number_integer())
            return fail(dotted(path, key), shown(*value) + " is not an integer; " + accepted);
        // nlohmann stores non-negative integers as unsigned and negative ones (and -0) as
        // signed: each is compared in its own type, so nothing wraps into range.
        static_assert(std::is_same_v<Duration, std::chrono::seconds> ||
                      std::is_same_v<Duration, std::chrono::milliseconds>);
        const bool in_range =
            value->is_number_unsigned()
                ? min >= 0 && value->get<std::uint64_t>() >= static_cast<std::uint64_t>(min) &&
                      value->get<std::uint64_t>() <= static_cast<std::uint64_t>(max)
                : value->get<std::int64_t>() >= min && value->get<std::int64_t>() <= max;
        if (!in_range)
            return fail(dotted(path, key), shown(*value) + " is out of range; " + accepted);
        out = Duration(value->get<std::int64_t>());
    }

    template <typename Enum, std::size_t N>
    void one_of(const json* object, std::string_view path, std::string_view key, Enum& out,
                const std::array<std::pair<std::string_view, Enum>, N>& names)
    {
        const json* value = member(object, key);
        if (!value)
            return;
        std::array<std::string_view, N> words;
        for (std::size_t i = 0; i < N; ++i)
            words[i] = names[i].first;
        if (value->is_string()) {
            const auto& text = value->get_ref<const std::string&>();
            for (const auto& [name, e] : names) {
                if (name == text) {
                    out = e;
                    return;
                }
            }
        }
        std::string why = shown(*value) + " is not one of " + quoted_list(words);
        if (value->is_string())
            if (auto guess = closest_match(value->get_ref<const std::string&>(), words))
                why += " (did you mean \"" + std::string(*guess) + "\"?)";
        fail(dotted(path, key), why);
    }

    // An array of strings, each checked by valid(element) which returns "" when fine or the
    // reason it is not.
    template <typename Check>
    void strings(const json* object, std::string_view path, std::string_view key,
                 std::vector<std::string>& out, std::string_view example, Check valid)
    {
        const json* value = member(object, key);
        if (!value)
            return;
        const std::string name = dotted(path, key);
        if (!value->is_array())
            return fail(name, shown(*value) + " is not an array; use a list such as [" +
                                  std::string(example) + "]");
        std::vector<std::string> result;
        for (std::size_t i = 0; i < value->size(); ++i) {
            const json& element = (*value)[i];
            const std::string element_name = name + "[" + std::to_string(i) + "]";
            if (!element.is_string())
                return fail(element_name, shown(element) + " is not a string; use a list such as [" +
                                              std::string(example) + "]");
            const auto& text = element.get_ref<const std::string&>();
            if (std::string why = valid(text); !why.empty())
                return fail(element_name, shown(element) + " " + why);
            result.push_back(text);
        }
        out = std::move(result);
    }

    // A string, checked by valid(text) which returns "" when fine or the reason it is not.
    template <typename Check>
    void text(const json* object, std::string_view path, std::string_view key, std::string& out,
              std::string_view accepted, Check valid)
    {
        const json* value = member(object, key);
        if (!value)
            return;
        if (!value->is_string())
            return fail(dotted(path, key), shown(*value) + " is not a string; " +
                                               std::string(accepted));
        const auto& text = value->get_ref<const std::string&>();
        if (std::string why = valid(text); !why.empty())
            return fail(dotted(path, key), shown(*value) + " " + why + "; " +
                                               std::string(accepted));
        out = text;
    }

    void fail(std::string_view key, std::string_view why)
    {
        if (!failed())
            error_ = Error{EINVAL, std::string(origin_) + ": " + std::string(key) + ": " +
                                       std::string(why)};
    }

private:
    const json* member(const json* object, std::string_view key) const
    {
        if (failed() || !object)
            return nullptr;
        auto it = object->find(key);
        return it == object->end() ? nullptr : &*it;
    }

    std::string_view origin_;
    std::optional<Error> error_;
};

std::string check_unit_name(const std::string& name)
{
    if (name.find('/') != std::string::npos)
        return "is not a unit name but a path; use the unit's name, such as \"sshd.service\"";
    const auto dot = name.rfind('.');
    if (dot == std::string::npos)
        return "is not a systemd unit name; use the full name with its type suffix, such as "
               "\"" + (name.empty() ? std::string("sshd") : name) + ".service\"";
    const std::string_view suffix = std::string_view(name).substr(dot);
    if (dot == 0)
        return "is not a systemd unit name: nothing comes before \"" + name +
               "\"; use the unit's full name, such as \"" + std::string(example_unit(suffix)) +
               "\"";
    if (std::find(process_unit_suffixes.begin(), process_unit_suffixes.end(), suffix) ==
        process_unit_suffixes.end())
        return "is not a unit that can contain processes; use a unit name ending in " +
               quoted_list(process_unit_suffixes);
    if (name.size() > unit_name_max)
        return "is longer than " + std::to_string(unit_name_max) +
               " characters, the longest unit name systemd accepts";
    const std::string_view prefix = std::string_view(name).substr(0, dot);
    for (char c : prefix) {
        const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == ':' || c == '-' || c == '_' ||
                             c == '.' || c == '\\' || c == '@';
        if (!allowed)
            return "is not a systemd unit name: it contains '" + std::string(1, c) +
                   "'; see systemd-escape(1) for how to name such a unit";
    }
    const auto at = prefix.find('@');
    if (at == 0)
        return "is not a systemd unit name: it starts with '@'";
    if (at != std::string_view::npos && at + 1 == prefix.size())
        return "is a template, which never contains processes itself; name an instance, such "
               "as \"" + std::string(prefix) + "tty1" + std::string(suffix) + "\"";
    return {};
}

// metrics.textfile: where node_exporter's textfile collector finds it, or "".
std::string check_textfile_path(const std::string& path)
{
    if (path.empty())
        return {};
    if (path.find('\0') != std::string::npos)
        return "holds a NUL byte";
    for (char c : path)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return "holds a control character";
    if (path.front() != '/')
        return "is not an absolute path";
    if (path.size() >= 4096)
        return "is longer than a path may be (4095 bytes)";
    const std::string_view name = std::string_view(path).substr(path.rfind('/') + 1);
    if (!name.ends_with(".prom") || name.size() == 5 || name.starts_with("."))
        return "does not name a file ending in \".prom\", the only files node_exporter's "
               "textfile collector reads";
    for (std::string_view part : {"/./"sv, "/../"sv, "//"sv})
        if (path.find(part) != std::string::npos)
            return "is not a plain path (it holds \"" + std::string(part) + "\")";
    return {};
}

std::string check_command_name(const std::string& comm)
{
    if (comm.empty())
        return "is empty; use a command name as ps -o comm shows it, such as \"qemu-system-x86\"";
    if (comm.size() > comm_max_length) {
        // The whole characters within the first 15 bytes: the kernel may cut the next one in
        // two, and command_matches() takes that cut for this entry. (comm is valid UTF-8: it
        // came out of a JSON string.)
        std::size_t cut = comm_max_length;
        while (cut > 0 && (static_cast<unsigned char>(comm[cut]) & 0xc0) == 0x80)
            --cut;
        return "is " + std::to_string(comm.size()) + " bytes long, but the kernel keeps only " +
               std::to_string(comm_max_length) +
               " (TASK_COMM_LEN - 1) of a command name, so it would never match; use \"" +
               comm.substr(0, cut) + "\"";
    }
    return {};
}

} // namespace

std::string_view to_string(StallAction action)
{
    for (const auto& [name, value] : stall_action_names)
        if (value == action)
            return name;
    return "invalid";
}

std::string_view to_string(LogLevel level)
{
    for (const auto& [name, value] : log_level_names)
        if (value == level)
            return name;
    return "invalid";
}

Result<Config> parse_config(std::string_view json_text, std::string_view origin)
{
    if (json_text.find_first_not_of(" \t\n\r") == std::string_view::npos)
        return Error{EINVAL, std::string(origin) + ":" + position(json_text, json_text.size()) +
                                 (json_text.empty() ? ": the file is empty"
                                                    : ": the file holds only white space") +
                                 "; the empty configuration is {} (every key at its default)"};
    auto parse = [](std::string_view text, DocumentBuilder& builder) {
        return json::sax_parse(text, &builder, json::input_format_t::json, /*strict=*/true,
                               /*ignore_comments=*/false);
    };
    DocumentBuilder builder;
    bool parsed = parse(json_text, builder);
    if (!parsed && builder.overflow()) {
        std::deque<std::string> overflows;
        const std::string replaced = with_overflows_replaced(json_text, overflows);
        builder = DocumentBuilder(std::move(overflows));
        parsed = parse(replaced, builder);
    }
    if (!parsed) {
        if (builder.too_deep())
            return Error{EINVAL, std::string(origin) + ":" +
                                     position(json_text, too_deep_offset(json_text)) +
                                     ": arrays and objects nested more than " +
                                     std::to_string(config_max_depth) +
                                     " deep; a configuration nests at most 4 "
                                     "(remediation.stop_continue.exclude_units)"};
        const auto& [bytes_read, what] = builder.syntax_error().value();
        // bytes_read counts the offending byte. what is "[json.exception.parse_error.101]
        // parse error at line L, column C: <detail>"; keep the detail, the position is ours.
        std::string detail = what;
        if (auto at = detail.find("column "); at != std::string::npos)
            if (auto colon = detail.find(": ", at); colon != std::string::npos)
                detail = detail.substr(colon + 2);
        return Error{EINVAL, std::string(origin) + ":" +
                                 position(json_text, bytes_read > 0 ? bytes_read - 1 : 0) +
                                 ": " + detail};
    }
    if (const auto& key = builder.duplicate())
        return Error{EINVAL, std::string(origin) + ": " + *key +
                                 ": duplicate key; give each key once (the last one would "
                                 "silently win)"};
    const json document = builder.take_document();

    if (!document.is_object()) {
        return Error{EINVAL, std::string(origin) + ": " + shown(document) +
                                 " is not a configuration; use a JSON object with the keys " +
                                 quoted_list(top_keys) + ", or {} for the defaults"};
    }
    Config config;
    Reader r(origin);
    r.check_keys(document, "", top_keys);

    if (const json* boot = r.section(&document, "", "boot", boot_keys)) {
        r.boolean(boot, "boot", "apply", config.boot.apply);
        r.duration(boot, "boot", "crash_guard_seconds", config.boot.crash_guard_seconds, 0,
                   86'400);
    }
    if (const json* transition = r.section(&document, "", "transition", transition_keys)) {
        r.duration(transition, "transition", "stall_timeout_ms",
                   config.transition.stall_timeout_ms, 100, max_ms);
        r.one_of(transition, "transition", "on_stall", config.transition.on_stall,
                 stall_action_names);
    }
    if (const json* remediation = r.section(&document, "", "remediation", remediation_keys)) {
        RemediationConfig& rc = config.remediation;
        r.boolean(remediation, "remediation", "enabled", rc.enabled);
        r.duration(remediation, "remediation", "grace_ms", rc.grace_ms, 0, max_ms);
        constexpr auto kick_path = "remediation.kick"sv;
        if (const json* kick = r.section(remediation, "remediation", "kick", kick_keys)) {
            r.boolean(kick, kick_path, "enabled", rc.kick.enabled);
            // At least 10 ms: each kick is a signal-like wakeup of every pending task.
            r.duration(kick, kick_path, "interval_ms", rc.kick.interval_ms, 10, max_ms);
        }
        constexpr auto sc_path = "remediation.stop_continue"sv;
        if (const json* sc =
                r.section(remediation, "remediation", "stop_continue", stop_continue_keys)) {
            StopContinueConfig& scc = rc.stop_continue;
            r.boolean(sc, sc_path, "enabled", scc.enabled);
            r.duration(sc, sc_path, "after_ms", scc.after_ms, 0, max_ms);
            // The process is frozen for hold_ms: at least long enough to leave the patched
            // function, at most 10 s so that a stop is never an outage.
            r.duration(sc, sc_path, "hold_ms", scc.hold_ms, 1, 10'000);
            r.strings(sc, sc_path, "exclude_units", scc.exclude_units,
                      R"("sshd.service", "user.slice")", check_unit_name);
            r.strings(sc, sc_path, "exclude_commands", scc.exclude_commands,
                      R"("qemu-system-x86", "postgres")", check_command_name);
            r.boolean(sc, sc_path, "other_pid_namespaces", scc.other_pid_namespaces);
        }
    }
    if (const json* log = r.section(&document, "", "log", log_keys))
        r.one_of(log, "log", "level", config.log.level, log_level_names);
    if (const json* metrics = r.section(&document, "", "metrics", metrics_keys))
        r.text(metrics, "metrics", "textfile", config.metrics.textfile,
               "use an absolute path ending in \".prom\" in node_exporter's textfile directory, "
               "such as \"" + std::string(default_metrics_textfile) +
                   "\", or \"\" to write no metrics file",
               check_textfile_path);

    if (r.failed())
        return r.take_error();
    return config;
}

bool command_matches(std::string_view comm, std::string_view entry)
{
    if (comm == entry)
        return true;
    if (!comm.starts_with(entry))
        return false;
    // What follows must be the first bytes of one character, as \xNN, up to the kernel's 15.
    std::string_view rest = comm.substr(entry.size());
    std::vector<unsigned> bytes;
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        return -1;
    };
    while (rest.size() >= 4 && rest[0] == '\\' && rest[1] == 'x' && hex(rest[2]) >= 0 &&
           hex(rest[3]) >= 0) {
        bytes.push_back(static_cast<unsigned>(hex(rest[2]) * 16 + hex(rest[3])));
        rest.remove_prefix(4);
    }
    if (!rest.empty() || bytes.empty() || entry.size() + bytes.size() != comm_max_length)
        return false;
    const unsigned lead = bytes[0];
    const std::size_t length = lead >= 0xc2 && lead <= 0xdf   ? 2
                               : lead >= 0xe0 && lead <= 0xef ? 3
                               : lead >= 0xf0 && lead <= 0xf4 ? 4
                                                              : 0;
    if (bytes.size() >= length)
        return false;
    return std::all_of(bytes.begin() + 1, bytes.end(),
                       [](unsigned b) { return b >= 0x80 && b <= 0xbf; });
}

Result<Config> load_config(const std::filesystem::path& path, MissingConfig if_missing)
{
    struct FileCloser {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    const std::string name = path.string();
    auto describe = [&name](int errnum, std::string_view what) {
        return Error{errnum, name + ": " + std::string(what) + ": " +
                                 std::generic_category().message(errnum)};
    };

    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(name.c_str(), "re"));
    if (!file) {
        const int errnum = errno;
        if (errnum == ENOENT && if_missing == MissingConfig::use_defaults)
            return Config{};
        return describe(errnum, "cannot open the configuration file");
    }

    std::string text;
    char buffer[8192];
    for (;;) {
        const std::size_t n = std::fread(buffer, 1, sizeof buffer, file.get());
        text.append(buffer, n);
        if (text.size() > config_max_size)
            return Error{EFBIG, name + ": the configuration file is larger than " +
                                    std::to_string(config_max_size >> 20) +
                                    " MiB; is this the right file?"};
        if (n < sizeof buffer) {
            if (std::ferror(file.get()))
                return describe(errno ? errno : EIO, "cannot read the configuration file");
            break;
        }
    }
    return parse_config(text, name);
}

json to_json(const Config& config)
{
    const RemediationConfig& rc = config.remediation;
    return json{
        {"boot",
         {
             {"apply", config.boot.apply},
             {"crash_guard_seconds", config.boot.crash_guard_seconds.count()},
         }},
        {"transition",
         {
             {"stall_timeout_ms", config.transition.stall_timeout_ms.count()},
             {"on_stall", to_string(config.transition.on_stall)},
         }},
        {"remediation",
         {
             {"enabled", rc.enabled},
             {"grace_ms", rc.grace_ms.count()},
             {"kick", {{"enabled", rc.kick.enabled}, {"interval_ms", rc.kick.interval_ms.count()}}},
             {"stop_continue",
              {
                  {"enabled", rc.stop_continue.enabled},
                  {"after_ms", rc.stop_continue.after_ms.count()},
                  {"hold_ms", rc.stop_continue.hold_ms.count()},
                  {"exclude_units", rc.stop_continue.exclude_units},
                  {"exclude_commands", rc.stop_continue.exclude_commands},
                  {"other_pid_namespaces", rc.stop_continue.other_pid_namespaces},
              }},
         }},
        {"log", {{"level", to_string(config.log.level)}}},
        {"metrics", {{"textfile", config.metrics.textfile}}},
    };
}

} // namespace livepatchd
