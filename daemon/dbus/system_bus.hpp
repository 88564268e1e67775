// SPDX-License-Identifier: GPL-2.0-only
//
// livepatchd's connection to the system bus, as its event loop uses it.
#pragma once

#include "common/result.hpp"
#include "dbus/bus_ptr.hpp"

namespace livepatchd::dbus {

// What the kernel holds of what livepatchd sends on the bus, at most (its own count).
constexpr int send_buffer_bytes = 256 * 1024;

// The system bus (DBUS_SYSTEM_BUS_ADDRESS, or the default socket), not yet attached to a loop;
// its socket holds at most send_buffer_bytes of what is sent (the rest waits in sd-bus's queue),
// and it stays open when the loop it is attached to exits.
Result<BusPtr> open_system_bus();

} // namespace livepatchd::dbus
