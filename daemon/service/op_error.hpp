// SPDX-License-Identifier: GPL-2.0-only
//
// The outcomes of PatchOperations: a named one a client can act on (OpErrc, or a PatchErrc of
// the store and the patch file), or a plain system error (errno). The D-Bus adapter maps each
// to its error name (docs/dbus-api.md). PatchControl's errors are named by what they mean in
// the kernel's state of that moment (PatchOperations: EBUSY is a transition under way, or a
// function that cannot be redirected), never by their errno alone.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/result.hpp"
#include "store/patch_error.hpp"

namespace livepatchd {

enum class OpErrc {
    transition_in_progress, // another patch's transition is under way
    no_transition,          // Kick or Force with no transition under way
    not_in_transition,      // Force of a patch that is not the one in transition
    already_applied,
    not_applied,
    not_top_patch,          // Revert of a patch with another applied above it
    still_applied,          // Remove of a patch that is applied or wanted
    shim_not_loaded,        // lpshim.ko is not loaded (its sysfs directory is missing)
    desired_state_unavailable, // the desired state could not be read: nothing may change it
    redirect_refused,       // the kernel cannot redirect a function: another ftrace user, ftrace off
    load_refused,           // the kernel refused the patch module for another reason
};

std::string_view to_string(OpErrc code);

struct OpError : Error {
    // monostate: a plain system error, classified by errnum.
    std::variant<std::monostate, OpErrc, PatchErrc> code;

    OpError() = default;
    OpError(OpErrc c, int errnum, std::string message) : Error{errnum, std::move(message)}, code(c)
    {
    }
    OpError(const PatchError& e) : Error{e.errnum, e.message}, code(e.code) {}
    OpError(const Error& e) : Error(e) {}
};

template <typename T>
using OpResult = Result<T, OpError>;

} // namespace livepatchd
