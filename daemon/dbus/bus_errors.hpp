// SPDX-License-Identifier: GPL-2.0-only
//
// The named D-Bus errors of org.livepatchd.LivePatch1 (docs/dbus-api.md): expected outcomes a
// client can act on. Everything else is an errno, which sd-bus maps to the standard
// org.freedesktop.DBus.Error.* names.
#pragma once

#include <systemd/sd-bus.h>

#include <string_view>

#include "service/op_error.hpp"
#include "store/patch_error.hpp"

namespace livepatchd::dbus {

inline constexpr std::string_view error_prefix = "org.livepatchd.LivePatch1.Error.";

// Fill error and return a negative errno, for returning from an sd-bus method handler.
int set_error(sd_bus_error* error, OpErrc code, const std::string& message);
// Named errors for the PatchErrc outcomes, InvalidArgs for invalid_path and invalid_name,
// the errno's standard name for io.
int set_error(sd_bus_error* error, const PatchError& patch_error);
// A system error: the errno's standard name (org.freedesktop.DBus.Error.*).
int set_error(sd_bus_error* error, const Error& plain_error);
// Whichever of the above the outcome is.
int set_error(sd_bus_error* error, const OpError& op_error);

} // namespace livepatchd::dbus
