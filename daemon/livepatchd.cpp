// SPDX-License-Identifier: GPL-2.0-only
//
// livepatchd: the live-patching service. In this version only the configuration is
// implemented (--check-config); the service itself (D-Bus, sd-event) comes later, and until then
// starting it says so and fails rather than pretend to run.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "config.hpp"

using namespace livepatchd;

namespace {

constexpr std::string_view program = "livepatchd";

void print_help()
{
    std::printf(
        "livepatchd %s - the kernel live-patching service\n"
        "\n"
        "Synopsis:\n"
        "  livepatchd [--config PATH]\n"
        "  livepatchd --check-config [--config PATH]\n"
        "  livepatchd --help | --version\n"
        "\n"
        "Description:\n"
        "  livepatchd applies, reverts and watches live patches of the running kernel through\n"
        "  the lpshim kernel module, re-applies them at boot, helps tasks that block a patch\n"
        "  transition, and offers all of it on the system bus as org.livepatchd.LivePatch1.\n"
        "  It runs as livepatchd.service; livepatchctl(1) is its command-line client.\n"
        "\n"
        "  This version implements only the configuration: --check-config works, and\n"
        "  starting the service fails with exit status 69.\n"
        "\n"
        "Options:\n"
        "  -c, --config PATH    Read the configuration from PATH instead of\n"
        "                       %s.\n"
        "                       The file at the default path is optional (built-in\n"
        "                       defaults apply without it); a PATH given here must exist.\n"
        "      --check-config   Read and validate the configuration, print the effective\n"
        "                       configuration (every key, defaults filled in) as JSON on\n"
        "                       standard output, and exit.\n"
        "  -h, --help           Show this help and exit.\n"
        "      --version        Show the version and exit.\n"
        "\n"
        "Files:\n"
        "  %s\n"
        "      The configuration, JSON; every key is optional, and an unknown key is an error.\n"
        "  %s\n"
        "      An example holding every key at its default value.\n"
        "  %s/livepatchd/\n"
        "      The daemon's state (the patch store); not used yet.\n"
        "\n"
        "Exit status:\n"
        "  0   Success; with --check-config: the configuration is valid.\n"
        "  1   The configuration cannot be read or is invalid; the reason is on standard error.\n"
        "  2   Wrong usage: an unknown option or argument, or a missing option value.\n"
        "  69  The request is not implemented in this version (EX_UNAVAILABLE).\n",
        PROJECT_VERSION, std::string(default_config_path).c_str(),
        std::string(default_config_path).c_str(), LIVEPATCHD_EXAMPLE_CONFIG, LOCALSTATEDIR);
}

int run(std::span<const std::string_view> args)
{
    auto options = parse_daemon_options(args);
    if (!options) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", program.data(),
                     options.error().message.c_str(), program.data());
        return exit_status::usage;
    }

    switch (options->action) {
    case DaemonOptions::Action::help:
        print_help();
        return exit_status::success;
    case DaemonOptions::Action::version:
        std::printf("livepatchd %s\n", PROJECT_VERSION);
        return exit_status::success;
    case DaemonOptions::Action::check_config:
    case DaemonOptions::Action::run:
        break;
    }

    auto config = load_config(options->config_path, options->if_config_missing());
    if (!config) {
        std::fprintf(stderr, "%s: %s\n", program.data(), config.error().message.c_str());
        return exit_status::failure;
    }

    if (options->action == DaemonOptions::Action::check_config) {
        const std::string text = to_json(*config).dump(2) + "\n";
        std::fputs(text.c_str(), stdout);
        return std::fflush(stdout) == 0 ? exit_status::success : exit_status::failure;
    }

    std::fprintf(stderr,
                 "%s: the service is not implemented yet; only --check-config works in this "
                 "version\n",
                 program.data());
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
