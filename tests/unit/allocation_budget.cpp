// SPDX-License-Identifier: GPL-2.0-only
#include "allocation_budget.hpp"

#include <cstdlib>
#include <new>

std::size_t livepatchd::test::allocation_budget = SIZE_MAX;

// The replaceable global allocation functions ([new.delete.single]); new[] and delete[] call
// these by default. gcc takes the pair for the standard one and warns that free() does not
// match operator new; here it does.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size)
{
    using livepatchd::test::allocation_budget;
    if (allocation_budget != SIZE_MAX) {
        if (size > allocation_budget)
            throw std::bad_alloc();
        allocation_budget -= size;
    }
    if (void* p = std::malloc(size ? size : 1))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
