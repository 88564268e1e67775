// SPDX-License-Identifier: GPL-2.0-only
//
// What the event loop is dispatching, for the DISPATCH_USEC lines of Service::run(): each of
// livepatchd's event handlers names itself (a string literal) as it starts; the last name set
// in a dispatch is the one shown. One loop, on one thread.
#pragma once

namespace livepatchd {

inline const char* dispatch_label = nullptr;

inline void label_dispatch(const char* what) noexcept
{
    dispatch_label = what;
}

} // namespace livepatchd
