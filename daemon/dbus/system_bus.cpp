// SPDX-License-Identifier: GPL-2.0-only
#include "dbus/system_bus.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/journal.hpp"

namespace livepatchd::dbus {

Result<BusPtr> open_system_bus()
{
    sd_bus* bus = nullptr;
    if (const int r = sd_bus_open_system(&bus); r < 0)
        return Error{-r, "cannot connect to the system bus: " + std::string(std::strerror(-r))};
    BusPtr owned(bus);
    // sd-bus asks the kernel for 8 MiB socket buffers (forced, for root): a reply of megabytes
    // (ListPendingTasks at 30,000 pending tasks: ~5 MB) was copied into the kernel in one write,
    // on the loop (a 95 ms dispatch, 55 ms of it in the kernel, under emulation). With at most
    // send_buffer_bytes in the kernel, each turn of the loop writes what the bus has read since
    // and sd-bus keeps the rest, in order. (The kernel counts twice what is asked for.) A
    // synchronous call (sd-bus's look at a caller's credentials) waits behind what is queued,
    // as it waited behind what the kernel held before: the bus reads the socket in order.
    const int size = send_buffer_bytes / 2;
    if (const int fd = sd_bus_get_fd(bus);
        fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) < 0)
        journal::log(LogLevel::warning,
                     "cannot bound the system bus's socket buffer (" +
                         std::string(std::strerror(fd < 0 ? -fd : errno)) +
                         "): a reply of megabytes may keep the event loop for tens of ms");
    // Open until BusPtr closes it, not closed as the loop exits (sd-bus's default for a bus
    // attached to a loop): livepatchd asks systemd at its stop, once its loop has ended.
    (void)sd_bus_set_close_on_exit(bus, 0);
    return owned;
}

} // namespace livepatchd::dbus
