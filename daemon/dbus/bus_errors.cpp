// SPDX-License-Identifier: GPL-2.0-only
#include "dbus/bus_errors.hpp"

#include <cerrno>
#include <string>

namespace livepatchd::dbus {

namespace {

int set_named(sd_bus_error* error, std::string_view name, int errnum, const std::string& message)
{
    const std::string full = std::string(error_prefix) + std::string(name);
    // sd_bus_error_set() copies both strings. It returns the errno sd-bus maps the name to,
    // which is EIO for names it does not know: the handler returns the caller's errno instead.
    (void)sd_bus_error_set(error, full.c_str(), message.c_str());
    return -errnum;
}

} // namespace

int set_error(sd_bus_error* error, OpErrc code, const std::string& message)
{
    int errnum = EINVAL;
    switch (code) {
    case OpErrc::transition_in_progress: errnum = EBUSY; break;
    case OpErrc::no_transition:
    case OpErrc::not_in_transition: errnum = ESRCH; break;
    case OpErrc::already_applied: errnum = EALREADY; break;
    case OpErrc::not_applied: errnum = ENOENT; break;
    case OpErrc::not_top_patch:
    case OpErrc::still_applied: errnum = EBUSY; break;
    case OpErrc::shim_not_loaded: errnum = ENODEV; break;
    case OpErrc::desired_state_unavailable: errnum = EIO; break;
    case OpErrc::redirect_refused: errnum = EBUSY; break;
    case OpErrc::load_refused: errnum = EPERM; break;
    }
    return set_named(error, to_string(code), errnum, message);
}

int set_error(sd_bus_error* error, const PatchError& patch_error)
{
    const int errnum = patch_error.errnum > 0 ? patch_error.errnum : EIO;
    switch (patch_error.code) {
    case PatchErrc::io:
        return sd_bus_error_set_errnof(error, errnum, "%s", patch_error.message.c_str());
    case PatchErrc::invalid_path:
    case PatchErrc::invalid_name:
        (void)sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, patch_error.message.c_str());
        return -EINVAL;
    default:
        return set_named(error, to_string(patch_error.code), errnum, patch_error.message);
    }
}

int set_error(sd_bus_error* error, const Error& plain_error)
{
    // By errno only: what an errno means for a client is decided where the state is known
    // (PatchOperations), and comes here as an OpErrc.
    return sd_bus_error_set_errnof(error, plain_error.errnum > 0 ? plain_error.errnum : EIO, "%s",
                                   plain_error.message.c_str());
}

int set_error(sd_bus_error* error, const OpError& op_error)
{
    if (const auto* code = std::get_if<OpErrc>(&op_error.code))
        return set_error(error, *code, op_error.message);
    if (const auto* code = std::get_if<PatchErrc>(&op_error.code))
        return set_error(error, PatchError(*code, op_error.errnum, op_error.message));
    return set_error(error, static_cast<const Error&>(op_error));
}

} // namespace livepatchd::dbus
