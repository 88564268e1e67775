// SPDX-License-Identifier: GPL-2.0-only
//
// Result<T>: a value or an Error (errno + message), as in bpftrace and dbus-broker. C++20 on
// Debian 12 has no std::expected; this is the small part of it the daemon needs.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace livepatchd {

struct Error {
    // A positive errno value that classifies the failure (EINVAL for bad input, ENOENT, ...),
    // so that callers can map it to a D-Bus error or an exit status without parsing the text.
    int errnum = 0;
    // Complete and human-readable: names the input and what would fix it. Printed as is.
    std::string message;

    bool operator==(const Error&) const = default;
};

// E is Error, or a type derived from it that adds a named outcome (PatchError): callers that
// only report can treat every E as an Error, callers that map outcomes (D-Bus) read the name.
template <typename T, typename E = Error>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    Result(E error) : state_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    // Reading the value of a failed Result (or the error of a good one) is a programming error
    // and throws std::bad_variant_access.
    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const E& error() const& { return std::get<1>(state_); }
    E&& error() && { return std::get<1>(std::move(state_)); }

private:
    std::variant<T, E> state_;
};

// For actions that produce nothing but may fail: `return {};` on success.
template <typename E>
class [[nodiscard]] Result<void, E> {
public:
    Result() = default;
    Result(E error) : error_(std::move(error)), failed_(true) {}

    bool ok() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return ok(); }
    const E& error() const& { return error_; }
    E&& error() && { return std::move(error_); }

private:
    E error_;
    bool failed_ = false;
};

} // namespace livepatchd
