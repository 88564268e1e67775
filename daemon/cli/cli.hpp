// SPDX-License-Identifier: GPL-2.0-only
//
// Command-line parsing for livepatchd and livepatchctl: turns argv into what to do, or into an
// Error whose message the caller prints as "<program>: <message>" before exiting with
// exit_status::usage. Parsing prints nothing itself, so that tests can check every case.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "common/result.hpp"

namespace livepatchd {

// Exit statuses of both programs, documented in their --help.
namespace exit_status {
inline constexpr int success = 0;
inline constexpr int failure = 1;      // the request failed; the reason is on stderr
inline constexpr int usage = 2;        // unknown option or command, missing argument
// livepatchctl check:
inline constexpr int check_moving = 3;      // a transition is under way
inline constexpr int check_not_applied = 4; // a wanted patch is not applied
inline constexpr int check_not_saved = 5;   // State "error": the desired state was not saved
} // namespace exit_status

struct DaemonOptions {
    enum class Action { run, check_config, continue_stopped, help, version };

    Action action = Action::run;
    std::filesystem::path config_path{default_config_path};
    // --config was given: a missing file is then an error, not "use the defaults".
    bool config_path_given = false;

    MissingConfig if_config_missing() const
    {
        return config_path_given ? MissingConfig::fail : MissingConfig::use_defaults;
    }
};

// args is argv without argv[0]. --help and --version win over everything else.
Result<DaemonOptions> parse_daemon_options(std::span<const std::string_view> args);

// One livepatchctl command: its name, its arguments as shown in --help, and what it does.
struct CtlCommand {
    std::string_view name;
    std::string_view arguments;
    std::string_view summary;
};

// Every command livepatchctl knows, in --help order.
std::span<const CtlCommand> ctl_commands();

inline constexpr std::string_view ctl_default_command = "status";

struct CtlOptions {
    enum class Action { run_command, help, version };

    Action action = Action::run_command;
    bool json = false;                     // --json: machine-readable output
    bool no_block = false;                 // --no-block: apply/revert return once started
    bool verbose = false;                  // -v: blocking shows more
    std::string command{ctl_default_command}; // one of ctl_commands()
    std::vector<std::string> arguments;    // the command's own arguments, counted
};

// args is argv without argv[0]. Options may come before or after the command.
Result<CtlOptions> parse_ctl_options(std::span<const std::string_view> args);

// Why livepatchctl cannot reach the system bus, and what to do: errnum from sd-bus, address
// the value of DBUS_SYSTEM_BUS_ADDRESS (nullptr: unset, the default socket).
std::string system_bus_failure(int errnum, const char* address);

// livepatchctl check: the exit status and one sentence per problem, from the service's State,
// its transition and the patches that are wanted but not applied (name, SkipReason).
struct CheckReport {
    int status = exit_status::success;
    std::vector<std::string> problems;
};
CheckReport check_report(std::string_view state, std::string_view transition_patch,
                         std::string_view transition_target,
                         const std::vector<std::pair<std::string, std::string>>& skipped);

} // namespace livepatchd
