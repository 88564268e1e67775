// SPDX-License-Identifier: GPL-2.0-only
//
// The configuration contract: defaults, every validation rule and the wording of its error, the
// missing-file policy, and the round trip through to_json that --check-config relies on.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <iterator>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "allocation_budget.hpp"
#include "config/config.hpp"

using namespace livepatchd;
using namespace std::chrono_literals;
using livepatchd::test::AllocationBudget;

namespace {

constexpr std::string_view origin = "test.json";

Config parse_ok(std::string_view text)
{
    auto result = parse_config(text, origin);
    if (!result)
        FAIL("unexpected error: " << result.error().message);
    return *result;
}

// The full message for text, which must be rejected with EINVAL.
std::string parse_error(std::string_view text)
{
    auto result = parse_config(text, origin);
    if (result)
        FAIL("accepted: " << text);
    CHECK(result.error().errnum == EINVAL);
    return result.error().message;
}

// A scratch directory removed at the end of the test case.
struct TempDir {
    std::filesystem::path path;
    TempDir()
    {
        std::string templ = (std::filesystem::temp_directory_path() / "livepatchd-test-XXXXXX").string();
        REQUIRE(mkdtemp(templ.data()) != nullptr);
        path = templ;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::filesystem::path write(std::string_view name, std::string_view text) const
    {
        const auto file = path / name;
        std::ofstream(file) << text;
        return file;
    }
};

} // namespace

TEST_CASE("defaults are the documented values")
{
    const Config c;
    CHECK(c.boot.apply == true);
    CHECK(c.boot.crash_guard_seconds == 300s);
    CHECK(c.transition.stall_timeout_ms == 30000ms);
    CHECK(c.transition.on_stall == StallAction::revert);
    CHECK(c.remediation.enabled == true);
    CHECK(c.remediation.grace_ms == 200ms);
    CHECK(c.remediation.kick.enabled == true);
    CHECK(c.remediation.kick.interval_ms == 500ms);
    CHECK(c.remediation.stop_continue.enabled == true);
    CHECK(c.remediation.stop_continue.after_ms == 600ms);
    CHECK(c.remediation.stop_continue.hold_ms == 50ms);
    CHECK(c.remediation.stop_continue.exclude_units.empty());
    CHECK(c.remediation.stop_continue.exclude_commands.empty());
    CHECK(c.log.level == LogLevel::info);
    CHECK(default_config_path == SYSCONFDIR "/livepatchd/livepatchd.json");
}

TEST_CASE("an empty object and empty sections mean the defaults")
{
    CHECK(parse_ok("{}") == Config{});
    CHECK(parse_ok(R"({"boot": {}, "transition": {}, "remediation": {"kick": {}, "stop_continue": {}}, "log": {}})") ==
          Config{});
}

TEST_CASE("every key is read")
{
    const Config c = parse_ok(R"({
      "boot": {"apply": false, "crash_guard_seconds": 0},
      "transition": {"stall_timeout_ms": 100, "on_stall": "force"},
      "remediation": {
        "enabled": false, "grace_ms": 0,
        "kick": {"enabled": false, "interval_ms": 3600000},
        "stop_continue": {"enabled": false, "after_ms": 3600000, "hold_ms": 10000,
                          "exclude_units": ["sshd.service", "user.slice", "getty@tty1.service", "session-2.scope"],
                          "exclude_commands": ["qemu-system-x86", "postgres"]}
      },
      "log": {"level": "debug"}
    })");
    CHECK(c.boot.apply == false);
    CHECK(c.boot.crash_guard_seconds == 0s);
    CHECK(c.transition.stall_timeout_ms == 100ms);
    CHECK(c.transition.on_stall == StallAction::force);
    CHECK(c.remediation.enabled == false);
    CHECK(c.remediation.grace_ms == 0ms);
    CHECK(c.remediation.kick.enabled == false);
    CHECK(c.remediation.kick.interval_ms == 3600000ms);
    CHECK(c.remediation.stop_continue.enabled == false);
    CHECK(c.remediation.stop_continue.after_ms == 3600000ms);
    CHECK(c.remediation.stop_continue.hold_ms == 10000ms);
    CHECK(c.remediation.stop_continue.exclude_units ==
          std::vector<std::string>{"sshd.service", "user.slice", "getty@tty1.service", "session-2.scope"});
    CHECK(c.remediation.stop_continue.exclude_commands ==
          std::vector<std::string>{"qemu-system-x86", "postgres"});
    CHECK(c.log.level == LogLevel::debug);
}

TEST_CASE("enum values: every name is accepted and maps to its own value")
{
    CHECK(parse_ok(R"({"transition": {"on_stall": "wait"}})").transition.on_stall == StallAction::wait);
    CHECK(parse_ok(R"({"transition": {"on_stall": "revert"}})").transition.on_stall == StallAction::revert);
    CHECK(parse_ok(R"({"transition": {"on_stall": "force"}})").transition.on_stall == StallAction::force);
    CHECK(parse_ok(R"({"log": {"level": "debug"}})").log.level == LogLevel::debug);
    CHECK(parse_ok(R"({"log": {"level": "info"}})").log.level == LogLevel::info);
    CHECK(parse_ok(R"({"log": {"level": "notice"}})").log.level == LogLevel::notice);
    CHECK(parse_ok(R"({"log": {"level": "warning"}})").log.level == LogLevel::warning);
    CHECK(parse_ok(R"({"log": {"level": "err"}})").log.level == LogLevel::err);
    // The numeric values are the syslog priorities, passed to the journal as they are.
    CHECK(static_cast<int>(LogLevel::err) == 3);
    CHECK(static_cast<int>(LogLevel::debug) == 7);
    CHECK(to_string(StallAction::wait) == "wait");
    CHECK(to_string(LogLevel::warning) == "warning");
}

TEST_CASE("JSON syntax errors name the file, line and column")
{
    SUBCASE("bad literal on line 3") {
        const std::string m = parse_error("{\n  \"boot\": {\n    \"apply\": tru\n  }\n}");
        CHECK(m.starts_with("test.json:3:"));
        CHECK(m.find("tru") != std::string::npos);
        CHECK(m.find("[json.exception") == std::string::npos);
    }
    SUBCASE("missing value, exact column") {
        // The '}' at line 2, column 10 is where a value was expected.
        CHECK(parse_error("{\n  \"log\": }").starts_with("test.json:2:10: "));
    }
    SUBCASE("trailing comma") {
        CHECK(parse_error("{\"log\": {\"level\": \"info\"},}").starts_with("test.json:1:"));
    }
    SUBCASE("empty document") {
        CHECK(parse_error("").starts_with("test.json:1:1: "));
    }
    SUBCASE("comments are not JSON") {
        CHECK(parse_error("// comment\n{}").starts_with("test.json:1:"));
    }
}

TEST_CASE("the top level must be an object")
{
    const std::string m = parse_error("[1, 2]");
    CHECK(m == R"(test.json: [1,2] is not a configuration; use a JSON object with the keys "boot", "transition", "remediation", "log", "metrics", or {} for the defaults)");
}

TEST_CASE("a duplicate key is an error, at any level")
{
    CHECK(parse_error(R"({"log": {}, "log": {}})") ==
          "test.json: log: duplicate key; give each key once (the last one would silently win)");
    CHECK(parse_error(R"({"remediation": {"kick": {"enabled": true, "enabled": false}}})")
              .starts_with("test.json: remediation.kick.enabled: duplicate key"));
    // The same key in different objects is fine.
    CHECK(parse_ok(R"({"remediation": {"enabled": false, "kick": {"enabled": false}}})").remediation.kick.enabled == false);
}

TEST_CASE("unknown keys name the dotted key and list the known keys at that level")
{
    CHECK(parse_error(R"({"bot": {}})") ==
          R"(test.json: bot: unknown key (did you mean "boot"?); the top-level keys are "boot", "transition", "remediation", "log", "metrics")");
    CHECK(parse_error(R"({"frobnicate": 1})") ==
          R"(test.json: frobnicate: unknown key; the top-level keys are "boot", "transition", "remediation", "log", "metrics")");
    CHECK(parse_error(R"({"boot": {"aply": true}})") ==
          R"(test.json: boot.aply: unknown key (did you mean "apply"?); the keys in "boot" are "apply", "crash_guard_seconds")");
    CHECK(parse_error(R"({"transition": {"stall_timeout": 100}})")
              .starts_with("test.json: transition.stall_timeout: unknown key"));
    CHECK(parse_error(R"({"remediation": {"kick": {"intervall_ms": 100}}})") ==
          R"(test.json: remediation.kick.intervall_ms: unknown key (did you mean "interval_ms"?); the keys in "remediation.kick" are "enabled", "interval_ms")");
    CHECK(parse_error(R"({"remediation": {"stop_continue": {"exclude_unit": []}}})") ==
          R"(test.json: remediation.stop_continue.exclude_unit: unknown key (did you mean "exclude_units"?); the keys in "remediation.stop_continue" are "enabled", "after_ms", "hold_ms", "exclude_units", "exclude_commands", "other_pid_namespaces")");
    CHECK(parse_error(R"({"log": {"level": "info", "target": "journal"}})")
              .starts_with(R"(test.json: log.target: unknown key; the keys in "log" are "level")"));
}

TEST_CASE("wrong types name the key, the value and what is accepted")
{
    CHECK(parse_error(R"({"boot": true})") ==
          R"(test.json: boot: true is not an object; use an object with the keys "apply", "crash_guard_seconds")");
    CHECK(parse_error(R"({"remediation": {"kick": []}})") ==
          R"(test.json: remediation.kick: [] is not an object; use an object with the keys "enabled", "interval_ms")");
    CHECK(parse_error(R"({"boot": {"apply": "yes"}})") ==
          R"(test.json: boot.apply: "yes" is not a boolean; use true or false)");
    CHECK(parse_error(R"({"boot": {"apply": 1}})") ==
          R"(test.json: boot.apply: 1 is not a boolean; use true or false)");
    CHECK(parse_error(R"({"transition": {"stall_timeout_ms": "30s"}})") ==
          R"(test.json: transition.stall_timeout_ms: "30s" is not an integer; use an integer from 100 to 3600000 (milliseconds))");
    CHECK(parse_error(R"({"remediation": {"grace_ms": 1.5}})") ==
          R"(test.json: remediation.grace_ms: 1.5 is not an integer; use an integer from 0 to 3600000 (milliseconds))");
    CHECK(parse_error(R"({"boot": {"crash_guard_seconds": null}})") ==
          R"(test.json: boot.crash_guard_seconds: null is not an integer; use an integer from 0 to 86400 (seconds))");
    CHECK(parse_error(R"({"remediation": {"stop_continue": {"exclude_units": "sshd.service"}}})") ==
          R"(test.json: remediation.stop_continue.exclude_units: "sshd.service" is not an array; use a list such as ["sshd.service", "user.slice"])");
    CHECK(parse_error(R"({"remediation": {"stop_continue": {"exclude_commands": ["ok", 7]}}})") ==
          R"(test.json: remediation.stop_continue.exclude_commands[1]: 7 is not a string; use a list such as ["qemu-system-x86", "postgres"])");
    CHECK(parse_error(R"({"log": {"level": 6}})") ==
          R"(test.json: log.level: 6 is not one of "debug", "info", "notice", "warning", "err")");
}

TEST_CASE("a long bad value is shortened in the message")
{
    const std::string m = parse_error(R"({"boot": {"apply": ")" + std::string(200, 'x') + R"("}})");
    CHECK(m.find("...") != std::string::npos);
    CHECK(m.size() < 150);
    // Shortened between characters, never inside one.
    std::string e200 = "x"; // so that the 57th byte of "x... is inside a character
    for (int i = 0; i < 200; ++i)
        e200 += "\u00e9";
    const std::string e = parse_error(R"({"boot": {"apply": ")" + e200 + R"("}})");
    CHECK(e.find("...") != std::string::npos);
    CHECK(is_valid_utf8(e));
}

TEST_CASE("ranges: the bounds are accepted, one past them is not")
{
    struct Case {
        std::string key_json; // {"a": {"b": VALUE}} with VALUE as @
        std::string dotted;
        long long min, max;
        std::string unit;
    };
    const Case cases[] = {
        {R"({"boot": {"crash_guard_seconds": @}})", "boot.crash_guard_seconds", 0, 86400, "seconds"},
        {R"({"transition": {"stall_timeout_ms": @}})", "transition.stall_timeout_ms", 100, 3600000, "milliseconds"},
        {R"({"remediation": {"grace_ms": @}})", "remediation.grace_ms", 0, 3600000, "milliseconds"},
        {R"({"remediation": {"kick": {"interval_ms": @}}})", "remediation.kick.interval_ms", 10, 3600000, "milliseconds"},
        {R"({"remediation": {"stop_continue": {"after_ms": @}}})", "remediation.stop_continue.after_ms", 0, 3600000, "milliseconds"},
        {R"({"remediation": {"stop_continue": {"hold_ms": @}}})", "remediation.stop_continue.hold_ms", 1, 10000, "milliseconds"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.dotted);
        auto with = [&c](long long v) {
            std::string text = c.key_json;
            text.replace(text.find('@'), 1, std::to_string(v));
            return text;
        };
        CHECK(parse_config(with(c.min), origin));
        CHECK(parse_config(with(c.max), origin));
        const std::string accepted = "use an integer from " + std::to_string(c.min) + " to " +
                                     std::to_string(c.max) + " (" + c.unit + ")";
        CHECK(parse_error(with(c.max + 1)) ==
              "test.json: " + c.dotted + ": " + std::to_string(c.max + 1) + " is out of range; " + accepted);
        CHECK(parse_error(with(c.min - 1)) ==
              "test.json: " + c.dotted + ": " + std::to_string(c.min - 1) + " is out of range; " + accepted);
    }
    // Beyond 64 bits: out of range, not wrapped into range.
    CHECK(parse_error(R"({"remediation": {"grace_ms": 18446744073709551616}})")
              .starts_with("test.json: remediation.grace_ms: "));
    CHECK(parse_error(R"({"remediation": {"grace_ms": 18446744073709551615}})")
              .find("is out of range") != std::string::npos);
}

TEST_CASE("enum values outside the set are listed with what is accepted")
{
    CHECK(parse_error(R"({"transition": {"on_stall": "retry"}})") ==
          R"(test.json: transition.on_stall: "retry" is not one of "wait", "revert", "force")");
    CHECK(parse_error(R"({"transition": {"on_stall": "revret"}})") ==
          R"(test.json: transition.on_stall: "revret" is not one of "wait", "revert", "force" (did you mean "revert"?))");
    CHECK(parse_error(R"({"transition": {"on_stall": "Revert"}})")
              .starts_with(R"(test.json: transition.on_stall: "Revert" is not one of)"));
    CHECK(parse_error(R"({"log": {"level": "error"}})") ==
          R"(test.json: log.level: "error" is not one of "debug", "info", "notice", "warning", "err" (did you mean "err"?))");
    CHECK(parse_error(R"({"log": {"level": "verbose"}})") ==
          R"(test.json: log.level: "verbose" is not one of "debug", "info", "notice", "warning", "err")");
}

TEST_CASE("exclude_units entries must be systemd unit names of units that hold processes")
{
    const std::string key = "test.json: remediation.stop_continue.exclude_units[0]: ";
    auto units = [](std::string_view entry) {
        return R"({"remediation": {"stop_continue": {"exclude_units": [")" + std::string(entry) + R"("]}}})";
    };
    for (const char* good : {"sshd.service", "user.slice", "session-4.scope", "docker.socket",
                             "home.mount", "dev-sda2.swap", "getty@tty1.service",
                             "system-getty.slice", R"(dev-disk-by\\x2duuid.swap)"}) {
        const std::string name = good; // CAPTURE shows a const char* as a pointer
        CAPTURE(name);
        CHECK(parse_config(units(good), origin));
    }
    CHECK(parse_error(units("sshd")) ==
          key + R"("sshd" is not a systemd unit name; use the full name with its type suffix, such as "sshd.service")");
    CHECK(parse_error(units("")).starts_with(key + R"("" is not a systemd unit name)"));
    CHECK(parse_error(units(".service")).starts_with(key + R"(".service" is not a systemd unit name)"));
    CHECK(parse_error(units("/usr/sbin/sshd")) ==
          key + R"("/usr/sbin/sshd" is not a unit name but a path; use the unit's name, such as "sshd.service")");
    CHECK(parse_error(units("system.slice/sshd.service")).find("is not a unit name but a path") != std::string::npos);
    CHECK(parse_error(units("multi-user.target")) ==
          key + R"("multi-user.target" is not a unit that can contain processes; use a unit name ending in ".service", ".scope", ".slice", ".socket", ".mount", ".swap")");
    CHECK(parse_error(units("sshd.servce")).find("is not a unit that can contain processes") != std::string::npos);
    CHECK(parse_error(units("my daemon.service")) ==
          key + R"("my daemon.service" is not a systemd unit name: it contains ' '; see systemd-escape(1) for how to name such a unit)");
    CHECK(parse_error(units("getty@.service")) ==
          key + R"("getty@.service" is a template, which never contains processes itself; name an instance, such as "getty@tty1.service")");
    CHECK(parse_error(units("@x.service")).find("starts with '@'") != std::string::npos);
    CHECK(parse_error(units(std::string(250, 'a') + ".service")).find("is longer than 255 characters") != std::string::npos);
    // The index names the offending entry, not the first one.
    CHECK(parse_error(R"({"remediation": {"stop_continue": {"exclude_units": ["a.service", "b"]}}})")
              .starts_with("test.json: remediation.stop_continue.exclude_units[1]: \"b\""));
}

TEST_CASE("exclude_commands entries are non-empty and fit in the kernel's comm")
{
    auto commands = [](std::string_view entry) {
        return R"({"remediation": {"stop_continue": {"exclude_commands": [")" + std::string(entry) + R"("]}}})";
    };
    CHECK(parse_ok(commands("systemd-journal")).remediation.stop_continue.exclude_commands ==
          std::vector<std::string>{"systemd-journal"}); // exactly 15
    CHECK(parse_error(commands("systemd-journald")) ==
          R"(test.json: remediation.stop_continue.exclude_commands[0]: "systemd-journald" is 16 bytes long, but the kernel keeps only 15 (TASK_COMM_LEN - 1) of a command name, so it would never match; use "systemd-journal")");
    CHECK(parse_error(commands("")) ==
          R"(test.json: remediation.stop_continue.exclude_commands[0]: "" is empty; use a command name as ps -o comm shows it, such as "qemu-system-x86")");
    CHECK(comm_max_length == 15);
}

TEST_CASE("the first error is reported, in document order of the schema")
{
    CHECK(parse_error(R"({"boot": {"apply": 1}, "log": {"level": "x"}})").starts_with("test.json: boot.apply:"));
    // Unknown keys are found before bad values in the same object.
    CHECK(parse_error(R"({"log": {"level": "x"}, "xyz": 1})").starts_with("test.json: xyz: unknown key"));
}

TEST_CASE("to_json prints every key, and parsing it gives the same configuration back")
{
    const nlohmann::json defaults = to_json(Config{});
    CHECK(defaults["boot"]["apply"] == true);
    CHECK(defaults["boot"]["crash_guard_seconds"] == 300);
    CHECK(defaults["transition"]["stall_timeout_ms"] == 30000);
    CHECK(defaults["transition"]["on_stall"] == "revert");
    CHECK(defaults["remediation"]["grace_ms"] == 200);
    CHECK(defaults["remediation"]["kick"]["interval_ms"] == 500);
    CHECK(defaults["remediation"]["stop_continue"]["after_ms"] == 600);
    CHECK(defaults["remediation"]["stop_continue"]["hold_ms"] == 50);
    CHECK(defaults["remediation"]["stop_continue"]["exclude_units"] == nlohmann::json::array());
    CHECK(defaults["log"]["level"] == "info");
    CHECK(parse_ok(defaults.dump()) == Config{});

    Config changed;
    changed.boot.apply = false;
    changed.boot.crash_guard_seconds = 0s;
    changed.transition.on_stall = StallAction::wait;
    changed.transition.stall_timeout_ms = 1234ms;
    changed.remediation.kick.enabled = false;
    changed.remediation.stop_continue.hold_ms = 7ms;
    changed.remediation.stop_continue.exclude_units = {"sshd.service"};
    changed.remediation.stop_continue.exclude_commands = {"postgres"};
    changed.log.level = LogLevel::notice;
    REQUIRE(changed != Config{});
    CHECK(parse_ok(to_json(changed).dump(2)) == changed);
}

TEST_CASE("config/livepatchd.json holds exactly the defaults")
{
    const char* path = std::getenv("LIVEPATCHD_CONFIG_EXAMPLE");
    REQUIRE_MESSAGE(path != nullptr, "meson sets LIVEPATCHD_CONFIG_EXAMPLE to config/livepatchd.json");
    auto result = load_config(path, MissingConfig::fail);
    REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
    CHECK(*result == Config{});
    // And it spells out every key: nothing is left to the defaults silently.
    std::ifstream in(path);
    CHECK(nlohmann::json::parse(in) == to_json(Config{}));
}

TEST_CASE("load_config: a missing file is the defaults only at the default path")
{
    TempDir dir;
    const auto missing = dir.path / "livepatchd.json";

    auto defaults = load_config(missing, MissingConfig::use_defaults);
    REQUIRE(defaults.ok());
    CHECK(*defaults == Config{});

    auto explicit_missing = load_config(missing, MissingConfig::fail);
    REQUIRE_FALSE(explicit_missing.ok());
    CHECK(explicit_missing.error().errnum == ENOENT);
    CHECK(explicit_missing.error().message ==
          missing.string() + ": cannot open the configuration file: No such file or directory");
}

TEST_CASE("load_config reads the file and names it in errors")
{
    TempDir dir;
    const auto good = dir.write("good.json", R"({"log": {"level": "debug"}})");
    for (MissingConfig m : {MissingConfig::use_defaults, MissingConfig::fail}) {
        auto c = load_config(good, m);
        REQUIRE(c.ok());
        CHECK(c->log.level == LogLevel::debug);
    }

    const auto bad = dir.write("bad.json", "{\n\"log\": {\"level\": \"loud\"}}");
    auto semantic = load_config(bad, MissingConfig::use_defaults);
    REQUIRE_FALSE(semantic.ok());
    CHECK(semantic.error().message.starts_with(bad.string() + ": log.level: \"loud\""));

    const auto broken = dir.write("broken.json", "{\n\n  \"log\" {}\n}");
    auto syntax = load_config(broken, MissingConfig::use_defaults);
    REQUIRE_FALSE(syntax.ok());
    CHECK(syntax.error().message.starts_with(broken.string() + ":3:9: "));

    // A directory where the file should be is an error even at the default path: only a
    // missing file means "use the defaults".
    auto directory = load_config(dir.path, MissingConfig::use_defaults);
    REQUIRE_FALSE(directory.ok());
    CHECK(directory.error().errnum == EISDIR);
    CHECK(directory.error().message.starts_with(dir.path.string() + ": cannot read the configuration file: "));

    const auto huge = dir.write("huge.json", std::string(config_max_size + 1, ' '));
    auto too_big = load_config(huge, MissingConfig::fail);
    REQUIRE_FALSE(too_big.ok());
    CHECK(too_big.error().errnum == EFBIG);
    CHECK(too_big.error().message.find("larger than 1 MiB") != std::string::npos);
}

TEST_CASE("a number no type can hold is an error, not an exception (found by fuzz_config)")
{
    auto config = parse_config(R"({"boot": {"crash_guard_seconds": 1e400}})", "test.json");
    REQUIRE_FALSE(config);
    CHECK(config.error().message.starts_with("test.json: "));
}

// Issue 18: nesting cost memory quadratically (80 KB of '[' took 1.7 GB), so the daemon would
// have crash-looped on a broken file instead of printing its one-line error.
TEST_CASE("nesting: 64 levels are read, the 65th is refused where it opens")
{
    // {"boot": {"apply": [[...]]}}: two objects, then arrays; the documented limit is 64
    // (docs/configuration.md). The array opened at column 19 + k is level 2 + k.
    auto nested = [](std::size_t arrays) {
        return R"({"boot": {"apply": )" + std::string(arrays, '[') + std::string(arrays, ']') + "}}";
    };
    // 64 levels: no complaint about the depth; the schema then refuses the value.
    CHECK(parse_error(nested(62)).starts_with("test.json: boot.apply: [[[["));
    const std::string m = parse_error(nested(63));
    CHECK(m == "test.json:1:82: arrays and objects nested more than 64 deep; a configuration "
               "nests at most 4 (remediation.stop_continue.exclude_units)");
    // Objects count as arrays do.
    std::string objects;
    for (int i = 0; i < 70; ++i)
        objects += R"({"a":)";
    CHECK(parse_error(objects).starts_with("test.json:1:321: arrays and objects nested more than 64 deep"));
    // Brackets inside strings are text.
    CHECK(parse_ok(R"({"remediation": {"stop_continue": {"exclude_commands": [")" +
                   std::string(14, '[') + R"("]}}})")
              .remediation.stop_continue.exclude_commands.size() == 1);
    // A syntax error before the 65th level is the one reported.
    const std::string early = parse_error(R"({"boot": tru )" + std::string(100, '['));
    CHECK(early.starts_with("test.json:1:"));
    CHECK(early.find("invalid literal") != std::string::npos);
}

TEST_CASE("nesting: 1 MiB of '[' is refused in bounded memory with the one-line error")
{
    const std::string brackets(config_max_size, '[');
    std::optional<Result<Config>> result;
    {
        // Far less than the input: the parser must stop at the limit, not read on.
        AllocationBudget budget(256 * 1024);
        result.emplace(parse_config(brackets, origin));
    }
    REQUIRE_FALSE(*result);
    const std::string& m = (*result).error().message;
    CHECK(m == "test.json:1:65: arrays and objects nested more than 64 deep; a configuration "
               "nests at most 4 (remediation.stop_continue.exclude_units)");
    CHECK(m.find('\n') == std::string::npos);

    // And a deep value that is closed again (valid JSON) costs no more.
    const std::string closed =
        R"({"log": )" + std::string(200'000, '[') + std::string(200'000, ']') + "}";
    std::optional<Result<Config>> closed_result;
    {
        AllocationBudget budget(256 * 1024);
        closed_result.emplace(parse_config(closed, origin));
    }
    REQUIRE_FALSE(*closed_result);
    CHECK((*closed_result).error().message.starts_with("test.json:1:72: arrays and objects nested"));
}

TEST_CASE("an empty file says that {} is the empty configuration")
{
    CHECK(parse_error("") ==
          "test.json:1:1: the file is empty; the empty configuration is {} (every key at its default)");
    CHECK(parse_error("\n  \n") ==
          "test.json:3:1: the file holds only white space; the empty configuration is {} (every "
          "key at its default)");
}

TEST_CASE("numbers are shown as they were written")
{
    CHECK(parse_error(R"({"remediation": {"grace_ms": 1e4}})") ==
          "test.json: remediation.grace_ms: 1e4 is not an integer; use an integer from 0 to 3600000 (milliseconds)");
    CHECK(parse_error(R"({"remediation": {"grace_ms": 2.50}})") ==
          "test.json: remediation.grace_ms: 2.50 is not an integer; use an integer from 0 to 3600000 (milliseconds)");
    CHECK(parse_error(R"({"remediation": {"grace_ms": 1E+2}})") ==
          "test.json: remediation.grace_ms: 1E+2 is not an integer; use an integer from 0 to 3600000 (milliseconds)");
    // An integer as written, only too large for 64 bits: out of range, not "not an integer".
    CHECK(parse_error(R"({"remediation": {"grace_ms": 99999999999999999999999}})") ==
          "test.json: remediation.grace_ms: 99999999999999999999999 is out of range; use an integer from 0 to 3600000 (milliseconds)");
    CHECK(parse_error(R"({"remediation": {"grace_ms": 18446744073709551616}})") ==
          "test.json: remediation.grace_ms: 18446744073709551616 is out of range; use an integer from 0 to 3600000 (milliseconds)");
    CHECK(parse_error(R"({"remediation": {"grace_ms": -99999999999999999999999}})") ==
          "test.json: remediation.grace_ms: -99999999999999999999999 is out of range; use an integer from 0 to 3600000 (milliseconds)");
    // A number no double holds: shown as written too (it was "number overflow parsing").
    CHECK(parse_error(R"({"boot": {"crash_guard_seconds": 1e400}})") ==
          "test.json: boot.crash_guard_seconds: 1e400 is not an integer; use an integer from 0 to 86400 (seconds)");
    // Inside a value shown whole, and where any type is wrong.
    CHECK(parse_error(R"({"boot": {"apply": [1e4, 0.10, 7]}})") ==
          "test.json: boot.apply: [1e4,0.10,7] is not a boolean; use true or false");
    CHECK(parse_error(R"({"log": {"level": 1.0}})") ==
          R"(test.json: log.level: 1.0 is not one of "debug", "info", "notice", "warning", "err")");
    CHECK(parse_error("1e4") ==
          R"(test.json: 1e4 is not a configuration; use a JSON object with the keys "boot", "transition", "remediation", "log", "metrics", or {} for the defaults)");
    // Several numbers no double holds, beside one written like the parser's stand-in for them.
    CHECK(parse_error(R"({"boot": {"apply": [1e400, -0E-0, -2e999]}})") ==
          "test.json: boot.apply: [1e400,-0E-0,-2e999] is not a boolean; use true or false");
    // -0 is the integer 0.
    CHECK(parse_ok(R"({"remediation": {"grace_ms": -0}})").remediation.grace_ms == 0ms);
}

TEST_CASE("a type suffix alone is not told to add the suffix again")
{
    const std::string key = "test.json: remediation.stop_continue.exclude_units[0]: ";
    auto units = [](std::string_view entry) {
        return R"({"remediation": {"stop_continue": {"exclude_units": [")" + std::string(entry) + R"("]}}})";
    };
    CHECK(parse_error(units(".service")) ==
          key + R"(".service" is not a systemd unit name: nothing comes before ".service"; use the unit's full name, such as "sshd.service")");
    CHECK(parse_error(units(".slice")) ==
          key + R"(".slice" is not a systemd unit name: nothing comes before ".slice"; use the unit's full name, such as "user.slice")");
}

TEST_CASE("the 15-byte form of a long command name never cuts a character")
{
    auto commands = [](std::string_view entry) {
        return R"({"remediation": {"stop_continue": {"exclude_commands": [")" + std::string(entry) + R"("]}}})";
    };
    // Nine two-byte characters: 18 bytes; the 15th byte is the first half of the 8th.
    const std::string e9 = "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9";
    const std::string e7 = "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9";
    CHECK(parse_error(commands(e9)) ==
          "test.json: remediation.stop_continue.exclude_commands[0]: \"" + e9 +
              "\" is 18 bytes long, but the kernel keeps only 15 (TASK_COMM_LEN - 1) of a command "
              "name, so it would never match; use \"" + e7 + "\"");
    // What it suggests is accepted back.
    CHECK(parse_ok(commands(e7)).remediation.stop_continue.exclude_commands ==
          std::vector<std::string>{e7});
    // A four-byte character across the limit.
    const std::string emoji = "abcdefghijklm\U0001F600";
    CHECK(parse_error(commands(emoji)).ends_with("; use \"abcdefghijklm\""));
}

TEST_CASE("metrics.textfile: a .prom file by absolute path, or \"\" for none")
{
    CHECK(Config{}.metrics.textfile == "/var/lib/prometheus/node-exporter/livepatchd.prom");
    CHECK(parse_ok(R"({"metrics": {"textfile": ""}})").metrics.textfile.empty());
    CHECK(parse_ok(R"({"metrics": {"textfile": "/srv/node exporter/lp.prom"}})").metrics.textfile ==
          "/srv/node exporter/lp.prom");
    const std::string accepted =
        "; use an absolute path ending in \".prom\" in node_exporter's textfile directory, such "
        "as \"/var/lib/prometheus/node-exporter/livepatchd.prom\", or \"\" to write no metrics file";
    auto error_for = [](std::string_view value) {
        return parse_error(R"({"metrics": {"textfile": )" + std::string(value) + "}}");
    };
    CHECK(error_for("true") == "test.json: metrics.textfile: true is not a string" + accepted);
    CHECK(error_for(R"("livepatchd.prom")") ==
          "test.json: metrics.textfile: \"livepatchd.prom\" is not an absolute path" + accepted);
    CHECK(error_for(R"("/var/lib/prometheus/node-exporter/")") ==
          "test.json: metrics.textfile: \"/var/lib/prometheus/node-exporter/\" does not name a file "
          "ending in \".prom\", the only files node_exporter's textfile collector reads" + accepted);
    CHECK(error_for(R"("/x/.prom")").find("does not name a file ending") != std::string::npos);
    CHECK(error_for(R"("/x/.hidden.prom")").find("does not name a file ending") != std::string::npos);
    CHECK(error_for(R"("/x/../y.prom")") ==
          "test.json: metrics.textfile: \"/x/../y.prom\" is not a plain path (it holds \"/../\")" + accepted);
    CHECK(error_for(R"("/x//y.prom")").find("(it holds \"//\")") != std::string::npos);
    CHECK(error_for(R"("/x/a\u0000b.prom")").find("holds a NUL byte") != std::string::npos);
    CHECK(error_for(R"("/x/a\nb.prom")").find("holds a control character") != std::string::npos);
    CHECK(error_for("\"/" + std::string(4100, 'a') + ".prom\"").find("longer than a path") != std::string::npos);
    CHECK(parse_error(R"({"metrics": {"text_file": ""}})") ==
          "test.json: metrics.text_file: unknown key (did you mean \"textfile\"?); the keys in "
          "\"metrics\" are \"textfile\"");
}

// Issue 18: docs/configuration.md against the code, so that its table stays exact: every key
// of to_json(Config{}) has a row and every row is a key; each row's default is the default;
// an integer's range is what the reader accepts, bound for bound, in the unit it names; an
// enum's values are the ones accepted; and each error example is what the reader says.
namespace {

struct DocRow {
    std::string key, type, default_value, accepted, meaning;
};

std::string trimmed(std::string_view s)
{
    while (!s.empty() && s.front() == ' ')
        s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ')
        s.remove_suffix(1);
    return std::string(s);
}

std::string unquoted(std::string_view s) // `x` -> x
{
    std::string t = trimmed(s);
    if (t.size() >= 2 && t.front() == '`' && t.back() == '`')
        return t.substr(1, t.size() - 2);
    return t;
}

std::string configuration_md()
{
    const char* path = std::getenv("LIVEPATCHD_CONFIGURATION_MD");
    REQUIRE_MESSAGE(path != nullptr, "meson sets LIVEPATCHD_CONFIGURATION_MD to docs/configuration.md");
    std::ifstream in(path);
    REQUIRE(in);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// The part of the page under "## title", up to the next "## ".
std::string section_of(const std::string& page, std::string_view title)
{
    const std::string heading = "\n## " + std::string(title) + "\n";
    const auto start = page.find(heading);
    REQUIRE_MESSAGE(start != std::string::npos, "no section " << title);
    const auto end = page.find("\n## ", start + heading.size());
    return page.substr(start + heading.size(), end == std::string::npos ? end : end - start - heading.size());
}

std::vector<DocRow> key_rows(const std::string& page)
{
    std::vector<DocRow> rows;
    std::istringstream lines(section_of(page, "Keys"));
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with("| `"))
            continue;
        std::vector<std::string> cells;
        std::size_t at = 1;
        for (int i = 0; i < 4; ++i) {
            const auto bar = line.find('|', at);
            REQUIRE(bar != std::string::npos);
            cells.push_back(line.substr(at, bar - at));
            at = bar + 1;
        }
        rows.push_back({unquoted(cells[0]), trimmed(cells[1]), unquoted(cells[2]), trimmed(cells[3]),
                        line.substr(at)});
    }
    return rows;
}

void leaf_keys(const nlohmann::json& j, const std::string& path, std::vector<std::string>& out)
{
    if (!j.is_object()) {
        out.push_back(path);
        return;
    }
    for (const auto& [key, value] : j.items())
        leaf_keys(value, path.empty() ? key : path + "." + key, out);
}

// {"a": {"b": value}} for the key a.b.
std::string document_with(const std::string& key, const std::string& value)
{
    std::string text, close;
    std::size_t at = 0;
    for (auto dot = key.find('.'); ; dot = key.find('.', at)) {
        text += "{\"" + key.substr(at, dot == std::string::npos ? dot : dot - at) + "\": ";
        close += "}";
        if (dot == std::string::npos)
            break;
        at = dot + 1;
    }
    return text + value + close;
}

std::vector<std::string> backticked(std::string_view text)
{
    std::vector<std::string> spans;
    for (auto open = text.find('`'); open != std::string_view::npos; open = text.find('`', open)) {
        const auto close = text.find('`', open + 1);
        if (close == std::string_view::npos)
            break;
        spans.emplace_back(text.substr(open + 1, close - open - 1));
        open = close + 1;
    }
    return spans;
}

} // namespace

TEST_CASE("docs/configuration.md: one row per key, with the code's type, default and range")
{
    const std::string page = configuration_md();
    const std::vector<DocRow> rows = key_rows(page);
    const nlohmann::json defaults = to_json(Config{});

    std::vector<std::string> code_keys, doc_keys;
    leaf_keys(defaults, "", code_keys);
    for (const DocRow& row : rows)
        doc_keys.push_back(row.key);
    std::vector<std::string> sorted_doc = doc_keys;
    std::sort(sorted_doc.begin(), sorted_doc.end());
    std::sort(code_keys.begin(), code_keys.end());
    std::vector<std::string> undocumented, unknown;
    std::set_difference(code_keys.begin(), code_keys.end(), sorted_doc.begin(), sorted_doc.end(),
                        std::back_inserter(undocumented));
    std::set_difference(sorted_doc.begin(), sorted_doc.end(), code_keys.begin(), code_keys.end(),
                        std::back_inserter(unknown));
    CHECK_MESSAGE(undocumented.empty(), "keys without a row: " << nlohmann::json(undocumented).dump());
    CHECK_MESSAGE(unknown.empty(), "rows of no key: " << nlohmann::json(unknown).dump());
    CHECK(std::adjacent_find(sorted_doc.begin(), sorted_doc.end()) == sorted_doc.end());

    for (const DocRow& row : rows) {
        CAPTURE(row.key);
        const nlohmann::json::json_pointer pointer("/" + [&] {
            std::string p = row.key;
            std::replace(p.begin(), p.end(), '.', '/');
            return p;
        }());
        REQUIRE(defaults.contains(pointer));
        const nlohmann::json& default_value = defaults[pointer];
        // The documented default is the default, and the reader takes it as written.
        CHECK(nlohmann::json::parse(row.default_value) == default_value);
        CHECK(parse_ok(document_with(row.key, row.default_value)) == Config{});

        if (row.type == "boolean") {
            CHECK(default_value.is_boolean());
            CHECK(parse_ok(document_with(row.key, default_value.get<bool>() ? "false" : "true")) != Config{});
            CHECK(parse_error(document_with(row.key, "\"x\"")).ends_with(": \"x\" is not a boolean; use true or false"));
        } else if (row.type == "integer, ms" || row.type == "integer, s") {
            const std::string unit = row.type == "integer, ms" ? "milliseconds" : "seconds";
            CHECK(row.key.ends_with(row.type == "integer, ms" ? "_ms" : "_seconds"));
            const auto dash = row.accepted.find(" \u2013 ");
            REQUIRE_MESSAGE(dash != std::string::npos, "accepted is \"MIN \u2013 MAX\": " << row.accepted);
            const long long min = std::stoll(row.accepted.substr(0, dash));
            const long long max = std::stoll(row.accepted.substr(dash + 5));
            const std::string accepted = "use an integer from " + std::to_string(min) + " to " +
                                         std::to_string(max) + " (" + unit + ")";
            CHECK(parse_config(document_with(row.key, std::to_string(min)), origin));
            CHECK(parse_config(document_with(row.key, std::to_string(max)), origin));
            CHECK(parse_error(document_with(row.key, std::to_string(min - 1))).ends_with(" is out of range; " + accepted));
            CHECK(parse_error(document_with(row.key, std::to_string(max + 1))).ends_with(" is out of range; " + accepted));
        } else if (row.type == "string") {
            const std::vector<std::string> values = backticked(row.accepted);
            REQUIRE(!values.empty());
            std::string listed;
            std::vector<Config> configs;
            for (const std::string& v : values) {
                listed += (listed.empty() ? "" : ", ") + v;
                configs.push_back(parse_ok(document_with(row.key, v)));
            }
            for (std::size_t i = 0; i < configs.size(); ++i)
                for (std::size_t j = i + 1; j < configs.size(); ++j)
                    CHECK(configs[i] != configs[j]);
            CHECK(parse_error(document_with(row.key, "\"x\"")) ==
                  "test.json: " + row.key + ": \"x\" is not one of " + listed);
        } else if (row.type == "array of strings") {
            CHECK(default_value == nlohmann::json::array());
            if (row.key.ends_with("exclude_commands")) {
                CHECK(row.accepted == "1 \u2013 " + std::to_string(comm_max_length) + " bytes each");
                CHECK(parse_config(document_with(row.key, "[\"" + std::string(comm_max_length, 'x') + "\"]"), origin));
                CHECK(parse_error(document_with(row.key, "[\"" + std::string(comm_max_length + 1, 'x') + "\"]"))
                          .find("would never match") != std::string::npos);
                CHECK(parse_error(document_with(row.key, "[\"\"]")).find("is empty") != std::string::npos);
            } else {
                REQUIRE(row.key.ends_with("exclude_units"));
                CHECK(row.accepted == "systemd unit names");
                // The unit types the meaning lists are the ones accepted.
                std::vector<std::string> suffixes;
                for (const std::string& span : backticked(row.meaning))
                    if (span.starts_with(".") && span.find(' ') == std::string::npos)
                        suffixes.push_back(span);
                CHECK(suffixes.size() == 6);
                std::string listed;
                for (const std::string& suffix : suffixes) {
                    CHECK(parse_config(document_with(row.key, "[\"a" + suffix + "\"]"), origin));
                    listed += (listed.empty() ? "\"" : ", \"") + suffix + "\"";
                }
                CHECK(parse_error(document_with(row.key, R"(["a.target"])"))
                          .ends_with("use a unit name ending in " + listed));
            }
        } else if (row.type == "string, path") {
            // metrics.textfile: a file node_exporter reads, or "" for none.
            CHECK(default_value.is_string());
            CHECK(row.accepted == "an absolute path to a file ending in `.prom`, or `\"\"`");
            const Config none = parse_ok(document_with(row.key, "\"\""));
            CHECK(none != Config{});
            CHECK(parse_ok(document_with(row.key, "\"/run/x.prom\"")) != Config{});
            CHECK(parse_error(document_with(row.key, "\"x.prom\"")).find("is not an absolute path") != std::string::npos);
            CHECK(parse_error(document_with(row.key, "\"/run/x.txt\"")).find("ending in \".prom\"") != std::string::npos);
            CHECK(parse_error(document_with(row.key, "1")).find(" is not a string; ") != std::string::npos);
        } else {
            FAIL("a type the test does not know: " << row.type);
        }
    }
}

TEST_CASE("docs/configuration.md: every error example is what the reader says")
{
    // The input behind each example of the page's Errors block, read from a file named F.
    const std::pair<std::string_view, std::string_view> inputs[] = {
        {"F:3:17: ", "{\n  \"boot\": {\n    \"apply\": tru\n  }\n}"},
        {"F:1:1: the file is empty", ""},
        {"F:1:65: ", std::string_view()}, // 65 '[': filled in below
        {"F: log: ", R"({"log": {}, "log": {}})"},
        {"F: remediation.kick.intervall_ms: ", R"({"remediation": {"kick": {"intervall_ms": 100}}})"},
        {"F: bot: ", R"({"bot": {}})"},
        {"F: boot.apply: ", R"({"boot": {"apply": "yes"}})"},
        {"F: transition.stall_timeout_ms: 50", R"({"transition": {"stall_timeout_ms": 50}})"},
        {"F: remediation.grace_ms: 1e4", R"({"remediation": {"grace_ms": 1e4}})"},
        {"F: transition.on_stall: ", R"({"transition": {"on_stall": "retry"}})"},
        {"F: remediation.stop_continue.exclude_units[0]: ",
         R"({"remediation": {"stop_continue": {"exclude_units": ["sshd", "multi-user.target"]}}})"},
        {"F: remediation.stop_continue.exclude_units[1]: ",
         R"({"remediation": {"stop_continue": {"exclude_units": ["sshd.service", "multi-user.target"]}}})"},
        {"F: remediation.stop_continue.exclude_commands[0]: ",
         R"({"remediation": {"stop_continue": {"exclude_commands": ["systemd-journald"]}}})"},
        {"F: metrics.textfile: ",
         R"({"metrics": {"textfile": "/var/lib/prometheus/node-exporter/livepatchd.txt"}})"},
    };
    const std::string deep(65, '[');
    const std::string errors = section_of(configuration_md(), "Errors");
    const auto block = errors.find("```\n");
    REQUIRE(block != std::string::npos);
    std::istringstream lines(errors.substr(block + 4, errors.find("\n```", block) - block - 4));
    std::size_t checked = 0;
    for (std::string line; std::getline(lines, line);) {
        CAPTURE(line);
        if (line == "F: cannot open the configuration file: Permission denied")
            continue; // load_config's, with an errno: the test above checks its form
        bool found = false;
        for (const auto& [start, text] : inputs) {
            if (!line.starts_with(start))
                continue;
            found = true;
            ++checked;
            std::string message = parse_error(text.data() ? std::string(text) : deep);
            REQUIRE(message.starts_with("test.json"));
            message.replace(0, 9, "F");
            CHECK(message == line);
        }
        CHECK_MESSAGE(found, "an example without an input in this test");
    }
    CHECK(checked == std::size(inputs));
}
