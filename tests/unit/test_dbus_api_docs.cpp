// SPDX-License-Identifier: GPL-2.0-only
//
// docs/dbus-api.md against what the service exports and sends, so that they cannot drift apart
// again (issue 18: TransitionFinished's outcomes were documented as completed/reversed/forced
// and sent as patched/unpatched; named errors were documented for causes that got others):
//  - every method (with its arguments), property (with its type, and whether it is const) and
//    signal (with its arguments) of both interfaces, against the committed introspection XML
//    (daemon/dbus/*.xml, which tests/bus/check-introspection holds the running service to);
//  - the named errors: the table of "## Errors" is exactly the set of names that
//    dbus::set_error() gives the daemon's outcomes (OpErrc, PatchErrc), and every error a
//    method's "Errors:" list names is in that table or a standard one;
//  - TransitionFinished's outcomes: the outcome table is exactly the values the watcher sends;
//  - the values documented for State (both), TransitionTarget, TransitionStarted's target,
//    TaskBlocked's kind and TaskRemediated's action are exactly those the code sends.
// Reads the files from LIVEPATCHD_SOURCE_ROOT (meson sets it).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <systemd/sd-bus.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dbus/bus_errors.hpp"
#include "remediation/remediation.hpp"
#include "service/status.hpp"
#include "service/op_error.hpp"
#include "service/transition_watcher.hpp"
#include "store/patch_error.hpp"

using namespace livepatchd;

namespace {

std::string source_file(const std::string& relative)
{
    const char* root = std::getenv("LIVEPATCHD_SOURCE_ROOT");
    REQUIRE_MESSAGE(root, "LIVEPATCHD_SOURCE_ROOT is not set; run through meson test");
    std::ifstream in(std::string(root) + "/" + relative);
    REQUIRE_MESSAGE(in, "cannot read " << relative);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The text from the line `heading` to the next heading of the same or a higher level.
std::string section(const std::string& text, const std::string& heading)
{
    const std::size_t start = text.find("\n" + heading + "\n");
    REQUIRE_MESSAGE(start != std::string::npos, "docs/dbus-api.md has no '" << heading << "'");
    const std::size_t level = heading.find(' ');
    std::size_t end = start + 1;
    for (;;) {
        end = text.find("\n#", end + 1);
        if (end == std::string::npos)
            break;
        const std::size_t hashes = text.find_first_not_of('#', end + 1) - (end + 1);
        if (hashes <= level)
            break;
    }
    return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

std::string trim(std::string s)
{
    s.erase(0, s.find_first_not_of(' '));
    s.erase(s.find_last_not_of(' ') + 1);
    return s;
}

// "s patch, s target" -> {"s patch", "s target"}
std::vector<std::string> arguments(const std::string& list)
{
    std::vector<std::string> out;
    std::string current;
    int depth = 0;
    for (char c : list) {
        if (c == '(')
            ++depth;
        if (c == ')')
            --depth;
        if (c == ',' && depth == 0) {
            out.push_back(trim(current));
            current.clear();
            continue;
        }
        current += c;
    }
    if (!trim(current).empty())
        out.push_back(trim(current));
    return out;
}

struct Interface {
    // "Install" -> {"in h file", "out s name", "out o patch"}
    std::map<std::string, std::vector<std::string>> methods;
    // "State" -> "s" or "s, const"
    std::map<std::string, std::string> properties;
    // "TransitionStarted" -> {"s patch", "s target"}
    std::map<std::string, std::vector<std::string>> signals;
};

std::string attribute(const std::string& tag, const std::string& name)
{
    const std::regex re(name + "=\"([^\"]*)\"");
    std::smatch m;
    return std::regex_search(tag, m, re) ? m[1].str() : std::string();
}

// The committed XML: members in order, as plain as introspection data is.
Interface from_xml(const std::string& xml, const std::string& interface)
{
    Interface out;
    const std::size_t start = xml.find("<interface name=\"" + interface + "\">");
    REQUIRE(start != std::string::npos);
    const std::string body = xml.substr(start, xml.find("</interface>", start) - start);
    const std::regex element(R"(<(method|property|signal|arg|annotation)\b([^>]*)>)");
    std::string kind, member;
    for (std::sregex_iterator it(body.begin(), body.end(), element), end; it != end; ++it) {
        const std::string tag = (*it)[1];
        const std::string attrs = (*it)[2];
        if (tag == "method" || tag == "signal" || tag == "property") {
            kind = tag;
            member = attribute(attrs, "name");
            if (tag == "method")
                out.methods[member];
            else if (tag == "signal")
                out.signals[member];
            else
                out.properties[member] = attribute(attrs, "type");
        } else if (tag == "arg") {
            const std::string arg = attribute(attrs, "type") + " " + attribute(attrs, "name");
            if (kind == "method")
                out.methods[member].push_back(attribute(attrs, "direction") + " " + arg);
            else if (kind == "signal")
                out.signals[member].push_back(arg);
        } else if (tag == "annotation" && kind == "property" &&
                   attribute(attrs, "name") == "org.freedesktop.DBus.Property.EmitsChangedSignal" &&
                   attribute(attrs, "value") == "const") {
            out.properties[member] += ", const";
        }
    }
    return out;
}

// A property table's rows: | `Name` | type | meaning |
std::map<std::string, std::string> property_table(const std::string& text)
{
    std::map<std::string, std::string> out;
    const std::regex row(R"(^\| `(\w+)` \| ([^|]+) \|)");
    std::smatch m;
    for (const std::string& line : lines(text))
        if (std::regex_search(line, m, row) && m[1] != "property")
            out[m[1]] = trim(m[2]);
    return out;
}

Interface from_docs(const std::string& docs, const std::string& interface)
{
    Interface out;
    const std::string part = section(docs, "## " + interface);
    if (interface.ends_with(".Manager")) {
        const std::regex heading(R"(^#### `(\w+)\((.*?)\)(?: → \((.*?)\))?`)");
        std::smatch m;
        for (const std::string& line : lines(section(part, "### Methods")))
            if (std::regex_search(line, m, heading)) {
                auto& args = out.methods[m[1]];
                for (const std::string& a : arguments(m[2]))
                    args.push_back("in " + a);
                for (const std::string& a : arguments(m[3]))
                    args.push_back("out " + a);
            }
        out.properties = property_table(section(part, "### Properties"));
        const std::regex signal(R"(^\| `(\w+)\((.*?)\)` \|)");
        for (const std::string& line : lines(section(part, "### Signals")))
            if (std::regex_search(line, m, signal))
                out.signals[m[1]] = arguments(m[2]);
    } else {
        out.properties = property_table(part);
    }
    return out;
}

// The error name dbus::set_error() gives, without the prefix; "" for a standard error.
std::string named(int (*set)(sd_bus_error*))
{
    sd_bus_error error = SD_BUS_ERROR_NULL;
    (void)set(&error);
    std::string name = error.name ? error.name : "";
    sd_bus_error_free(&error);
    return name.starts_with(dbus::error_prefix) ? name.substr(dbus::error_prefix.size()) : "";
}

thread_local OpErrc op_code;
thread_local PatchErrc patch_code;

// Every enumerator of OpErrc and PatchErrc: their to_string() falls back to the first
// enumerator's name for a value past the last, which ends the walk.
std::set<std::string> names_sent()
{
    std::set<std::string> names;
    for (int i = 0;; ++i) {
        op_code = static_cast<OpErrc>(i);
        if (i > 0 && to_string(op_code) == to_string(static_cast<OpErrc>(0)))
            break;
        REQUIRE(i < 100);
        if (const std::string n = named([](sd_bus_error* e) {
                return dbus::set_error(e, op_code, "message");
            });
            !n.empty())
            names.insert(n);
    }
    for (int i = 0;; ++i) {
        patch_code = static_cast<PatchErrc>(i);
        if (i > 0 && to_string(patch_code) == to_string(static_cast<PatchErrc>(0)))
            break;
        REQUIRE(i < 100);
        if (const std::string n = named([](sd_bus_error* e) {
                return dbus::set_error(e, PatchError(patch_code, EINVAL, "message"));
            });
            !n.empty())
            names.insert(n);
    }
    return names;
}

// For doctest's messages: the whole of each side, one entry per line.
std::string text(const std::set<std::string>& names)
{
    std::string out;
    for (const std::string& n : names)
        out += "\n  " + n;
    return out;
}

std::string text(const std::map<std::string, std::string>& members)
{
    std::string out;
    for (const auto& [name, value] : members)
        out += "\n  " + name + ": " + value;
    return out;
}

std::string text(const std::map<std::string, std::vector<std::string>>& members)
{
    std::string out;
    for (const auto& [name, args] : members) {
        out += "\n  " + name + "(";
        for (std::size_t i = 0; i < args.size(); ++i)
            out += (i ? ", " : "") + args[i];
        out += ")";
    }
    return out;
}

} // namespace

TEST_CASE("every method, property and signal of docs/dbus-api.md is the introspection XML's")
{
    const std::string docs = source_file("docs/dbus-api.md");
    for (const std::string name : {"Manager", "Patch"}) {
        const std::string interface = "org.livepatchd.LivePatch1." + name;
        CAPTURE(interface);
        const Interface xml = from_xml(
            source_file("daemon/dbus/org.livepatchd.LivePatch1." + name + ".xml"), interface);
        const Interface documented = from_docs(docs, interface);
        CHECK(!xml.properties.empty());
        CHECK(text(documented.methods) == text(xml.methods));
        CHECK(text(documented.properties) == text(xml.properties));
        CHECK(text(documented.signals) == text(xml.signals));
    }
}

TEST_CASE("the named errors of docs/dbus-api.md are exactly those the service sends")
{
    const std::string docs = source_file("docs/dbus-api.md");
    std::set<std::string> table;
    const std::regex row(R"(^\| `(\w+)` \|)");
    std::smatch m;
    for (const std::string& line : lines(section(docs, "## Errors")))
        if (std::regex_search(line, m, row))
            table.insert(m[1]);
    const std::set<std::string> sent = names_sent();
    CHECK(sent.size() > 10);
    CHECK(text(table) == text(sent));

    // Each method's "Errors:" list names documented errors only.
    const std::set<std::string> standard = {"InvalidArgs", "AccessDenied", "FileNotFound",
                                            "InteractiveAuthorizationRequired"};
    const std::regex errors_line(R"(^Errors: )");
    const std::regex word("`(\\w+)`");
    bool in_list = false;
    int lists = 0;
    for (const std::string& line : lines(section(docs, "## org.livepatchd.LivePatch1.Manager"))) {
        if (std::regex_search(line, errors_line)) {
            in_list = true;
            ++lists;
        } else if (line.empty()) {
            in_list = false;
        }
        if (!in_list)
            continue;
        for (std::sregex_iterator it(line.begin(), line.end(), word), end; it != end; ++it) {
            const std::string name = (*it)[1];
            CAPTURE(line);
            CHECK_MESSAGE((table.contains(name) || standard.contains(name)),
                          name << " is in an Errors: list but not in the table of ## Errors");
        }
    }
    CHECK(lists >= 6);
}

TEST_CASE("TransitionFinished's outcomes in docs/dbus-api.md are exactly those sent")
{
    const std::string docs = source_file("docs/dbus-api.md");
    const std::string signals = section(docs, "### Signals");
    std::set<std::string> table;
    bool in_table = false;
    const std::regex row(R"(^\| `(\w+)` \|)");
    std::smatch m;
    for (const std::string& line : lines(signals)) {
        if (line.starts_with("| outcome |"))
            in_table = true;
        else if (line.empty())
            in_table = false;
        else if (in_table && std::regex_search(line, m, row))
            table.insert(m[1]);
    }
    const std::set<std::string> sent = {std::string(outcome_completed),
                                        std::string(outcome_reversed),
                                        std::string(outcome_forced)};
    CHECK(text(table) == text(sent));

    // And they are what the watcher sends at the end of a transition.
    TransitionWatcher watcher(std::chrono::seconds(30));
    (void)watcher.watch("lp_a", "unpatched", 1);
    const auto ended = watcher.update({}, 2);
    REQUIRE(ended.size() == 1);
    CHECK(sent.contains(ended[0].outcome));
}

namespace {

// The line of a table whose first cell starts with `start`.
std::string row(const std::string& text, const std::string& start)
{
    for (const std::string& line : lines(text))
        if (line.starts_with("| `" + start))
            return line;
    FAIL("docs/dbus-api.md has no row for " << start);
    return {};
}

// The values a row's last cells name: its `backticked` words of lower-case letters and
// hyphens, but for the names of the member's own arguments.
std::set<std::string> values(const std::string& line, const std::set<std::string>& arguments = {})
{
    std::set<std::string> out;
    const std::string cells = line.substr(line.find('|', 2));
    const std::regex word("`([a-z][a-z-]*)`");
    for (std::sregex_iterator it(cells.begin(), cells.end(), word), end; it != end; ++it)
        if (!arguments.contains((*it)[1]))
            out.insert((*it)[1]);
    return out;
}

template <typename Enum>
std::set<std::string> all(std::initializer_list<Enum> values)
{
    std::set<std::string> out;
    for (Enum v : values)
        out.insert(std::string(to_string(v)));
    return out;
}

} // namespace

TEST_CASE("the values docs/dbus-api.md gives properties and signal arguments are those sent")
{
    const std::string docs = source_file("docs/dbus-api.md");
    const std::string manager = section(docs, "## org.livepatchd.LivePatch1.Manager");
    const std::string properties = section(manager, "### Properties");
    const std::string signals = section(manager, "### Signals");
    const std::string patch = section(docs, "## org.livepatchd.LivePatch1.Patch");

    CHECK(text(values(row(properties, "State`"))) ==
          text(all({ServiceState::idle, ServiceState::transitioning, ServiceState::stalled,
                    ServiceState::error})));
    CHECK(text(values(row(patch, "State`"))) ==
          text(all({PatchState::installed, PatchState::skipped, PatchState::applying,
                    PatchState::applied, PatchState::reverting})));
    const std::set<std::string> targets = {"patched", "unpatched"};
    CHECK(text(values(row(properties, "TransitionTarget`"))) == text(targets));
    CHECK(text(values(row(signals, "TransitionStarted("), {"patch", "target"})) == text(targets));
    CHECK(text(values(row(signals, "TaskBlocked("), {"kind", "note"})) ==
          text(all({TaskKind::user, TaskKind::kthread, TaskKind::idle})));
    CHECK(text(values(row(signals, "TaskRemediated("), {"action"})) ==
          text(all({RemedyKind::stop_continue})));
}
