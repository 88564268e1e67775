// SPDX-License-Identifier: GPL-2.0-only
#include "dbus/polkit.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace livepatchd::dbus {

namespace {

constexpr const char* polkit_service = "org.freedesktop.PolicyKit1";
constexpr const char* polkit_path = "/org/freedesktop/PolicyKit1/Authority";
constexpr const char* polkit_interface = "org.freedesktop.PolicyKit1.Authority";
constexpr std::uint32_t allow_user_interaction = 1; // CheckAuthorizationFlags
// An interactive authorization waits for a person typing a password, far longer than the
// 25 s default; a polkit that never answers must still not hold the call (and its query)
// forever.
constexpr std::uint64_t polkit_timeout_usec = std::uint64_t{5} * 60 * 1'000'000;

// CheckAuthorization(in (sa{sv}) subject, in s action_id, in a{ss} details, in u flags,
//                    in s cancellation_id, out (bba{ss}) result)
int build_check(sd_bus* bus, sd_bus_message* call, const std::string& action,
                const std::map<std::string, std::string>& details, sd_bus_message** out)
{
    sd_bus_message* m = nullptr;
    int r = sd_bus_message_new_method_call(bus, &m, polkit_service, polkit_path,
                                           polkit_interface, "CheckAuthorization");
    if (r < 0)
        return r;
    MessagePtr message(m);
    // The subject is the caller's unique bus name: polkit resolves it to a process and user
    // itself, race-free (unlike a pid).
    r = sd_bus_message_append(m, "(sa{sv})", "system-bus-name", 1, "name", "s",
                              sd_bus_message_get_sender(call));
    if (r < 0)
        return r;
    r = sd_bus_message_append(m, "s", action.c_str());
    if (r < 0)
        return r;
    r = sd_bus_message_open_container(m, 'a', "{ss}");
    if (r < 0)
        return r;
    for (const auto& [key, value] : details) {
        r = sd_bus_message_append(m, "{ss}", key.c_str(), value.c_str());
        if (r < 0)
            return r;
    }
    r = sd_bus_message_close_container(m);
    if (r < 0)
        return r;
    const std::uint32_t flags =
        sd_bus_message_get_allow_interactive_authorization(call) > 0 ? allow_user_interaction : 0;
    r = sd_bus_message_append(m, "us", flags, "");
    if (r < 0)
        return r;
    *out = message.release();
    return 0;
}

} // namespace

std::size_t PolkitAuthorizer::pending() const noexcept
{
    std::size_t n = 0;
    for (const Query& q : queries_)
        n += q.answered ? 0 : 1;
    return n;
}

void PolkitAuthorizer::forget(sd_bus_message* call) noexcept
{
    queries_.remove_if([call](const Query& q) { return q.answered && q.request.get() == call; });
}

int PolkitAuthorizer::check(sd_bus_message* call, const std::string& action,
                            const std::map<std::string, std::string>& details,
                            sd_bus_error* error)
{
    // The second dispatch of a call polkit has answered: the same message object.
    for (auto it = queries_.begin(); it != queries_.end(); ++it) {
        if (it->request.get() != call || it->action != action)
            continue;
        if (!it->answered)
            return 0; // dispatched again before the answer (cannot happen; be safe)
        // Kept until forget(): a call that then waits for its turn is handled again on it.
        const int verdict = it->verdict;
        if (verdict < 0)
            (void)sd_bus_error_set(error, it->error_name.c_str(), it->error_message.c_str());
        return verdict;
    }

    // Root short-circuit: a sender with our uid (root for the service) needs no polkit.
    int r = sd_bus_query_sender_privilege(call, -1);
    if (r < 0)
        return sd_bus_error_set_errnof(error, -r, "Cannot determine the caller's credentials: %s",
                                       std::strerror(-r));
    if (r > 0)
        return 1;

    sd_bus_message* check_call = nullptr;
    r = build_check(bus_, call, action, details, &check_call);
    if (r < 0)
        return sd_bus_error_set_errnof(error, -r, "Cannot ask polkit about %s: %s",
                                       action.c_str(), std::strerror(-r));
    MessagePtr check_message(check_call);

    Query& query = queries_.emplace_back();
    query.owner = this;
    query.request = ref_message(call);
    query.action = action;
    sd_bus_slot* slot = nullptr;
    r = sd_bus_call_async(bus_, &slot, check_message.get(), on_polkit_reply, &query,
                          polkit_timeout_usec);
    if (r < 0) {
        queries_.pop_back();
        return sd_bus_error_set_errnof(error, -r, "Cannot ask polkit about %s: %s",
                                       action.c_str(), std::strerror(-r));
    }
    query.call.reset(slot);
    return 0;
}

int PolkitAuthorizer::on_polkit_reply(sd_bus_message* reply, void* userdata,
                                      sd_bus_error* /*ret_error*/) noexcept
{
    auto* query = static_cast<Query*>(userdata);
    query->owner->answer(*query, reply);
    return 0;
}

void PolkitAuthorizer::answer(Query& query, sd_bus_message* reply) noexcept
{
    try {
        query.answered = true;
        query.call.reset(); // the call is complete; its slot is spent
        const std::string what = "Not allowed to " +
                                 query.action.substr(std::min(query.action.size(),
                                                              polkit_action_prefix.size())) +
                                 " (polkit action " + query.action + ")";

        if (const sd_bus_error* e = sd_bus_message_get_error(reply)) {
            // No polkit on the bus: nobody but root may act.
            query.verdict = -EACCES;
            query.error_name = SD_BUS_ERROR_ACCESS_DENIED;
            if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                       SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                query.error_message = what + ": polkit is not running, so only root is allowed";
            else
                query.error_message = what + ": polkit could not be asked: " +
                                      (e->message ? e->message : e->name);
        } else {
            int authorized = 0;
            int challenge = 0;
            int r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
            if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
            if (r < 0) {
                query.verdict = -EACCES;
                query.error_name = SD_BUS_ERROR_ACCESS_DENIED;
                query.error_message = what + ": polkit's answer could not be read";
            } else if (authorized) {
                query.verdict = 1;
            } else if (challenge) {
                query.verdict = -EACCES;
                query.error_name = SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED;
                query.error_message =
                    what + ": authentication is required; call with interactive authorization "
                           "allowed (busctl --allow-interactive-authorization=yes, or "
                           "livepatchctl from a session with a polkit agent)";
            } else {
                query.verdict = -EACCES;
                query.error_name = SD_BUS_ERROR_ACCESS_DENIED;
                query.error_message = what;
            }
        }
    } catch (...) {
        query.verdict = -ENOMEM;
        query.error_name = SD_BUS_ERROR_NO_MEMORY;
        query.error_message = "Out of memory";
    }

    // Run the handler again, from the start of the message.
    int r = sd_bus_message_rewind(query.request.get(), true);
    if (r >= 0)
        r = sd_bus_enqueue_for_read(bus_, query.request.get());
    if (r < 0) {
        // The call can no longer be answered by its handler: answer it here, once.
        (void)sd_bus_reply_method_errorf(query.request.get(), SD_BUS_ERROR_FAILED,
                                         "Cannot continue after authorization: %s",
                                         std::strerror(-r));
        for (auto it = queries_.begin(); it != queries_.end(); ++it)
            if (&*it == &query) {
                queries_.erase(it);
                break;
            }
    }
}

} // namespace livepatchd::dbus
