// SPDX-License-Identifier: GPL-2.0-only
#include "common/fault.hpp"

#include <signal.h>

#include <cstdlib>
#include <utility>

namespace livepatchd {

namespace {
std::function<void(std::string_view)>& hook()
{
    static std::function<void(std::string_view)> h;
    return h;
}
} // namespace

void set_fault_hook(std::function<void(std::string_view)> h)
{
    hook() = std::move(h);
}

void fault_point(std::string_view name)
{
    if (hook())
        hook()(name);
#ifdef LIVEPATCHD_FAULT_INJECTION
    if (const char* at = std::getenv("LIVEPATCHD_FAULT_CRASH_AT"); at && name == at)
        ::raise(SIGKILL);
#endif
}

} // namespace livepatchd
