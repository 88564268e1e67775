// SPDX-License-Identifier: GPL-2.0-only
//
// livepatchd's connection to the system bus, as its event loop uses it.
#pragma once

#include "common/result.hpp"
#include "dbus/bus_ptr.hpp"

namespace livepatchd::dbus {

// The system bus (DBUS_SYSTEM_BUS_ADDRESS, or the default socket), not yet attached to a loop.
Result<BusPtr> open_system_bus();

} // namespace livepatchd::dbus
