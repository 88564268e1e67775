// SPDX-License-Identifier: GPL-2.0-only
//
// livepatchctl: the command-line client of livepatchd, over its D-Bus API (docs/dbus-api.md).
// Every command reads or calls org.livepatchd.LivePatch1 on the system bus; --json prints the
// same field names as the D-Bus properties. apply and revert wait until the transition ends
// (showing progress on a terminal) unless --no-block is given.
#include <fcntl.h>
#include <unistd.h>
#include <libsmartcols.h>
#include <systemd/sd-bus.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <map>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"
#include "dbus/bus_errors.hpp"
#include "dbus/bus_ptr.hpp"

using namespace livepatchd;
using nlohmann::json;
using livepatchd::dbus::MessagePtr;

namespace {

constexpr std::string_view program = "livepatchctl";
constexpr const char* service = "org.livepatchd.LivePatch1";
constexpr const char* manager_path = "/org/livepatchd/LivePatch1";
constexpr const char* manager_interface = "org.livepatchd.LivePatch1.Manager";
constexpr const char* patch_interface = "org.livepatchd.LivePatch1.Patch";

// A failure to report: "livepatchctl: <message>", exit status 1. error_name is the D-Bus error
// the service answered with (org.livepatchd.LivePatch1.Error.NotInstalled, ...), if any: with
// --json it is printed too, so that scripts branch on the name rather than parse the message.
struct Failure {
    std::string message;
    std::string error_name;
};

// --json was given: failures the service named are also printed as JSON on stdout.
bool json_output = false;

struct BusError {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    ~BusError() { sd_bus_error_free(&error); }
};

[[noreturn]] void fail(std::string message)
{
    throw Failure{std::move(message), {}};
}

// One incoming message dispatched (its match callbacks run): true if there was one.
bool process_bus_message(sd_bus* bus)
{
    const int r = sd_bus_process(bus, nullptr);
    if (r < 0)
        fail(std::string("cannot read from the bus: ") + std::strerror(-r) +
             "; is D-Bus still running? See: systemctl status dbus");
    return r > 0;
}

// Until a message arrives or usec pass (UINT64_MAX: no limit).
void wait_on_bus(sd_bus* bus, std::uint64_t usec)
{
    const int r = sd_bus_wait(bus, usec);
    if (r < 0 && r != -EINTR)
        fail(std::string("cannot wait on the bus: ") + std::strerror(-r) +
             "; is D-Bus still running? See: systemctl status dbus");
}

// The service's words for a failed call; for a bus that is not there, what to do.
[[noreturn]] void fail_call(std::string_view what, int r, const sd_bus_error& error)
{
    if (sd_bus_error_is_set(&error)) {
        if (sd_bus_error_has_name(&error, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
            sd_bus_error_has_name(&error, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
            fail("livepatchd is not running (start it with: systemctl start livepatchd)");
        std::string message = error.message ? error.message : error.name;
        if (sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))
            message += "; run it as root (sudo livepatchctl ...), or have an administrator "
                       "grant you the polkit action (docs/dbus-api.md)";
        throw Failure{std::move(message), error.name};
    }
    fail(std::string(what) + " failed: " + std::strerror(-r) +
         "; is livepatchd running? See: systemctl status livepatchd; journalctl -u livepatchd");
}

// A reply livepatchctl cannot read: the two programs do not speak the same API.
std::string reply_failure(std::string_view what, int r)
{
    return "cannot read " + std::string(what) + ": " + std::strerror(-r) +
           "; livepatchctl and livepatchd must be of the same version (livepatchctl "
           "--version; systemctl restart livepatchd after an upgrade)";
}

struct Patch {
    std::string name;
    std::string path;
    std::string state;
    bool enabled = false;
    bool transition = false;
    bool replace = false;
    std::uint32_t stack_order = 0;
    std::uint64_t installed_at = 0;
    std::uint64_t applied_at = 0;
    std::string skip_reason;
    std::string sha256; // of the stored module: which build this is
    // (object, count of its non-exported symbols the patch references)
    std::vector<std::pair<std::string, std::uint32_t>> livepatch_objects;
};

struct ManagerState {
    std::string kernel_release;
    std::string shim_version;
    std::string state;
    std::string transition_patch;
    std::string transition_target;
    std::uint64_t transition_started = 0;
    std::uint32_t pending_tasks = 0;
};

struct PendingTaskRow {
    std::uint32_t tid = 0, tgid = 0;
    std::string comm, reason, function, kind, state, unit;
    std::uint64_t blocked_usec = 0;
    std::vector<std::string> actions;
    std::vector<std::string> stack;
};

class Client {
public:
    Client()
    {
        sd_bus* bus = nullptr;
        const int r = sd_bus_open_system(&bus);
        if (r < 0)
            fail(system_bus_failure(-r, std::getenv("DBUS_SYSTEM_BUS_ADDRESS")));
        bus_.reset(bus);
        // polkit may ask for a password on a terminal (root is never asked).
        (void)sd_bus_set_allow_interactive_authorization(bus, isatty(STDIN_FILENO));
    }

    std::string string_property(const char* path, const char* interface, const char* name)
    {
        BusError e;
        char* value = nullptr;
        const int r =
            sd_bus_get_property_string(bus_.get(), service, path, interface, name, &e.error, &value);
        if (r < 0)
            fail_call(std::string("reading ") + name, r, e.error);
        std::string text(value);
        std::free(value);
        return text;
    }

    // A patch's LivepatchObjects, a(su).
    std::vector<std::pair<std::string, std::uint32_t>> livepatch_objects(const char* path)
    {
        BusError e;
        sd_bus_message* raw = nullptr;
        int r = sd_bus_get_property(bus_.get(), service, path, patch_interface,
                                    "LivepatchObjects", &e.error, &raw, "a(su)");
        if (r < 0)
            fail_call("reading LivepatchObjects", r, e.error);
        MessagePtr reply(raw);
        std::vector<std::pair<std::string, std::uint32_t>> objects;
        r = sd_bus_message_enter_container(reply.get(), 'a', "(su)");
        while (r > 0) {
            const char* object = nullptr;
            std::uint32_t symbols = 0;
            r = sd_bus_message_read(reply.get(), "(su)", &object, &symbols);
            if (r > 0)
                objects.emplace_back(object, symbols);
        }
        if (r < 0)
            fail(reply_failure("LivepatchObjects", r));
        return objects;
    }

    // A patch's Forced, or nullopt when it cannot be read (the patch went meanwhile).
    std::optional<bool> forced(const char* path)
    {
        int value = 0;
        if (sd_bus_get_property_trivial(bus_.get(), service, path, patch_interface, "Forced",
                                        nullptr, 'b', &value) < 0)
            return std::nullopt;
        return value != 0;
    }

    template <typename T>
    T trivial_property(const char* name, char type)
    {
        BusError e;
        T value{};
        const int r = sd_bus_get_property_trivial(bus_.get(), service, manager_path,
                                                  manager_interface, name, &e.error, type, &value);
        if (r < 0)
            fail_call(std::string("reading ") + name, r, e.error);
        return value;
    }

    ManagerState manager()
    {
        ManagerState m;
        m.kernel_release = string_property(manager_path, manager_interface, "KernelRelease");
        m.shim_version = string_property(manager_path, manager_interface, "ShimVersion");
        m.state = string_property(manager_path, manager_interface, "State");
        m.transition_patch = string_property(manager_path, manager_interface, "TransitionPatch");
        m.transition_target = string_property(manager_path, manager_interface, "TransitionTarget");
        m.transition_started = trivial_property<std::uint64_t>("TransitionStartedUSec", 't');
        m.pending_tasks = trivial_property<std::uint32_t>("PendingTasks", 'u');
        return m;
    }

    std::vector<Patch> patches()
    {
        MessagePtr reply = call("ListPatches", nullptr);
        std::vector<Patch> list;
        int r = sd_bus_message_enter_container(reply.get(), 'a', "(sosbbbutt)");
        for (; r > 0;) {
            const char *name, *path, *state;
            int enabled, transition, replace;
            Patch p;
            r = sd_bus_message_read(reply.get(), "(sosbbbutt)", &name, &path, &state, &enabled,
                                    &transition, &replace, &p.stack_order, &p.installed_at,
                                    &p.applied_at);
            if (r <= 0)
                break;
            p.name = name;
            p.path = path;
            p.state = state;
            p.enabled = enabled;
            p.transition = transition;
            p.replace = replace;
            if (p.state == "skipped")
                p.skip_reason = string_property(path, patch_interface, "SkipReason");
            p.sha256 = string_property(path, patch_interface, "SHA256");
            p.livepatch_objects = livepatch_objects(path);
            list.push_back(std::move(p));
        }
        if (r < 0)
            fail(reply_failure("ListPatches' reply", r));
        return list;
    }

    std::vector<PendingTaskRow> pending_tasks()
    {
        // livepatchd answers a slice at a time, between its other work (its /proc look at each
        // task costs about 0.1-0.3 ms, more on a loaded or emulated machine): tens of thousands
        // of pending tasks take longer than the bus's default 25 s.
        constexpr std::uint64_t listing_timeout_usec = 300ULL * 1000 * 1000;
        MessagePtr reply = call("ListPendingTasks", nullptr, listing_timeout_usec);
        std::vector<PendingTaskRow> rows;
        sd_bus_message* m = reply.get();
        int r = sd_bus_message_enter_container(m, 'a', "(uusssssstasas)");
        while (r > 0) {
            r = sd_bus_message_enter_container(m, 'r', "uusssssstasas");
            if (r <= 0)
                break;
            PendingTaskRow row;
            const char *comm, *reason, *function, *kind, *state, *unit;
            r = sd_bus_message_read(m, "uusssssst", &row.tid, &row.tgid, &comm, &reason,
                                    &function, &kind, &state, &unit, &row.blocked_usec);
            if (r < 0)
                break;
            row.comm = comm;
            row.reason = reason;
            row.function = function;
            row.kind = kind;
            row.state = state;
            row.unit = unit;
            for (auto* list : {&row.actions, &row.stack}) {
                r = sd_bus_message_enter_container(m, 'a', "s");
                const char* item = nullptr;
                while (r > 0 && (r = sd_bus_message_read(m, "s", &item)) > 0)
                    list->emplace_back(item);
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                    break;
            }
            if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                break;
            rows.push_back(std::move(row));
            r = 1;
        }
        if (r < 0)
            fail(reply_failure("ListPendingTasks' reply", r));
        return rows;
    }

    // GetTaskStacks (behind polkit); on failure, why, in problem.
    std::map<std::uint32_t, std::vector<std::string>> task_stacks(std::string& problem)
    {
        std::map<std::uint32_t, std::vector<std::string>> stacks;
        BusError e;
        sd_bus_message* raw = nullptr;
        int r = sd_bus_call_method(bus_.get(), service, manager_path, manager_interface,
                                   "GetTaskStacks", &e.error, &raw, "");
        if (r < 0) {
            problem = sd_bus_error_is_set(&e.error) && e.error.message ? e.error.message
                                                                       : std::strerror(-r);
            return stacks;
        }
        MessagePtr reply(raw);
        sd_bus_message* m = reply.get();
        r = sd_bus_message_enter_container(m, 'a', "(uas)");
        while (r > 0 && (r = sd_bus_message_enter_container(m, 'r', "uas")) > 0) {
            std::uint32_t tid = 0;
            if ((r = sd_bus_message_read(m, "u", &tid)) < 0)
                break;
            std::vector<std::string>& frames = stacks[tid];
            r = sd_bus_message_enter_container(m, 'a', "s");
            const char* frame = nullptr;
            while (r > 0 && (r = sd_bus_message_read(m, "s", &frame)) > 0)
                frames.emplace_back(frame);
            if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0 ||
                (r = sd_bus_message_exit_container(m)) < 0)
                break;
            r = 1;
        }
        if (r < 0)
            problem = std::string("cannot read GetTaskStacks' reply: ") + std::strerror(-r);
        return stacks;
    }

    // Calls a Manager method with at most one string argument, within timeout_usec (0: the
    // bus's default, 25 s).
    MessagePtr call(const char* method, const char* argument, std::uint64_t timeout_usec = 0)
    {
        BusError e;
        sd_bus_message* raw = nullptr;
        int r = sd_bus_message_new_method_call(bus_.get(), &raw, service, manager_path,
                                               manager_interface, method);
        MessagePtr message(raw);
        if (r >= 0 && argument)
            r = sd_bus_message_append(message.get(), "s", argument);
        sd_bus_message* reply = nullptr;
        if (r >= 0)
            r = sd_bus_call(bus_.get(), message.get(), timeout_usec, &e.error, &reply);
        if (r < 0)
            fail_call(method, r, e.error);
        return MessagePtr(reply);
    }

    sd_bus* bus() const { return bus_.get(); }

private:
    dbus::BusPtr bus_;
};

json patch_json(const Patch& p)
{
    json j = {{"Name", p.name},         {"State", p.state},
              {"Enabled", p.enabled},   {"Transition", p.transition},
              {"Replace", p.replace},   {"StackOrder", p.stack_order},
              {"InstalledAt", p.installed_at}, {"AppliedAt", p.applied_at}};
    if (!p.skip_reason.empty())
        j["SkipReason"] = p.skip_reason;
    j["SHA256"] = p.sha256;
    j["LivepatchObjects"] = json::array();
    for (const auto& [object, symbols] : p.livepatch_objects)
        j["LivepatchObjects"].push_back({{"Object", object}, {"Symbols", symbols}});
    return j;
}

json manager_json(const ManagerState& m)
{
    return {{"KernelRelease", m.kernel_release},
            {"ShimVersion", m.shim_version},
            {"State", m.state},
            {"TransitionPatch", m.transition_patch},
            {"TransitionTarget", m.transition_target},
            {"TransitionStartedUSec", m.transition_started},
            {"PendingTasks", m.pending_tasks}};
}

void print_json(const json& j)
{
    std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

// Colours only on a terminal, and never with NO_COLOR set.
bool use_colour()
{
    static const bool colour = isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
    return colour;
}

std::string coloured(std::string_view text, std::string_view state)
{
    if (!use_colour())
        return std::string(text);
    const char* code = state == "applied" || state == "idle"                ? "\033[32m"
                       : state == "skipped" || state == "stalled" ||
                               state == "error"                             ? "\033[31m"
                       : state == "applying" || state == "reverting" ||
                               state == "transitioning"                     ? "\033[33m"
                                                                            : "";
    return *code ? std::string(code) + std::string(text) + "\033[0m" : std::string(text);
}

// A libsmartcols table for the layout. Every cell goes through printable() (control
// characters and invalid UTF-8 as \xNN), so nothing a task's owner put in a name reaches the
// terminal raw; libsmartcols' own encoding is off so that it does not escape the escapes
// again (it writes a backslash before 'x' as \x5c).
struct Table {
    Table() : table(scols_new_table())
    {
        if (!table)
            fail("out of memory");
        scols_table_enable_colors(table, use_colour());
        scols_table_enable_noencoding(table, 1);
    }
    ~Table() { scols_unref_table(table); }
    Table(const Table&) = delete;
    Table& operator=(const Table&) = delete;

    void column(const char* name, double width, int flags = 0)
    {
        if (!scols_table_new_column(table, name, width, flags))
            fail("out of memory");
    }
    libscols_line* line()
    {
        libscols_line* l = scols_table_new_line(table, nullptr);
        if (!l)
            fail("out of memory");
        return l;
    }
    static void set(libscols_line* l, std::size_t column, const std::string& text)
    {
        if (scols_line_set_data(l, column, printable(text).c_str()) < 0)
            fail("out of memory");
    }
    void print()
    {
        scols_print_table(table);
        std::fflush(stdout);
    }
    libscols_table* table;
};

const char* state_colour(std::string_view state)
{
    return state == "applied" || state == "idle"                ? "green"
           : state == "applying" || state == "reverting" ||
                   state == "transitioning"                     ? "yellow"
           : state == "skipped" || state == "stalled" || state == "error" ? "red"
                                                                          : nullptr;
}

void print_patch_table(const std::vector<Patch>& patches)
{
    if (patches.empty()) {
        std::printf("No patches installed.\n");
        return;
    }
    Table t;
    t.column("PATCH", 0.3);
    t.column("STATE", 0.1);
    t.column("STACK", 0.05, SCOLS_FL_RIGHT);
    // The objects whose non-exported symbols a patch uses, and how many (docs/klp-convert.md).
    t.column("STATIC SYMBOLS", 0.15, SCOLS_FL_WRAP);
    t.column("NOTE", 0.4, SCOLS_FL_WRAP);
    for (const Patch& p : patches) {
        libscols_line* l = t.line();
        Table::set(l, 0, p.name);
        Table::set(l, 1, p.state);
        if (const char* colour = state_colour(p.state))
            (void)scols_cell_set_color(scols_line_get_cell(l, 1), colour);
        Table::set(l, 2, p.stack_order ? std::to_string(p.stack_order) : "-");
        std::string needs;
        for (const auto& [object, symbols] : p.livepatch_objects)
            needs += (needs.empty() ? "" : ", ") + object + " " + std::to_string(symbols);
        Table::set(l, 3, needs.empty() ? "-" : needs);
        Table::set(l, 4, p.skip_reason);
    }
    t.print();
}

int cmd_status(Client& client, const CtlOptions& options)
{
    const ManagerState m = client.manager();
    const std::vector<Patch> patches = client.patches();
    if (options.json) {
        json j = manager_json(m);
        j["Patches"] = json::array();
        for (const Patch& p : patches)
            j["Patches"].push_back(patch_json(p));
        print_json(j);
        return exit_status::success;
    }
    // Nothing from the bus reaches the terminal unescaped.
    std::printf("State:   %s\n", coloured(printable(m.state), m.state).c_str());
    if (!m.transition_patch.empty())
        std::printf("Moving:  %s to %s, %u task(s) left\n", printable(m.transition_patch).c_str(),
                    printable(m.transition_target).c_str(), m.pending_tasks);
    std::printf("Kernel:  %s\nlpshim:  %s\n\n", printable(m.kernel_release).c_str(),
                m.shim_version.empty() ? "not loaded" : printable(m.shim_version).c_str());
    print_patch_table(patches);
    return exit_status::success;
}

int cmd_list(Client& client, const CtlOptions& options)
{
    const std::vector<Patch> patches = client.patches();
    if (options.json) {
        json j = json::array();
        for (const Patch& p : patches)
            j.push_back(patch_json(p));
        print_json(j);
    } else {
        print_patch_table(patches);
    }
    return exit_status::success;
}

int cmd_blocking(Client& client, const CtlOptions& options)
{
    const auto rows = client.pending_tasks();
    if (options.json) {
        json j = json::array();
        for (const auto& r : rows)
            j.push_back({{"Tid", r.tid}, {"Tgid", r.tgid}, {"Comm", r.comm},
                         {"Reason", r.reason}, {"Function", r.function}, {"Kind", r.kind},
                         {"State", r.state}, {"Unit", r.unit},
                         {"BlockedUSec", r.blocked_usec}, {"Actions", r.actions},
                         {"Stack", r.stack}});
        print_json(j);
        return exit_status::success;
    }
    if (rows.empty()) {
        std::printf("No task blocks a transition.\n");
        return exit_status::success;
    }
    // -v shows stacks too: root gets them with the list, anyone else asks (polkit).
    std::map<std::uint32_t, std::vector<std::string>> stacks;
    std::string stacks_problem;
    if (options.verbose && geteuid() != 0)
        stacks = client.task_stacks(stacks_problem);
    const auto new_table = [](Table& t) {
        t.column("TID", 0.05, SCOLS_FL_RIGHT);
        t.column("TGID", 0.05, SCOLS_FL_RIGHT);
        t.column("COMMAND", 0.15);
        t.column("KIND", 0.05);
        t.column("REASON", 0.15);
        t.column("FOR", 0.05, SCOLS_FL_RIGHT);
        t.column("FUNCTION", 0.3);
    };
    const auto add_row = [](Table& t, const PendingTaskRow& r) {
        char blocked[32];
        std::snprintf(blocked, sizeof(blocked), "%.1fs",
                      static_cast<double>(r.blocked_usec) / 1e6);
        libscols_line* l = t.line();
        Table::set(l, 0, std::to_string(r.tid));
        Table::set(l, 1, std::to_string(r.tgid));
        Table::set(l, 2, r.comm);
        Table::set(l, 3, r.kind);
        Table::set(l, 4, r.reason);
        Table::set(l, 5, blocked);
        Table::set(l, 6, r.function);
    };
    if (!options.verbose) {
        Table t;
        new_table(t);
        for (const auto& r : rows)
            add_row(t, r);
        t.print();
        return exit_status::success;
    }
    // -v: each task's row, then its details.
    for (const auto& r : rows) {
        Table t;
        new_table(t);
        if (&r != &rows.front())
            scols_table_enable_noheadings(t.table, 1);
        add_row(t, r);
        t.print();
        std::printf("         state %s%s%s\n", printable(r.state).c_str(),
                    r.unit.empty() ? "" : ", unit ", printable(r.unit).c_str());
        for (const std::string& action : r.actions)
            std::printf("         %s\n", printable(action).c_str());
        const auto it = stacks.find(r.tid);
        for (const std::string& frame : it != stacks.end() ? it->second : r.stack)
            std::printf("           %s\n", printable(frame).c_str());
    }
    if (!stacks_problem.empty())
        std::printf("(kernel stacks not shown: %s)\n", printable(stacks_problem).c_str());
    return exit_status::success;
}

const Patch* find(const std::vector<Patch>& patches, std::string_view name)
{
    for (const Patch& p : patches)
        if (p.name == name)
            return &p;
    return nullptr;
}

// Waits until the patch is no longer in a transition, woken by the service's signals
// (PatchStateChanged, TransitionFinished) rather than by polling; progress on a terminal.
// Returns its state then ("installed" when it is gone from the kernel, "gone" altogether).
// The matches are added before the call that starts the transition (Waiter's constructor), so
// that no signal is missed between the call and the wait.
class Waiter {
public:
    explicit Waiter(Client& client) : client_(client)
    {
        for (const char* member : {"PatchStateChanged", "TransitionFinished"}) {
            sd_bus_slot* slot = nullptr;
            const int r = sd_bus_match_signal(client.bus(), &slot, service, manager_path,
                                              manager_interface, member, on_signal, this);
            if (r < 0)
                fail(std::string("cannot watch the service's signals: ") + std::strerror(-r) +
                     "; use --no-block and follow the patch with 'livepatchctl watch'");
            slots_.emplace_back(slot);
        }
    }

    std::string wait(std::string_view name)
    {
        const bool tty = isatty(STDERR_FILENO);
        const auto start = std::chrono::steady_clock::now();
        for (;;) {
            const std::vector<Patch> patches = client_.patches();
            const Patch* p = find(patches, name);
            if (!p)
                return "gone";
            if (p->state != "applying" && p->state != "reverting") {
                if (tty)
                    std::fprintf(stderr, "\r\033[K");
                return p->state;
            }
            if (tty) {
                const double secs = std::chrono::duration<double>(
                                        std::chrono::steady_clock::now() - start)
                                        .count();
                std::fprintf(stderr, "\r\033[K%s %s: %u task(s) left, %.1f s",
                             p->state.c_str(), printable(name).c_str(),
                             client_.manager().pending_tasks, secs);
            }
            // Until a signal arrives; on a terminal, the progress line every half second.
            // The service going away shows in the next look, every 5 s at the latest.
            signalled_ = false;
            const auto deadline = std::chrono::steady_clock::now() +
                                  (tty ? std::chrono::milliseconds(500) : std::chrono::seconds(5));
            while (!signalled_ && std::chrono::steady_clock::now() < deadline) {
                if (process_bus_message(client_.bus()))
                    continue;
                const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                    deadline - std::chrono::steady_clock::now());
                wait_on_bus(client_.bus(),
                            left.count() > 0 ? static_cast<std::uint64_t>(left.count()) : 0);
            }
        }
    }

private:
    static int on_signal(sd_bus_message*, void* userdata, sd_bus_error*) noexcept
    {
        static_cast<Waiter*>(userdata)->signalled_ = true;
        return 0;
    }

    Client& client_;
    std::vector<dbus::SlotPtr> slots_;
    bool signalled_ = false;
};

int cmd_apply_or_revert(Client& client, const CtlOptions& options, bool apply)
{
    const std::string& name = options.arguments.front();
    std::optional<Waiter> waiter;
    if (!options.no_block)
        waiter.emplace(client);
    client.call(apply ? "Apply" : "Revert", name.c_str());
    if (options.no_block)
        return exit_status::success;
    const std::string state = waiter->wait(name);
    const bool done = apply ? state == "applied" : state != "applied" && state != "applying";
    if (options.json)
        print_json({{"Name", name}, {"State", state}});
    else if (done)
        std::printf("%s: %s\n", name.c_str(), apply ? "applied" : "reverted");
    if (!done)
        fail(name + " ended " + state +
             (apply ? " (its transition was reversed: see journalctl -u livepatchd)"
                    : " (its revert was reversed, by transition.on_stall: revert or by hand: see "
                      "journalctl -u livepatchd and livepatchctl blocking)"));
    return exit_status::success;
}

int cmd_install(Client& client, const CtlOptions& options)
{
    // The file is opened here, with our own rights, and livepatchd reads what we pass: it
    // never opens a path a caller names (docs/dbus-api.md, Install).
    const std::string& path = options.arguments.front();
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd)
        fail("cannot install '" + path + "': " + std::strerror(errno) +
             "; livepatchctl opens the file with your own rights: check the path, and that you "
             "may read the file and every directory above it (or run it with sudo)");
    BusError e;
    sd_bus_message* raw = nullptr;
    const int r = sd_bus_call_method(client.bus(), service, manager_path, manager_interface,
                                     "Install", &e.error, &raw, "h", fd.get());
    if (r < 0)
        fail_call("Install", r, e.error);
    MessagePtr reply(raw);
    const char *name = nullptr, *object = nullptr;
    if (sd_bus_message_read(reply.get(), "so", &name, &object) < 0)
        fail(reply_failure("Install's reply", -EBADMSG));
    if (options.json)
        print_json({{"Name", name}, {"Path", object}});
    else
        std::printf("Installed %s (apply it with: livepatchctl apply %s)\n", name, name);
    return exit_status::success;
}


int cmd_remove(Client& client, const CtlOptions& options)
{
    const std::string& name = options.arguments.front();
    // Right after a revert lpshim holds the patch's module a moment longer, and Remove answers
    // StillApplied until livepatchd has unloaded it: a patch that is only installed by then
    // is tried again, for at most 10 s. A forced one's module stays until the next boot.
    for (int tries = 0;; ++tries) {
        BusError e;
        sd_bus_message* reply = nullptr;
        const int r = sd_bus_call_method(client.bus(), service, manager_path, manager_interface,
                                         "Remove", &e.error, &reply, "s", name.c_str());
        MessagePtr owned(reply);
        if (r >= 0)
            break;
        const bool held = e.error.name && std::string_view(e.error.name) ==
                                              std::string(dbus::error_prefix) + "StillApplied";
        const auto patches = tries < 100 && held ? client.patches() : std::vector<Patch>{};
        if (!std::ranges::any_of(patches, [&](const Patch& p) {
                return p.name == name && p.state == "installed" &&
                       client.forced(p.path.c_str()) == false;
            }))
            fail_call("Remove", r, e.error);
        ::usleep(100'000);
    }
    if (!options.json)
        std::printf("Removed %s\n", name.c_str());
    return exit_status::success;
}

// 0: every wanted patch applied and no transition; 3: a transition is under way; 4: a wanted
// patch is not applied (skipped at boot); 5: the desired state could not be saved.
int cmd_check(Client& client, const CtlOptions& options)
{
    const ManagerState m = client.manager();
    std::vector<std::pair<std::string, std::string>> skipped;
    for (const Patch& p : client.patches())
        if (p.state == "skipped")
            skipped.emplace_back(p.name, p.skip_reason);
    const CheckReport report =
        check_report(m.state, m.transition_patch, m.transition_target, skipped);
    if (options.json)
        print_json({{"Ok", report.status == 0}, {"State", m.state}, {"Problems", report.problems}});
    else if (report.problems.empty())
        std::printf("OK: every wanted patch is applied\n");
    else
        for (const std::string& p : report.problems)
            std::printf("%s\n", printable(p).c_str());
    return report.status;
}

// watch: the service's signals as they come (sd-bus matches, no polling), one line each, and
// the state line whenever the transition properties change. Runs until interrupted.
class Watch {
public:
    Watch(Client& client, bool json) : client_(client), json_(json)
    {
        add(sd_bus_match_signal(client.bus(), nullptr, service, manager_path, manager_interface,
                                nullptr, on_signal, this));
        add(sd_bus_match_signal(client.bus(), nullptr, service, manager_path,
                                "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                on_properties, this));
        // The service going away (and coming back) shows too.
        add(sd_bus_match_signal(client.bus(), nullptr, "org.freedesktop.DBus",
                                "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                "NameOwnerChanged", on_owner, this));
    }

    [[noreturn]] void run()
    {
        show_state();
        for (;;) {
            if (!process_bus_message(client_.bus()))
                wait_on_bus(client_.bus(), UINT64_MAX);
        }
    }

private:
    void add(int r)
    {
        if (r < 0)
            fail(std::string("cannot watch the service's signals: ") + std::strerror(-r) +
                 "; the bus refused the match (too many for this connection?)");
    }

    void print(const std::string& line, const json& j)
    {
        if (json_)
            std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
        else
            std::printf("%s\n", printable(line).c_str());
        std::fflush(stdout);
    }

    void show_state()
    {
        const ManagerState m = client_.manager();
        std::string line = m.state;
        if (!m.transition_patch.empty())
            line += ": " + m.transition_patch + " to " + m.transition_target + ", " +
                    std::to_string(m.pending_tasks) + " task(s) left";
        if (line == last_state_)
            return;
        last_state_ = line;
        json j = manager_json(m);
        j["Signal"] = "PropertiesChanged";
        print(line, j);
    }

    static std::string seconds(std::uint64_t usec)
    {
        char text[32];
        std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(usec) / 1e6);
        return text;
    }

    void signal(sd_bus_message* m)
    {
        const std::string member = sd_bus_message_get_member(m);
        const char *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
        std::uint32_t tid = 0, tgid = 0;
        std::uint64_t usec = 0;
        json j{{"Signal", member}};
        std::string line;
        if (member == "TransitionStarted" && sd_bus_message_read(m, "ss", &a, &b) > 0) {
            j.update({{"Patch", a}, {"Target", b}});
            line = std::string(a) + ": transition to " + b + " started";
        } else if (member == "TransitionFinished" &&
                   sd_bus_message_read(m, "ssst", &a, &b, &c, &usec) > 0) {
            j.update({{"Patch", a}, {"Target", b}, {"Outcome", c}, {"DurationUSec", usec}});
            line = std::string(a) + ": transition to " + b + " " + c + " after " + seconds(usec);
        } else if (member == "TransitionStalled" && sd_bus_message_read(m, "sst", &a, &b, &usec) > 0) {
            j.update({{"Patch", a}, {"Action", b}, {"ElapsedUSec", usec}});
            line = std::string(a) + ": transition stalled after " + seconds(usec) +
                   "; livepatchd's action: " + b + " (see: livepatchctl blocking)";
        } else if (member == "PatchStateChanged" && sd_bus_message_read(m, "ss", &a, &b) > 0) {
            j.update({{"Patch", a}, {"State", b}});
            line = std::string(a) + ": " + b;
        } else if (member == "TaskBlocked" &&
                   sd_bus_message_read(m, "uussss", &tid, &tgid, &a, &b, &c, &d) > 0) {
            j.update({{"TID", tid}, {"TGID", tgid}, {"Comm", a}, {"Kind", b}, {"Function", c},
                      {"Note", d}});
            line = "task " + std::to_string(tid) + " (" + a + ", " + b +
                   ") blocks the transition in " + (*c ? c : "?") + ": " + d;
        } else if (member == "TaskRemediated" &&
                   sd_bus_message_read(m, "uuss", &tid, &tgid, &a, &b) > 0) {
            j.update({{"TID", tid}, {"TGID", tgid}, {"Action", a}, {"Comm", b}});
            line = "task " + std::to_string(tid) + " (" + b + "): " + a;
        } else {
            return; // a signal this livepatchctl does not know
        }
        print(line, j);
    }

    static int on_signal(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept
    {
        try {
            static_cast<Watch*>(userdata)->signal(m);
        } catch (const Failure& f) {
            std::fprintf(stderr, "%s: %s\n", program.data(), f.message.c_str());
        } catch (...) {
        }
        return 0;
    }

    static int on_properties(sd_bus_message*, void* userdata, sd_bus_error*) noexcept
    {
        try {
            static_cast<Watch*>(userdata)->show_state();
        } catch (const Failure& f) {
            std::fprintf(stderr, "%s: %s\n", program.data(), f.message.c_str());
        } catch (...) {
        }
        return 0;
    }

    static int on_owner(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept
    {
        try {
            const char *name = nullptr, *from = nullptr, *to = nullptr;
            if (sd_bus_message_read(m, "sss", &name, &from, &to) <= 0 ||
                std::string_view(name) != service)
                return 0;
            auto* self = static_cast<Watch*>(userdata);
            if (!*to) {
                self->last_state_.clear();
                self->print("livepatchd stopped", json{{"Signal", "ServiceStopped"}});
            } else {
                self->show_state();
            }
        } catch (...) {
        }
        return 0;
    }

    Client& client_;
    bool json_;
    std::string last_state_;
};

int cmd_watch(Client& client, const CtlOptions& options)
{
    Watch(client, options.json).run();
}

void print_help()
{
    std::printf("livepatchctl %s - control livepatchd, the kernel live-patching service\n"
                "\n"
                "Synopsis:\n"
                "  livepatchctl [OPTIONS] [COMMAND [ARGUMENT]]\n"
                "  livepatchctl --help | --version\n"
                "\n"
                "Commands:\n",
                PROJECT_VERSION);
    for (const CtlCommand& command : ctl_commands()) {
        const std::string usage = std::string(command.name) +
                                  (command.arguments.empty() ? "" : " ") +
                                  std::string(command.arguments);
        std::printf("  %-20s %s\n", usage.c_str(), std::string(command.summary).c_str());
    }
    std::printf(
        "  Without a command, livepatchctl runs '%s'.\n"
        "\n"
        "Options:\n"
        "      --json      Print JSON instead of text, for scripts; the field names are the\n"
        "                  D-Bus properties' (docs/dbus-api.md).\n"
        "      --no-block  apply, revert: return once the transition has started instead of\n"
        "                  waiting for it to end.\n"
        "  -v, --verbose   blocking: also show each task's state, unit, what livepatchd did\n"
        "                  about it, and its kernel stack.\n"
        "  -h, --help      Show this help and exit.\n"
        "      --version   Show the version and exit.\n"
        "\n"
        "Changing anything (install, apply, revert, remove) needs root or polkit's consent.\n"
        "Colours are used on a terminal only, and never when NO_COLOR is set.\n"
        "\n"
        "Exit status:\n"
        "  0   Success; for check: every wanted patch is applied and no transition runs.\n"
        "  1   The command failed; the reason is on standard error.\n"
        "  2   Wrong usage: an unknown option or command, or a wrong number of arguments.\n"
        "  3   check: a transition is under way.\n"
        "  4   check: a wanted patch is not applied (see 'livepatchctl status').\n"
        "  5   check: livepatchd could not save the desired state (State 'error': see\n"
        "      'journalctl -u livepatchd').\n",
        std::string(ctl_default_command).c_str());
}

int run(std::span<const std::string_view> args)
{
    auto options = parse_ctl_options(args);
    if (!options) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help' for the list of commands and options.\n",
                     program.data(), options.error().message.c_str(), program.data());
        return exit_status::usage;
    }

    switch (options->action) {
    case CtlOptions::Action::help:
        print_help();
        return exit_status::success;
    case CtlOptions::Action::version:
        std::printf("livepatchctl %s\n", PROJECT_VERSION);
        return exit_status::success;
    case CtlOptions::Action::run_command:
        break;
    }

    json_output = options->json;
    Client client;
    const std::string& c = options->command;
    if (c == "status")
        return cmd_status(client, *options);
    if (c == "list")
        return cmd_list(client, *options);
    if (c == "install")
        return cmd_install(client, *options);
    if (c == "apply" || c == "revert")
        return cmd_apply_or_revert(client, *options, c == "apply");
    if (c == "remove")
        return cmd_remove(client, *options);
    if (c == "blocking")
        return cmd_blocking(client, *options);
    if (c == "check")
        return cmd_check(client, *options);
    return cmd_watch(client, *options);
}

} // namespace

int main(int argc, char* argv[])
{
    try {
        const std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
        return run(args);
    } catch (const Failure& f) {
        std::fprintf(stderr, "%s: %s\n", program.data(), printable(f.message).c_str());
        if (json_output && !f.error_name.empty())
            print_json({{"Error", f.error_name}, {"Message", f.message}});
        return exit_status::failure;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program.data(), e.what());
        return exit_status::failure;
    }
}
