// SPDX-License-Identifier: GPL-2.0-only
//
// CString: the one owner of a string a C library allocated for us with malloc() (sd-bus's
// property reads and path codings, sd-login's lookups), freed with free() however the scope
// is left.
#pragma once

#include <cstdlib>
#include <memory>

namespace livepatchd {

struct FreeDeleter {
    void operator()(void* p) const noexcept { std::free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

} // namespace livepatchd
