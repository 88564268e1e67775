// SPDX-License-Identifier: GPL-2.0-only
//
// The daemon's words for the journal: one MESSAGE per step or outcome, with structured fields
// (PATCH=, TRANSITION=, ...) and, for the events a script may wait for, a MESSAGE_ID= (the
// catalog is in docs/user-guide.md):
//   journalctl -u livepatchd MESSAGE_ID=5b5e20f1304b434c8c8bfbc866f04ccd   # transitions ended
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace livepatchd::journal {

namespace message_id {
inline constexpr std::string_view transition_started = "65e0478a0d5e49ba82c780b9dd17747b";
inline constexpr std::string_view transition_finished = "5b5e20f1304b434c8c8bfbc866f04ccd";
inline constexpr std::string_view boot_apply = "2e5d3ffb86714b21b1f3e812e6da3701";
inline constexpr std::string_view action_failed = "405152cbda194baab53148e7213972e8";
} // namespace message_id

struct Field {
    std::string_view name; // upper case, as journald wants it: PATCH, TRANSITION, ...
    std::string value;
};

// Messages less important than this are dropped (log.level).
void set_level(LogLevel level);

// Whether stderr is a stream to the journal: systemd names it in JOURNAL_STREAM (dev:ino).
bool stderr_is_journal();

// Where log() writes. native: the journal's own protocol, with every field. stream:
// "<priority>message" lines on a stderr that is the journal's stream, without the fields, for
// words a process may exit right after (ExecStopPost=, a start that fails): journald files a
// native message under the unit of its sender's cgroup, which it cannot read once the sender is
// gone, and `journalctl -u` would not show it; a stream carries its unit in its header.
enum class Output { native, stream };
void set_output(Output output);

void log(LogLevel level, std::string_view message, std::initializer_list<Field> fields = {});

} // namespace livepatchd::journal
