// SPDX-License-Identifier: GPL-2.0-only
//
// render_textfile: a MetricsSnapshot in the Prometheus text exposition format (0.0.4), as
// node_exporter's textfile collector reads it: no timestamps, every family with HELP and TYPE,
// names and units after Prometheus' conventions (base units, _total for counters, _info for
// information). A pure function: the same snapshot gives the same bytes. docs/metrics.md
// describes every family.
#pragma once

#include <string>
#include <string_view>

#include "metrics/snapshot.hpp"

namespace livepatchd::metrics {

std::string render_textfile(const MetricsSnapshot& snapshot);

// A label value as the format wants it: printable UTF-8 (printable(), with a backslash of
// value's own doubled so that distinct values stay distinct), then \ " and newline escaped.
std::string escape_label_value(std::string_view value);

} // namespace livepatchd::metrics
