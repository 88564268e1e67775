// SPDX-License-Identifier: GPL-2.0-only
//
// Command-line parsing of livepatchd and livepatchctl: what each argv means, and the message
// for each kind of wrong usage.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>
#include <initializer_list>
#include <string>
#include <vector>

#include "cli/cli.hpp"

using namespace livepatchd;

namespace {

Result<DaemonOptions> daemon(std::initializer_list<std::string_view> args)
{
    return parse_daemon_options(std::vector<std::string_view>(args));
}

Result<CtlOptions> ctl(std::initializer_list<std::string_view> args)
{
    return parse_ctl_options(std::vector<std::string_view>(args));
}

template <typename T>
std::string usage_message(const Result<T>& result)
{
    if (result)
        FAIL("accepted");
    CHECK(result.error().errnum == EINVAL);
    return result.error().message;
}

} // namespace

TEST_CASE("livepatchd: no options runs the service with the optional default config")
{
    auto o = daemon({});
    REQUIRE(o.ok());
    CHECK(o->action == DaemonOptions::Action::run);
    CHECK(o->config_path == std::filesystem::path(default_config_path));
    CHECK_FALSE(o->config_path_given);
    CHECK(o->if_config_missing() == MissingConfig::use_defaults);
}

TEST_CASE("livepatchd: --config makes the file mandatory, in every spelling")
{
    for (auto args : {std::vector<std::string_view>{"--config", "/tmp/x.json"},
                      std::vector<std::string_view>{"--config=/tmp/x.json"},
                      std::vector<std::string_view>{"-c", "/tmp/x.json"},
                      std::vector<std::string_view>{"-c/tmp/x.json"}}) {
        auto o = parse_daemon_options(args);
        REQUIRE(o.ok());
        CHECK(o->action == DaemonOptions::Action::run);
        CHECK(o->config_path == "/tmp/x.json");
        CHECK(o->if_config_missing() == MissingConfig::fail);
    }
}

TEST_CASE("livepatchd: --check-config, in any order with --config")
{
    auto a = daemon({"--check-config", "--config", "a.json"});
    auto b = daemon({"--config", "a.json", "--check-config"});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->action == DaemonOptions::Action::check_config);
    CHECK(b->action == DaemonOptions::Action::check_config);
    CHECK(a->config_path == "a.json");
}

TEST_CASE("livepatchd: --help and --version win over other options")
{
    CHECK(daemon({"--help"})->action == DaemonOptions::Action::help);
    CHECK(daemon({"-h"})->action == DaemonOptions::Action::help);
    CHECK(daemon({"--check-config", "--help"})->action == DaemonOptions::Action::help);
    CHECK(daemon({"--version", "--help"})->action == DaemonOptions::Action::help);
    CHECK(daemon({"--version"})->action == DaemonOptions::Action::version);
    CHECK(daemon({"--check-config", "--version"})->action == DaemonOptions::Action::version);
}

TEST_CASE("livepatchd: wrong usage names the option")
{
    CHECK(usage_message(daemon({"--frobnicate"})) == "unrecognized option '--frobnicate'");
    CHECK(usage_message(daemon({"--check-conf"})) ==
          "unrecognized option '--check-conf' (did you mean '--check-config'?)");
    CHECK(usage_message(daemon({"-x"})) == "unrecognized option '-x'");
    CHECK(usage_message(daemon({"--config"})) == "option '--config' needs a value");
    CHECK(usage_message(daemon({"-c"})) == "option '-c' needs a value");
    CHECK(usage_message(daemon({"--config="})) ==
          "option '--config' needs a file name, not an empty string");
    CHECK(usage_message(daemon({"--help=yes"})) == "option '--help' does not take a value");
    CHECK(usage_message(daemon({"start"})) ==
          "unexpected argument 'start'; livepatchd takes options only");
    // After "--" everything is an argument, and livepatchd takes none.
    CHECK(usage_message(daemon({"--", "--help"})) ==
          "unexpected argument '--help'; livepatchd takes options only");
}

TEST_CASE("livepatchctl: the command table is the documented one")
{
    std::vector<std::string_view> names;
    for (const CtlCommand& c : ctl_commands()) {
        names.push_back(c.name);
        CHECK_FALSE(c.summary.empty());
    }
    CHECK(names == std::vector<std::string_view>{"status", "list", "install", "apply", "revert",
                                                 "remove", "blocking", "watch", "check"});
}

TEST_CASE("livepatchctl: commands, arguments and --json anywhere")
{
    auto none = ctl({});
    REQUIRE(none.ok());
    CHECK(none->action == CtlOptions::Action::run_command);
    CHECK(none->command == "status");
    CHECK_FALSE(none->json);

    auto apply = ctl({"apply", "--json", "fix-cve"});
    REQUIRE(apply.ok());
    CHECK(apply->command == "apply");
    CHECK(apply->json);
    CHECK(apply->arguments == std::vector<std::string>{"fix-cve"});

    auto json_first = ctl({"--json", "list"});
    REQUIRE(json_first.ok());
    CHECK(json_first->command == "list");
    CHECK(json_first->json);

    // A patch name that looks like an option goes after "--".
    auto dashed = ctl({"revert", "--", "-odd-name"});
    REQUIRE(dashed.ok());
    CHECK(dashed->arguments == std::vector<std::string>{"-odd-name"});

    for (const CtlCommand& c : ctl_commands()) {
        auto o = c.arguments.empty() ? ctl({c.name}) : ctl({c.name, "x"});
        REQUIRE(o.ok());
        CHECK(o->command == c.name);
    }

    auto no_block = ctl({"apply", "--no-block", "fix"});
    REQUIRE(no_block.ok());
    CHECK(no_block->no_block);
    CHECK(ctl({"blocking", "-v"})->verbose);
}

TEST_CASE("livepatchctl: --help and --version, even with an unknown command")
{
    CHECK(ctl({"--help"})->action == CtlOptions::Action::help);
    CHECK(ctl({"status", "-h"})->action == CtlOptions::Action::help);
    CHECK(ctl({"nonsense", "--help"})->action == CtlOptions::Action::help);
    CHECK(ctl({"--version"})->action == CtlOptions::Action::version);
}

TEST_CASE("livepatchctl: wrong usage names the command or option")
{
    CHECK(usage_message(ctl({"stauts"})) == "unknown command 'stauts' (did you mean 'status'?)");
    CHECK(usage_message(ctl({"frobnicate"})) == "unknown command 'frobnicate'");
    CHECK(usage_message(ctl({"--jsno"})) == "unrecognized option '--jsno' (did you mean '--json'?)");
    CHECK(usage_message(ctl({"status", "--force"})) == "unrecognized option '--force'");
    CHECK(usage_message(ctl({"--json=yes"})) == "option '--json' does not take a value");
    CHECK(usage_message(ctl({"apply"})) == "'apply' takes one argument: PATCH");
    CHECK(usage_message(ctl({"install", "a.ko", "b.ko"})) ==
          "'install' takes one argument: MODULE.ko");
    CHECK(usage_message(ctl({"status", "now"})) == "'status' takes no arguments, got 'now'");
}

TEST_CASE("livepatchctl: a system bus it cannot reach is named, with the fix")
{
    // Issue 18: "cannot connect to the system bus: No such file or directory".
    CHECK(system_bus_failure(ENOENT, nullptr) ==
          "cannot connect to the system bus at /run/dbus/system_bus_socket: No such file or "
          "directory; is D-Bus running? Start it with: systemctl start dbus (package dbus)");
    CHECK(system_bus_failure(ENOENT, "unix:path=/tmp/x/bus,guid=0123") ==
          "cannot connect to the system bus at /tmp/x/bus (DBUS_SYSTEM_BUS_ADDRESS): No such "
          "file or directory; is D-Bus running? Start it with: systemctl start dbus (package "
          "dbus), or unset DBUS_SYSTEM_BUS_ADDRESS to use /run/dbus/system_bus_socket");
    CHECK(system_bus_failure(EACCES, nullptr).find("Permission denied; the socket does not let "
                                                   "you in") != std::string::npos);
}

TEST_CASE("livepatchctl check: a sentence and an exit status for every State")
{
    // Issue 18: State "error" gave "a transition is under way:  to  (error)" and exit 3.
    CHECK(check_report("idle", "", "", {}).status == exit_status::success);
    CHECK(check_report("idle", "", "", {}).problems.empty());
    auto r = check_report("transitioning", "lp_a", "patched", {});
    CHECK(r.status == exit_status::check_moving);
    CHECK(r.problems == std::vector<std::string>{"a transition is under way: lp_a to patched"});
    r = check_report("stalled", "lp_a", "unpatched", {});
    CHECK(r.status == exit_status::check_moving);
    CHECK(r.problems[0] == "a transition is under way: lp_a to unpatched (stalled: see "
                           "'livepatchctl blocking')");
    r = check_report("error", "", "", {});
    CHECK(r.status == exit_status::check_not_saved);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].starts_with("livepatchd could not save which patches are wanted"));
    CHECK(r.problems[0].find("journalctl -u livepatchd") != std::string::npos);
    CHECK(r.problems[0].find("under way") == std::string::npos);
    r = check_report("error", "", "", {{"lp_b", "built for 6.1.0-1-amd64"}});
    CHECK(r.status == exit_status::check_not_applied); // the first problem's status
    CHECK(r.problems.size() == 2);
    r = check_report("frobnicating", "", "", {});
    CHECK(r.status == exit_status::failure);
    CHECK(r.problems[0].find("update it") != std::string::npos);
}
