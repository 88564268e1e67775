// SPDX-License-Identifier: GPL-2.0-only
//
// EventLoop: a private sd-event loop for a test, turned by hand. Include after doctest.h.
#pragma once

#include <systemd/sd-event.h>

struct EventLoop {
    EventLoop() { REQUIRE(sd_event_new(&event) >= 0); }
    ~EventLoop() { sd_event_unref(event); }
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;
    // One turn of the loop; whether it dispatched anything.
    bool turn() { return sd_event_run(event, 0) > 0; }
    sd_event* event = nullptr;
};
