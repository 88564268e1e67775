// SPDX-License-Identifier: GPL-2.0-only
//
// RAII owners for sd-bus objects: every bus, slot, message and error the D-Bus layer holds.
#pragma once

#include <systemd/sd-bus.h>

#include <memory>

namespace livepatchd::dbus {

struct BusUnref {
    void operator()(sd_bus* bus) const noexcept { sd_bus_flush_close_unref(bus); }
};
struct SlotUnref {
    void operator()(sd_bus_slot* slot) const noexcept { sd_bus_slot_unref(slot); }
};
struct MessageUnref {
    void operator()(sd_bus_message* message) const noexcept { sd_bus_message_unref(message); }
};
struct CredsUnref {
    void operator()(sd_bus_creds* creds) const noexcept { sd_bus_creds_unref(creds); }
};

using BusPtr = std::unique_ptr<sd_bus, BusUnref>;
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;
using CredsPtr = std::unique_ptr<sd_bus_creds, CredsUnref>;

// Takes a new reference: for messages the caller does not own (handler arguments).
inline MessagePtr ref_message(sd_bus_message* message) noexcept
{
    return MessagePtr(sd_bus_message_ref(message));
}

// An sd_bus_error that frees itself.
class BusError {
public:
    BusError() noexcept = default;
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    ~BusError() { sd_bus_error_free(&error_); }

    sd_bus_error* get() noexcept { return &error_; }
    const sd_bus_error* get() const noexcept { return &error_; }
    bool is_set() const noexcept { return sd_bus_error_is_set(&error_); }

private:
    sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

} // namespace livepatchd::dbus
