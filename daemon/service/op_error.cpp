// SPDX-License-Identifier: GPL-2.0-only
#include "service/op_error.hpp"

namespace livepatchd {

std::string_view to_string(OpErrc code)
{
    switch (code) {
    case OpErrc::transition_in_progress: return "TransitionInProgress";
    case OpErrc::no_transition: return "NoTransition";
    case OpErrc::not_in_transition: return "NotInTransition";
    case OpErrc::already_applied: return "AlreadyApplied";
    case OpErrc::not_applied: return "NotApplied";
    case OpErrc::not_top_patch: return "NotTopPatch";
    case OpErrc::still_applied: return "StillApplied";
    case OpErrc::shim_not_loaded: return "ShimNotLoaded";
    case OpErrc::desired_state_unavailable: return "DesiredStateUnavailable";
    case OpErrc::redirect_refused: return "RedirectRefused";
    case OpErrc::load_refused: return "LoadRefused";
    }
    return "TransitionInProgress";
}

} // namespace livepatchd
