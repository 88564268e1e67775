// SPDX-License-Identifier: GPL-2.0-only
//
// PolkitAuthorizer: may the sender of this method call do that action? Modelled on systemd's
// bus-polkit.c:
//  - root (a sender with the daemon's own uid) is allowed without asking;
//  - everyone else is asked about through polkit's CheckAuthorization, asynchronously: check()
//    returns 0 ("pending"), the handler returns without replying, and when polkit answers the
//    original message is dispatched again, so the handler runs once more from the start
//    (parse and validate again, on the state of that moment) and this time check() returns
//    the verdict;
//  - no polkit on the bus means denied: without it nobody but root can be allowed.
// A caller that set the "allow interactive authorization" flag may be asked for a password by
// its polkit agent; otherwise a "challenge" answer becomes InteractiveAuthorizationRequired.
#pragma once

#include <systemd/sd-bus.h>

#include <list>
#include <map>
#include <string>
#include <string_view>

#include "dbus/bus_ptr.hpp"

namespace livepatchd::dbus {

class PolkitAuthorizer {
public:
    explicit PolkitAuthorizer(sd_bus* bus) noexcept : bus_(bus) {}
    PolkitAuthorizer(const PolkitAuthorizer&) = delete;
    PolkitAuthorizer& operator=(const PolkitAuthorizer&) = delete;

    // 1: allowed, act now. 0: asked polkit; return 1 from the handler without replying.
    // < 0: not allowed or the question failed; error is set, return the value.
    // details are passed to polkit (rules see them with action.lookup(key)).
    int check(sd_bus_message* call, const std::string& action,
              const std::map<std::string, std::string>& details, sd_bus_error* error);

    // Called after every dispatch of a method call, unless the call waits to be handled again
    // (dbus::Manager: an operation runs): an answered query for it is spent, whether or not the
    // handler reached check() again (it may fail validation first on its second dispatch).
    // check() keeps it until then. Unanswered queries stay until polkit answers or times out.
    void forget(sd_bus_message* call) noexcept;

    // Queries still waiting for polkit's answer (for tests and the shutdown path).
    std::size_t pending() const noexcept;
    // Queries kept at all, answered or not (for tests: none may leak).
    std::size_t kept() const noexcept { return queries_.size(); }

private:
    struct Query {
        PolkitAuthorizer* owner = nullptr;
        MessagePtr request;
        std::string action;
        SlotPtr call;           // the CheckAuthorization call while it is under way
        bool answered = false;
        int verdict = 0;        // once answered: 1 or a negative errno
        std::string error_name; // with a negative verdict
        std::string error_message;
    };

    static int on_polkit_reply(sd_bus_message* reply, void* userdata,
                               sd_bus_error* ret_error) noexcept;
    void answer(Query& query, sd_bus_message* reply) noexcept;

    sd_bus* bus_;
    std::list<Query> queries_; // stable addresses: each is the userdata of its call
};

inline constexpr std::string_view polkit_action_prefix = "org.livepatchd.LivePatch1.";

} // namespace livepatchd::dbus
