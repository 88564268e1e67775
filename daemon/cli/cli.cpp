// SPDX-License-Identifier: GPL-2.0-only
#include "cli/cli.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/spelling.hpp"

namespace livepatchd {

using namespace std::string_view_literals;

namespace {

// A hand-rolled tokenizer rather than getopt_long: getopt keeps global state (optind) and
// prints its own messages, and neither fits a parser that tests call many times. Accepted
// forms: --name, --name=VALUE, --name VALUE, -x, -xVALUE, -x VALUE, flag clusters (-hj), and
// "--" to end the options. Long names must be spelt out: an abbreviation that works today
// would become ambiguous when a later version adds an option.
struct OptionSpec {
    std::string_view long_name;
    char short_name; // 0: none
    bool takes_value;
};

struct Token {
    const OptionSpec* option; // nullptr: a positional argument
    std::string_view text;    // the option's value, or the positional argument
};

Error usage_error(std::string message)
{
    return Error{EINVAL, std::move(message)};
}

Result<std::vector<Token>> tokenize(std::span<const std::string_view> args,
                                    std::span<const OptionSpec> specs)
{
    std::vector<Token> tokens;
    bool options_ended = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (options_ended || arg.size() < 2 || arg[0] != '-') {
            tokens.push_back({nullptr, arg});
            continue;
        }
        if (arg == "--") {
            options_ended = true;
            continue;
        }
        if (arg.starts_with("--")) {
            const std::string_view body = arg.substr(2);
            const auto eq = body.find('=');
            const std::string_view name = body.substr(0, eq);
            const auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) {
                return s.long_name == name;
            });
            if (spec == specs.end()) {
                std::vector<std::string_view> names;
                for (const OptionSpec& s : specs)
                    names.push_back(s.long_name);
                std::string message = "unrecognized option '--" + std::string(name) + "'";
                if (auto guess = closest_match(name, names))
                    message += " (did you mean '--" + std::string(*guess) + "'?)";
                return usage_error(message);
            }
            if (!spec->takes_value) {
                if (eq != std::string_view::npos)
                    return usage_error("option '--" + std::string(name) +
                                       "' does not take a value");
                tokens.push_back({&*spec, {}});
            } else if (eq != std::string_view::npos) {
                tokens.push_back({&*spec, body.substr(eq + 1)});
            } else if (i + 1 < args.size()) {
                tokens.push_back({&*spec, args[++i]});
            } else {
                return usage_error("option '--" + std::string(name) + "' needs a value");
            }
            continue;
        }
        for (std::size_t k = 1; k < arg.size(); ++k) {
            const char c = arg[k];
            const auto spec = std::find_if(specs.begin(), specs.end(), [c](const OptionSpec& s) {
                return s.short_name != 0 && s.short_name == c;
            });
            if (spec == specs.end())
                return usage_error("unrecognized option '-" + std::string(1, c) + "'");
            if (!spec->takes_value) {
                tokens.push_back({&*spec, {}});
                continue;
            }
            if (k + 1 < arg.size())
                tokens.push_back({&*spec, arg.substr(k + 1)});
            else if (i + 1 < args.size())
                tokens.push_back({&*spec, args[++i]});
            else
                return usage_error("option '-" + std::string(1, c) + "' needs a value");
            break;
        }
    }
    return tokens;
}

constexpr std::array daemon_specs{
    OptionSpec{"help", 'h', false},
    OptionSpec{"version", 0, false},
    OptionSpec{"config", 'c', true},
    OptionSpec{"check-config", 0, false},
    OptionSpec{"continue-stopped", 0, false},
};

constexpr std::array ctl_specs{
    OptionSpec{"help", 'h', false},
    OptionSpec{"version", 0, false},
    OptionSpec{"json", 0, false},
    OptionSpec{"no-block", 0, false},
    OptionSpec{"verbose", 'v', false},
};

constexpr std::array ctl_command_table{
    CtlCommand{"status", "", "Show the service, the applied patches and any transition"},
    CtlCommand{"list", "", "List the patches in the store and their state"},
    CtlCommand{"install", "MODULE.ko", "Add a patch module to the patch store"},
    CtlCommand{"apply", "PATCH", "Apply a patch from the store, and at every boot"},
    CtlCommand{"revert", "PATCH", "Revert an applied patch"},
    CtlCommand{"remove", "PATCH", "Remove a patch that is not applied from the store"},
    CtlCommand{"blocking", "", "Show the tasks that block the current transition"},
    CtlCommand{"watch", "", "Follow transitions and remediation as they happen"},
    CtlCommand{"check", "", "Exit 0 if every wanted patch is applied and nothing moves"},
};

} // namespace

Result<DaemonOptions> parse_daemon_options(std::span<const std::string_view> args)
{
    auto tokens = tokenize(args, daemon_specs);
    if (!tokens)
        return std::move(tokens).error();

    DaemonOptions options;
    bool help = false, version = false;
    for (const Token& token : *tokens) {
        if (!token.option)
            return usage_error("unexpected argument '" + std::string(token.text) +
                               "'; livepatchd takes options only");
        const std::string_view name = token.option->long_name;
        if (name == "help") {
            help = true;
        } else if (name == "version") {
            version = true;
        } else if (name == "check-config") {
            options.action = DaemonOptions::Action::check_config;
        } else if (name == "continue-stopped") {
            options.action = DaemonOptions::Action::continue_stopped;
        } else if (name == "config") {
            if (token.text.empty())
                return usage_error("option '--config' needs a file name, not an empty string");
            options.config_path = std::filesystem::path(token.text);
            options.config_path_given = true;
        }
    }
    if (help)
        options.action = DaemonOptions::Action::help;
    else if (version)
        options.action = DaemonOptions::Action::version;
    return options;
}

std::span<const CtlCommand> ctl_commands()
{
    return ctl_command_table;
}

Result<CtlOptions> parse_ctl_options(std::span<const std::string_view> args)
{
    auto tokens = tokenize(args, ctl_specs);
    if (!tokens)
        return std::move(tokens).error();

    CtlOptions options;
    bool help = false, version = false, have_command = false;
    for (const Token& token : *tokens) {
        if (!token.option) {
            if (have_command)
                options.arguments.emplace_back(token.text);
            else
                options.command = token.text;
            have_command = true;
            continue;
        }
        const std::string_view name = token.option->long_name;
        if (name == "help")
            help = true;
        else if (name == "version")
            version = true;
        else if (name == "json")
            options.json = true;
        else if (name == "no-block")
            options.no_block = true;
        else if (name == "verbose")
            options.verbose = true;
    }
    if (help) {
        options.action = CtlOptions::Action::help;
        return options;
    }
    if (version) {
        options.action = CtlOptions::Action::version;
        return options;
    }

    std::vector<std::string_view> names;
    for (const CtlCommand& command : ctl_command_table)
        names.push_back(command.name);
    if (std::find(names.begin(), names.end(), options.command) == names.end()) {
        std::string message = "unknown command '" + options.command + "'";
        if (auto guess = closest_match(options.command, names))
            message += " (did you mean '" + std::string(*guess) + "'?)";
        return usage_error(message);
    }
    const CtlCommand& command = *std::find_if(
        ctl_command_table.begin(), ctl_command_table.end(),
        [&](const CtlCommand& c) { return c.name == options.command; });
    const std::size_t wanted = command.arguments.empty() ? 0 : 1;
    if (options.arguments.size() != wanted) {
        if (wanted == 0)
            return usage_error("'" + options.command + "' takes no arguments, got '" +
                               options.arguments.front() + "'");
        return usage_error("'" + options.command + "' takes one argument: " +
                           std::string(command.arguments));
    }
    return options;
}

std::string system_bus_failure(int errnum, const char* address)
{
    constexpr std::string_view default_socket = "/run/dbus/system_bus_socket";
    std::string where;
    const std::string_view given = address ? address : "";
    if (given.empty()) {
        where = std::string(default_socket);
    } else {
        // unix:path=/x,guid=... -> /x; anything else as it is.
        std::string_view shown = given;
        if (const auto at = shown.find("unix:path="); at != std::string_view::npos) {
            shown.remove_prefix(at + 10);
            shown = shown.substr(0, shown.find_first_of(",;"));
        }
        where = std::string(shown) + " (DBUS_SYSTEM_BUS_ADDRESS)";
    }
    std::string text = "cannot connect to the system bus at " + where + ": " +
                       std::strerror(errnum);
    if (errnum == EACCES || errnum == EPERM)
        text += "; the socket does not let you in: run livepatchctl as a user who may use the "
                "system bus (or as root)";
    else
        text += "; is D-Bus running? Start it with: systemctl start dbus (package dbus)";
    if (!given.empty())
        text += ", or unset DBUS_SYSTEM_BUS_ADDRESS to use " + std::string(default_socket);
    return text;
}

CheckReport check_report(std::string_view state, std::string_view transition_patch,
                         std::string_view transition_target,
                         const std::vector<std::pair<std::string, std::string>>& skipped)
{
    CheckReport report;
    for (const auto& [name, reason] : skipped) {
        report.problems.push_back(name + " is wanted but not applied: " + reason);
        report.status = exit_status::check_not_applied;
    }
    const auto first = [&](int status) {
        if (report.status == exit_status::success)
            report.status = status;
    };
    if (state == "transitioning" || state == "stalled") {
        report.problems.push_back("a transition is under way: " + std::string(transition_patch) +
                                  " to " + std::string(transition_target) +
                                  (state == "stalled" ? " (stalled: see 'livepatchctl blocking')"
                                                      : ""));
        first(exit_status::check_moving);
    } else if (state == "error") {
        report.problems.push_back(
            "livepatchd could not save which patches are wanted (its desired state): what is "
            "applied now may not be what it applies at the next boot; 'journalctl -u "
            "livepatchd' says why (a full disk, say): fix that, then apply or revert again");
        first(exit_status::check_not_saved);
    } else if (state != "idle") {
        report.problems.push_back("livepatchd reports the state \"" + std::string(state) +
                                  "\", which this livepatchctl does not know: update it");
        first(exit_status::failure);
    }
    return report;
}

} // namespace livepatchd
