// SPDX-License-Identifier: GPL-2.0-only
//
// Text that comes from users and must be safe to pass on: a task's command name (`comm`) is
// chosen by whoever runs the task (prctl(PR_SET_NAME) takes any bytes), and goes on the bus
// (which accepts only valid UTF-8: sd_bus_message_append fails on anything else), into the
// journal, and onto an admin's terminal (where an escape sequence would be obeyed).
#pragma once

#include <string>
#include <string_view>

namespace livepatchd {

// Whether text is valid UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF).
bool is_valid_utf8(std::string_view text);

// text with every byte that is not part of valid, printable UTF-8 written as \xNN: valid
// UTF-8 without control characters (C0, DEL, C1), which says which bytes were there.
// Printable text is returned unchanged, so printable(printable(x)) == printable(x): the
// daemon, the D-Bus adapter and livepatchctl each apply it without escaping twice. (A name
// that holds the four characters "\xff" reads like one that held the byte; both are shown
// as text that cannot act on a terminal, which is what matters.)
std::string printable(std::string_view text);
// The same, in place: text that is printable already is left as it is (not copied).
void make_printable(std::string& text);

} // namespace livepatchd
