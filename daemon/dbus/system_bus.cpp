// SPDX-License-Identifier: GPL-2.0-only
#include "dbus/system_bus.hpp"

#include <cstring>
#include <string>

namespace livepatchd::dbus {

Result<BusPtr> open_system_bus()
{
    sd_bus* bus = nullptr;
    if (const int r = sd_bus_open_system(&bus); r < 0)
        return Error{-r, "cannot connect to the system bus: " + std::string(std::strerror(-r))};
    return BusPtr(bus);
}

} // namespace livepatchd::dbus
