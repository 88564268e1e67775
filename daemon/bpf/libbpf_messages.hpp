// SPDX-License-Identifier: GPL-2.0-only
//
// libbpf's own messages (the verifier's log among them), routed where the daemon wants them,
// and load failures named by their cause: a verifier rejection is not a missing privilege.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace livepatchd {

// Every message libbpf prints from now on goes to sink (one line each, no trailing newline)
// instead of stderr. Not thread-safe: call once, before the first skeleton is opened.
void route_libbpf_messages(std::function<void(std::string_view)> sink);

// Whether libbpf said, since the last call, that the kernel refused to load a program (its
// verifier log follows such a line); and the program's name in *program.
bool libbpf_saw_program_rejected(std::string* program);

// The text of a failure to `what` (e.g. "load BPF object pending_tasks") with errno errnum:
// a verifier rejection (rejected_program non-empty) says so and where its log went; EPERM or
// EACCES otherwise names the privileges.
inline std::string bpf_failure_text(int errnum, std::string_view what,
                                    std::string_view errno_text, std::string_view rejected_program)
{
    std::string text = "failed to " + std::string(what) + ": " + std::string(errno_text);
    if (!rejected_program.empty())
        return text + " (the kernel's verifier rejected BPF program '" +
               std::string(rejected_program) +
               "'; its log is in the journal at debug level: journalctl -u livepatchd -p debug)";
    if (errnum == 1 /* EPERM */ || errnum == 13 /* EACCES */)
        text += " (are you root? needs CAP_BPF and CAP_PERFMON)";
    return text;
}

} // namespace livepatchd
