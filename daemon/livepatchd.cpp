// SPDX-License-Identifier: GPL-2.0-only
//
// livepatchd: the live-patching service. main() reads the options and the configuration; the
// service itself is Service (service.hpp).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <malloc.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "config/config.hpp"
#include "store/patch_store.hpp"
#include "common/journal.hpp"
#include "remediation/task_signaller.hpp"
#include "service/service.hpp"

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
        "  livepatchd --continue-stopped\n"
        "  livepatchd --help | --version\n"
        "\n"
        "Description:\n"
        "  livepatchd applies, reverts and watches live patches of the running kernel through\n"
        "  the lpshim kernel module, re-applies them at boot, helps tasks that block a patch\n"
        "  transition, and offers all of it on the system bus as org.livepatchd.LivePatch1.\n"
        "  It runs as livepatchd.service; livepatchctl(1) is its command-line client.\n"
        "\n"
        "  Without options it runs the service: it loads lpshim.ko if needed, applies the\n"
        "  wanted patches (unless livepatchd.apply=0 is on the kernel command line), takes the\n"
        "  bus name and tells systemd it is ready. It stops on SIGTERM and leaves every patch\n"
        "  as it is.\n"
        "\n"
        "Options:\n"
        "  -c, --config PATH    Read the configuration from PATH instead of\n"
        "                       %s.\n"
        "                       The file at the default path is optional (built-in\n"
        "                       defaults apply without it); a PATH given here must exist.\n"
        "      --check-config   Read and validate the configuration, print the effective\n"
        "                       configuration (every key, defaults filled in) as JSON on\n"
        "                       standard output, and exit.\n"
        "      --continue-stopped\n"
        "                       Continue (SIGCONT) every process an earlier livepatchd stopped\n"
        "                       and did not continue, and exit. livepatchd does this itself\n"
        "                       at every start, before anything else; livepatchd.service\n"
        "                       also runs it after every stop of the service.\n"
        "  -h, --help           Show this help and exit.\n"
        "      --version        Show the version and exit.\n"
        "\n"
        "Files:\n"
        "  %s\n"
        "      The configuration, JSON; every key is optional, and an unknown key is an error.\n"
        "      At start, the journal names the file read, or says that there is none.\n"
        "  %s\n"
        "      An example holding every key at its default value.\n"
        "  %s/ (or $STATE_DIRECTORY, set by systemd)\n"
        "      The daemon's state: the patch store (patches/) and the wanted patches\n"
        "      (desired.json).\n"
        "  %s\n"
        "      The Prometheus metrics for node_exporter's textfile collector, rewritten at\n"
        "      every change of state (metrics.textfile in the configuration).\n"
        "\n"
        "Exit status:\n"
        "  0   Success; with --check-config: the configuration is valid.\n"
        "  1   The configuration cannot be read or is invalid, or the service could not start;\n"
        "      the reason is on standard error.\n"
        "  2   Wrong usage: an unknown option or argument, or a missing option value.\n",
        PROJECT_VERSION, std::string(default_config_path).c_str(),
        std::string(default_config_path).c_str(), LIVEPATCHD_EXAMPLE_CONFIG,
        std::string(default_state_directory).c_str(),
        std::string(default_metrics_textfile).c_str());
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
    case DaemonOptions::Action::continue_stopped:
    case DaemonOptions::Action::run:
        break;
    }

    // systemd names the state directory (StateDirectory=); run by hand, the built-in one.
    std::string state_directory(default_state_directory);
    if (const char* from_systemd = std::getenv("STATE_DIRECTORY"); from_systemd && *from_systemd)
        state_directory = std::string_view(from_systemd).substr(
            0, std::string_view(from_systemd).find(':'));

    if (options->action != DaemonOptions::Action::check_config) {
        // First, before anything that can fail (the configuration, lpshim.ko, the store):
        // continue what a crashed livepatchd left stopped. Never fatal.
        // On the unit's stream when stderr is the journal's (journal.hpp): ExecStopPost= exits
        // right after, and so may a start that fails next.
        const bool stderr_is_journal = journal::stderr_is_journal();
        if (stderr_is_journal)
            journal::set_output(journal::Output::stream);
        const auto say = [stderr_is_journal](const std::string& text,
                                             std::initializer_list<journal::Field> fields) {
            journal::log(LogLevel::warning, text, fields);
            if (!stderr_is_journal) // by hand: on the terminal too
                std::fprintf(stderr, "%s: %s\n", program.data(), text.c_str());
        };
        const Recovery recovery = recover_stopped(state_directory);
        for (const std::string& warning : recovery.warnings)
            say(warning, {});
        for (pid_t pid : recovery.continued)
            say("continued process " + std::to_string(pid) +
                    ", which an earlier livepatchd stopped and did not continue",
                {{"TID", std::to_string(pid)}});
        journal::set_output(journal::Output::native);
        if (options->action == DaemonOptions::Action::continue_stopped)
            return exit_status::success;
    }

    const bool config_existed = ::access(options->config_path.c_str(), F_OK) == 0;
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

    // Say which file the settings come from: a file written where the admin thought it would
    // be read, and ignored, is otherwise invisible. (Checked before it was read: a file created
    // in between is read, and reported as absent; only this line can be wrong.)
    const std::string config_path = options->config_path.native();
    if (config_existed)
        journal::log(LogLevel::notice, "read the configuration from " + config_path,
                     {{"CONFIG_FILE", config_path}});
    else
        journal::log(LogLevel::notice,
                     "no configuration file " + config_path + ": the built-in defaults apply",
                     {{"CONFIG_FILE", config_path}});

    // Its memory comes in small pieces, and its loop's latency matters (a SIGCONT is due
    // hold_ms after a SIGSTOP): no transparent huge pages, the first touch of which clears 2 MB
    // within whatever dispatch touched it (50-220 ms under emulation, as the task iterator's
    // list grew). Should it fail, the kernel's default stays.
    (void)::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    // No fastbins: glibc keeps small freed chunks in them unmerged, and merges them all at once
    // (malloc_consolidate) when a free leaves 64 KB free in one piece, or at an allocation of
    // 1 KB, in their arena. A look frees tens of thousands of small strings (PendingListPool,
    // the stall's facts), so that merge landed in whichever dispatch came next: 84 ms of one at
    // 10,000 pending tasks under emulation. Without fastbins each free beyond the thread's
    // cache (tcache, 7 per size) merges its own chunk: a little slower, spread over the slices
    // that free them. Should it fail, glibc's default stays.
    (void)::mallopt(M_MXFAST, 0);
    auto service = Service::start(*config, state_directory);
    if (!service) {
        std::fprintf(stderr, "%s: %s\n", program.data(), service.error().message.c_str());
        return exit_status::failure;
    }
    return (*service)->run() == 0 ? exit_status::success : exit_status::failure;
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
