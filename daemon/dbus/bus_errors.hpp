// SPDX-License-Identifier: GPL-2.0-only
//
// The named D-Bus errors of org.livepatchd.LivePatch1 (docs/dbus-api.md): expected outcomes a
// client can act on. Everything else is an errno, which sd-bus maps to the standard
// org.freedesktop.DBus.Error.* names.
#pragma once

#include <systemd/sd-bus.h>

#include <string_view>

#include "patch_error.hpp"

namespace livepatchd::dbus {

inline constexpr std::string_view error_prefix = "org.livepatchd.LivePatch1.Error.";

// Outcomes of the Manager's own checks (PatchErrc covers the patch file and the store).
enum class ManagerErrc {
    transition_in_progress, // another patch's transition is under way
    no_transition,          // Kick or Force with no transition under way
    not_in_transition,      // Force of a patch that is not the one in transition
    already_applied,
    not_applied,
    not_top_patch,  // Revert of a patch with another applied above it
    still_applied,  // Remove of a patch that is applied or wanted
    shim_not_loaded,
};

std::string_view to_string(ManagerErrc code);

// Fill error and return a negative errno, for returning from an sd-bus method handler.
int set_error(sd_bus_error* error, ManagerErrc code, const std::string& message);
// Named errors for the PatchErrc outcomes, InvalidArgs for invalid_path and invalid_name,
// the errno's standard name for io.
int set_error(sd_bus_error* error, const PatchError& patch_error);
// errno-classified errors (PatchControl): EBUSY -> TransitionInProgress, ENODEV ->
// ShimNotLoaded, others by errno.
int set_error(sd_bus_error* error, const Error& plain_error);

} // namespace livepatchd::dbus
