// SPDX-License-Identifier: GPL-2.0-only
//
// A bound on what operator new hands out while an AllocationBudget lives, for tests of parsers
// that read hostile input: one whose memory grows faster than its input runs out of it and
// fails, deterministically, whatever the machine's speed or load (the budget counts every
// allocation, not what is live at once). Link allocation_budget.cpp into the test executable:
// it replaces the global operator new.
#pragma once

#include <cstddef>
#include <cstdint>

namespace livepatchd::test {

// Bytes that operator new may still hand out; SIZE_MAX: no budget.
extern std::size_t allocation_budget;

struct AllocationBudget {
    explicit AllocationBudget(std::size_t bytes) { allocation_budget = bytes; }
    ~AllocationBudget() { allocation_budget = SIZE_MAX; }
    AllocationBudget(const AllocationBudget&) = delete;
    AllocationBudget& operator=(const AllocationBudget&) = delete;
};

} // namespace livepatchd::test
