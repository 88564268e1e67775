// SPDX-License-Identifier: GPL-2.0-only
#include "common/fault.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#ifdef LIVEPATCHD_FAULT_INJECTION
#include "common/journal.hpp"
#endif

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
    if (const char* at = std::getenv("LIVEPATCHD_FAULT_DELAY_AT")) {
        // name:ms[,name:ms...]
        std::string_view rest(at);
        while (!rest.empty()) {
            const std::string_view spec = rest.substr(0, rest.find(','));
            rest.remove_prefix(std::min(rest.size(), spec.size() + 1));
            const auto colon = spec.rfind(':');
            if (colon == std::string_view::npos || spec.substr(0, colon) != name)
                continue;
            const unsigned long ms =
                std::strtoul(std::string(spec.substr(colon + 1)).c_str(), nullptr, 10);
            const unsigned long delay_ms = std::min(ms, 10'000UL);
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            // Said after the delay, so that a test sees that the point was reached and slept.
            journal::log(LogLevel::notice,
                         "fault point " + std::string(name) + ": delayed " +
                             std::to_string(delay_ms) + " ms (LIVEPATCHD_FAULT_DELAY_AT)",
                         {{"FAULT_POINT", std::string(name)}});
        }
    }
#endif
}

} // namespace livepatchd
