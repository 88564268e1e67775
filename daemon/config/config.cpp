// SPDX-License-Identifier: GPL-2.0-only
#include "config/config.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
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

// Known keys, in documentation order; used both to reject unknown keys and to list the
// accepted ones in the error.
constexpr std::array top_keys{"boot"sv, "transition"sv, "remediation"sv, "log"sv};
constexpr std::array boot_keys{"apply"sv, "crash_guard_seconds"sv};
constexpr std::array transition_keys{"stall_timeout_ms"sv, "on_stall"sv};
constexpr std::array remediation_keys{"enabled"sv, "grace_ms"sv, "kick"sv, "stop_continue"sv};
constexpr std::array kick_keys{"enabled"sv, "interval_ms"sv};
constexpr std::array stop_continue_keys{"enabled"sv,       "after_ms"sv,
                                        "hold_ms"sv,       "exclude_units"sv,
                                        "exclude_commands"sv, "other_pid_namespaces"sv};
constexpr std::array log_keys{"level"sv};

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

// A value as the user wrote it (JSON), shortened so that a pasted blob does not flood the
// message.
std::string shown(const json& value)
{
    constexpr std::size_t max = 60;
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > max) {
        text.resize(max - 3);
        text += "...";
    }
    return text;
}

// nlohmann keeps the last of duplicate keys without a word; a key given twice is as much a
// mistake as a misspelt one, so the parse callback looks for it.
class DuplicateKeyFinder {
public:
    bool operator()(int /*depth*/, json::parse_event_t event, json& parsed)
    {
        switch (event) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start:
            frames_.push_back({child_path(), event == json::parse_event_t::object_start, {}, {}});
            break;
        case json::parse_event_t::object_end:
        case json::parse_event_t::array_end:
            if (!frames_.empty())
                frames_.pop_back();
            break;
        case json::parse_event_t::key:
            if (!frames_.empty() && parsed.is_string()) {
                Frame& frame = frames_.back();
                frame.key = parsed.get<std::string>();
                if (!frame.keys.insert(frame.key).second && !duplicate_)
                    duplicate_ = dotted(frame.path, frame.key);
            }
            break;
        case json::parse_event_t::value:
            break;
        }
        return true; // keep everything: the finder only watches
    }

    const std::optional<std::string>& duplicate() const { return duplicate_; }

private:
    struct Frame {
        std::string path;
        bool is_object;
        std::string key; // the key whose value is being parsed, in an object
        std::set<std::string, std::less<>> keys;
    };

    std::string child_path() const
    {
        if (frames_.empty())
            return {};
        const Frame& parent = frames_.back();
        return parent.is_object ? dotted(parent.path, parent.key) : parent.path + "[]";
    }

    std::vector<Frame> frames_;
    std::optional<std::string> duplicate_;
};

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
        if (!value->is_number_integer())
            return fail(dotted(path, key), shown(*value) + " is not an integer; " + accepted);
        // Every minimum is >= 0, and nlohmann stores non-negative integers as unsigned: reading
        // them as such keeps a value above INT64_MAX out of range instead of wrapping it.
        static_assert(std::is_same_v<Duration, std::chrono::seconds> ||
                      std::is_same_v<Duration, std::chrono::milliseconds>);
        const bool in_range = min >= 0 && value->is_number_unsigned() &&
                              value->get<std::uint64_t>() >= static_cast<std::uint64_t>(min) &&
                              value->get<std::uint64_t>() <= static_cast<std::uint64_t>(max);
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
    if (dot == std::string::npos || dot == 0)
        return "is not a systemd unit name; use the full name with its type suffix, such as "
               "\"" + (name.empty() ? std::string("sshd") : name) + ".service\"";
    const std::string_view suffix = std::string_view(name).substr(dot);
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

std::string check_command_name(const std::string& comm)
{
    if (comm.empty())
        return "is empty; use a command name as ps -o comm shows it, such as \"qemu-system-x86\"";
    if (comm.size() > comm_max_length)
        return "is " + std::to_string(comm.size()) + " bytes long, but the kernel keeps only " +
               std::to_string(comm_max_length) +
               " (TASK_COMM_LEN - 1) of a command name, so it would never match; use \"" +
               comm.substr(0, comm_max_length) + "\"";
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
    json document;
    DuplicateKeyFinder duplicates;
    try {
        document = json::parse(
            json_text,
            [&duplicates](int depth, json::parse_event_t event, json& parsed) {
                return duplicates(depth, event, parsed);
            },
            /*allow_exceptions=*/true, /*ignore_comments=*/false);
    } catch (const json::parse_error& e) {
        // Position of the offending byte: e.byte counts the bytes read, that byte included.
        const std::size_t offset = e.byte > 0 ? std::min(e.byte - 1, json_text.size()) : 0;
        const std::string_view before = json_text.substr(0, offset);
        const std::size_t line = 1 + static_cast<std::size_t>(
                                         std::count(before.begin(), before.end(), '\n'));
        const auto line_start = before.rfind('\n');
        const std::size_t column =
            1 + offset - (line_start == std::string_view::npos ? 0 : line_start + 1);
        // what() is "[json.exception.parse_error.101] parse error at line L, column C: <detail>";
        // keep the detail, the position is already ours.
        std::string detail = e.what();
        if (auto at = detail.find("column "); at != std::string::npos)
            if (auto colon = detail.find(": ", at); colon != std::string::npos)
                detail = detail.substr(colon + 2);
        return Error{EINVAL, std::string(origin) + ":" + std::to_string(line) + ":" +
                                 std::to_string(column) + ": " + detail};
    } catch (const json::exception& e) {
        // out_of_range 406: a number no type holds ("1e400"); found by tests/fuzz/fuzz_config.
        return Error{EINVAL, std::string(origin) + ": " + e.what() +
                                 "; use an integer in the range the key accepts"};
    }
    if (const auto& key = duplicates.duplicate())
        return Error{EINVAL, std::string(origin) + ": " + *key +
                                 ": duplicate key; give each key once (the last one would "
                                 "silently win)"};

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

    if (r.failed())
        return r.take_error();
    return config;
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
    };
}

} // namespace livepatchd
