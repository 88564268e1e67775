// SPDX-License-Identifier: GPL-2.0-only
//
// The daemon's configuration: /etc/livepatchd/livepatchd.json. Every key is optional; the
// defaults below are the documented ones (docs/configuration.md, config/livepatchd.json).
// Field names are the JSON keys, so a key in the file, the docs and the code is one grep away.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.hpp"

namespace livepatchd {

// What to do when a transition has not completed within transition.stall_timeout_ms.
enum class StallAction {
    wait,   // keep waiting (remediation goes on)
    revert, // reverse the transition: the patch ends up not applied
    force,  // write 1 to <patch>/force: tasks still pending are switched without a stack check
};

// Values are the syslog priorities (LOG_ERR ... LOG_DEBUG) so that they can be compared with
// and passed to sd_journal_print() as they are.
enum class LogLevel : int { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

std::string_view to_string(StallAction action);
std::string_view to_string(LogLevel level);

struct BootConfig {
    bool apply = true; // re-apply the desired patches at boot
    // A boot that ends (crash, watchdog reset) within this many seconds of applying patches
    // skips boot apply the next time. 0: no crash guard.
    std::chrono::seconds crash_guard_seconds{300};

    bool operator==(const BootConfig&) const = default;
};

struct TransitionConfig {
    std::chrono::milliseconds stall_timeout_ms{30000};
    StallAction on_stall = StallAction::revert;

    bool operator==(const TransitionConfig&) const = default;
};

struct KickConfig {
    bool enabled = true;
    std::chrono::milliseconds interval_ms{500};

    bool operator==(const KickConfig&) const = default;
};

struct StopContinueConfig {
    bool enabled = true;
    std::chrono::milliseconds after_ms{600};
    std::chrono::milliseconds hold_ms{50};
    std::vector<std::string> exclude_units;    // validated systemd unit names
    std::vector<std::string> exclude_commands; // task comm values, at most 15 bytes each
    // Processes of other pid namespaces (containers) may be stopped too.
    bool other_pid_namespaces = false;

    bool operator==(const StopContinueConfig&) const = default;
};

struct RemediationConfig {
    bool enabled = true;
    std::chrono::milliseconds grace_ms{200};
    KickConfig kick;
    StopContinueConfig stop_continue;

    bool operator==(const RemediationConfig&) const = default;
};

struct LogConfig {
    LogLevel level = LogLevel::info;

    bool operator==(const LogConfig&) const = default;
};

// node_exporter's textfile collector reads *.prom files from this directory on Debian
// (prometheus-node-exporter's --collector.textfile.directory).
inline constexpr std::string_view default_metrics_textfile =
    "/var/lib/prometheus/node-exporter/livepatchd.prom";

struct MetricsConfig {
    // Where the Prometheus metrics are written at every state change (docs/metrics.md);
    // "": nowhere.
    std::string textfile = std::string(default_metrics_textfile);

    bool operator==(const MetricsConfig&) const = default;
};

struct Config {
    BootConfig boot;
    TransitionConfig transition;
    RemediationConfig remediation;
    LogConfig log;
    MetricsConfig metrics;

    bool operator==(const Config&) const = default;
};

// SYSCONFDIR comes from the generated build-config.h, force-included into every TU.
inline constexpr std::string_view default_config_path = SYSCONFDIR "/livepatchd/livepatchd.json";

// Limits shared by the parser, the docs and the tests.
inline constexpr std::size_t comm_max_length = 15; // TASK_COMM_LEN - 1
inline constexpr std::size_t config_max_size = 1 << 20;
// Arrays and objects inside each other. A configuration needs 4; the limit keeps the cost of
// a broken or hostile file linear in its size, whatever its shape.
inline constexpr std::size_t config_max_depth = 64;

// Parses and validates one configuration document. origin names it in error messages (a path,
// or something like "<stdin>"). Errors carry EINVAL and a message of the form
//   "<origin>:<line>:<column>: <what>"   for JSON syntax errors,
//   "<origin>: <dotted.key>: <what>"     for everything else.
Result<Config> parse_config(std::string_view json_text, std::string_view origin);

// What a missing configuration file means: at the default path the file is optional and the
// built-in defaults apply; a path the user named must exist.
enum class MissingConfig { use_defaults, fail };

Result<Config> load_config(const std::filesystem::path& path, MissingConfig if_missing);

// Whether a task's command name, as livepatchd holds it (printable(): bytes that are not valid
// UTF-8 written as \xNN), is the stop_continue.exclude_commands entry. The kernel keeps the
// first 15 bytes of a name and so may cut its last character in two; the entry then names the
// whole characters before the cut (what --check-config suggests), and matches the name that
// ends in the cut character's first bytes.
bool command_matches(std::string_view comm, std::string_view entry);

// The configuration as JSON, with every key present: what --check-config prints.
// parse_config(to_json(c).dump(), ...) == c for every valid c.
nlohmann::json to_json(const Config& config);

} // namespace livepatchd
