// SPDX-License-Identifier: GPL-2.0-only
//
// livepatchctl: the command-line client of livepatchd. The commands are fixed here so that
// --help, completion and scripts can rely on their names; each one talks to the service over
// D-Bus once the service exists, and until then says plainly that it is not available.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"

using namespace livepatchd;

namespace {

constexpr std::string_view program = "livepatchctl";

void print_help()
{
    std::printf("livepatchctl %s - control livepatchd, the kernel live-patching service\n"
                "\n"
                "Synopsis:\n"
                "  livepatchctl [--json] [COMMAND [ARGUMENTS...]]\n"
                "  livepatchctl --help | --version\n"
                "\n"
                "Commands (not available yet in this version; each exits with status 69):\n",
                PROJECT_VERSION);
    for (const CtlCommand& command : ctl_commands()) {
        const std::string usage = std::string(command.name) +
                                  (command.arguments.empty() ? "" : " ") +
                                  std::string(command.arguments);
        std::printf("  %-20s %s\n", usage.c_str(), std::string(command.summary).c_str());
    }
    std::printf("  Without a command, livepatchctl runs '%s'.\n"
                "\n"
                "Options:\n"
                "      --json     Print JSON instead of text, for scripts.\n"
                "  -h, --help     Show this help and exit.\n"
                "      --version  Show the version and exit.\n"
                "\n"
                "Exit status:\n"
                "  0   Success.\n"
                "  1   The command failed; the reason is on standard error.\n"
                "  2   Wrong usage: an unknown option or command.\n"
                "  69  The command is not available in this version (EX_UNAVAILABLE).\n",
                std::string(ctl_default_command).c_str());
}

int run(std::span<const std::string_view> args)
{
    auto options = parse_ctl_options(args);
    if (!options) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help' for the list of commands and options.\n",
                     program.data(), options.error().message.c_str(), program.data());
        return exit_status::usage;
    }

    switch (options->action) {
    case CtlOptions::Action::help:
        print_help();
        return exit_status::success;
    case CtlOptions::Action::version:
        std::printf("livepatchctl %s\n", PROJECT_VERSION);
        return exit_status::success;
    case CtlOptions::Action::run_command:
        break;
    }

    std::fprintf(stderr, "%s: '%s' is not available yet in this version\n", program.data(),
                 options->command.c_str());
    return exit_status::unavailable;
}

} // namespace

int main(int argc, char* argv[])
{
    try {
        const std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
        return run(args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program.data(), e.what());
        return exit_status::failure;
    }
}
