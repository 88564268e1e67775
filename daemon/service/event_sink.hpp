// SPDX-License-Identifier: GPL-2.0-only
//
// EventSink: what the service reports as it happens. The D-Bus adapter (dbus::Manager)
// implements it with signals and PropertiesChanged; tests record the calls. The service's
// parts never call the bus themselves.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernel/patch_control.hpp"
#include "service/status.hpp"

namespace livepatchd {

class EventSink {
public:
    virtual ~EventSink() = default;

    virtual void transition_started(std::string_view patch, std::string_view target) = 0;
    virtual void transition_finished(std::string_view patch, std::string_view target,
                                     std::string_view outcome, std::uint64_t duration_usec) = 0;
    virtual void transition_stalled(std::string_view patch, std::string_view action,
                                    std::uint64_t elapsed_usec) = 0;
    // The transition properties (State, TransitionPatch, ...), when they change.
    virtual void transition_status(const TransitionStatus& status) = 0;
    virtual void task_blocked(const PendingTask& task, std::string_view kind,
                              std::string_view note) = 0;
    virtual void task_remediated(const PendingTask& task, std::string_view action) = 0;
    // A patch's state or properties changed; added to or removed from the store.
    virtual void patch_changed(std::string_view name) = 0;
    virtual void patch_added(std::string_view name) = 0;
    virtual void patch_removed(std::string_view name) = 0;
};

// Reports nothing: the default until an adapter is attached (and a base for a test's sink that
// records some of the events).
class NullEventSink : public EventSink {
public:
    void transition_started(std::string_view, std::string_view) override {}
    void transition_finished(std::string_view, std::string_view, std::string_view,
                             std::uint64_t) override
    {
    }
    void transition_stalled(std::string_view, std::string_view, std::uint64_t) override {}
    void transition_status(const TransitionStatus&) override {}
    void task_blocked(const PendingTask&, std::string_view, std::string_view) override {}
    void task_remediated(const PendingTask&, std::string_view) override {}
    void patch_changed(std::string_view) override {}
    void patch_added(std::string_view) override {}
    void patch_removed(std::string_view) override {}
};

} // namespace livepatchd
