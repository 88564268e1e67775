// SPDX-License-Identifier: GPL-2.0-only
//
// DesiredState and its file: round trip, order, what a crash leaves, damaged files kept aside.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>

#include "store/desired_state.hpp"
#include "temp_dir.hpp"

using namespace livepatchd;
using namespace livepatchd::test;

namespace {

const std::string boot_a = "0123456789abcdef0123456789abcdef";
const std::string boot_b = "fedcba9876543210fedcba9876543210";

DesiredState sample_state()
{
    DesiredState state;
    // Not in alphabetical order: the order is the stack order and must survive.
    state.patches.push_back({"lp_z", 1'700'000'000'000'001, boot_a, true, false});
    state.patches.push_back({"lp_a", 1'700'000'000'000'002, boot_b, false, true});
    state.patches.push_back({"lp_m", 0, "", false, false});
    state.patches[1].applied_boottime_usec = 7'000'000;
    state.patches[1].applied_oops_count = 2; // the kernel's oopses before its apply
    state.clean_shutdown_boot_id = boot_a;
    state.forced_boot_id = boot_a; // issue 18: Forced survives a restart of livepatchd
    state.forced = {"lp_b", "lp_gone"};
    state.oops_boot_id = boot_b; // the oopses the guard accounted for survive a restart
    state.oops_count = 3;
    return state;
}

DesiredStateFile open_file(const TempDir& dir)
{
    auto file = DesiredStateFile::open(dir.path);
    if (!file)
        FAIL("cannot open: " << file.error().message);
    return std::move(file).value();
}

bool contains(const std::string& text, std::string_view part)
{
    return text.find(part) != std::string::npos;
}

std::string load_error(const TempDir& dir, std::string_view text)
{
    dir.write("desired.json", text);
    auto state = open_file(dir).load();
    if (state)
        FAIL("accepted: " << text);
    return state.error().message;
}

} // namespace

TEST_CASE("no file is the empty state")
{
    TempDir dir;
    auto state = open_file(dir).load();
    REQUIRE(state);
    CHECK(*state == DesiredState{});
}

TEST_CASE("round trip keeps every field and the order")
{
    TempDir dir;
    const DesiredStateFile file = open_file(dir);
    REQUIRE(file.save(sample_state()));
    auto loaded = file.load();
    REQUIRE_MESSAGE(loaded, loaded.error().message);
    CHECK(*loaded == sample_state());
    CHECK(loaded->patches[0].name == "lp_z");
    CHECK(loaded->patches[2].name == "lp_m");

    // Readable by people: version first, one key per line.
    const std::string text = dir.read("desired.json");
    CHECK(text.starts_with("{\n  \"version\": 1,\n  \"patches\": [\n"));
    struct stat st {};
    REQUIRE(::stat(file.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);

    // Saving again replaces, leaving no temporary behind.
    DesiredState smaller = sample_state();
    smaller.erase("lp_a");
    REQUIRE(file.save(smaller));
    CHECK(*file.load() == smaller);
    int entries = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path))
        ++entries;
    CHECK(entries == 1);
}

TEST_CASE("a crash between writing and renaming loses nothing")
{
    TempDir dir;
    REQUIRE(open_file(dir).save(sample_state()));
    // What save() leaves when the system dies before rename(): a complete or partial
    // temporary beside the old file.
    DesiredState newer = sample_state();
    newer.append("lp_new");
    dir.write(".#desired.jsonAbCdEfGh", to_desired_state_json(newer));
    dir.write(".#desired.jsonPartial1", "{\"version\": 1, \"patc");

    const DesiredStateFile file = open_file(dir);
    CHECK(!dir.exists(".#desired.jsonAbCdEfGh"));
    CHECK(!dir.exists(".#desired.jsonPartial1"));
    auto loaded = file.load();
    REQUIRE(loaded);
    CHECK(*loaded == sample_state());
}

TEST_CASE("a damaged file is moved aside, named, and not lost")
{
    TempDir dir;
    const std::string damaged = "{\"version\": 1, \"patches\": [";
    const std::string message = load_error(dir, damaged);
    CHECK(message.starts_with((dir.path / "desired.json").native() + ": not JSON: "));
    CHECK(contains(message, "kept as " + (dir.path / "desired.json.corrupt").native()));
    CHECK(contains(message, "starts with no patch wanted"));
    CHECK(!dir.exists("desired.json"));
    CHECK(dir.read("desired.json.corrupt") == damaged);

    auto next = open_file(dir).load();
    REQUIRE(next);
    CHECK(next->patches.empty());
}

TEST_CASE("content errors name the key")
{
    TempDir dir;
    const std::string entry = R"({"name": "lp_a", "applied_at_usec": 0, "applied_boot_id": "",
                                 "survived_guard": false, "oops_after_apply": false})";
    CHECK(contains(load_error(dir, "[]"), "the top level is not an object"));
    CHECK(contains(load_error(dir, R"({"patches": []})"), "\"version\" is missing"));
    CHECK(contains(load_error(dir, R"({"version": 1, "patches": {}, "clean_shutdown_boot_id": ""})"),
                   "patches: not an array"));
    CHECK(contains(load_error(dir, R"({"version": 1, "clean_shutdown_boot_id": "", "patches": [)" +
                                       entry + "," + entry + "]}"),
                   "patches[1].name: lp_a is listed twice"));
    CHECK(contains(load_error(dir, R"({"version": 1, "clean_shutdown_boot_id": "", "patches": [{"name": "../x"}]})"),
                   "patches[0].name: \"../x\" is not a patch name"));
    CHECK(contains(load_error(dir, R"({"version": 1, "clean_shutdown_boot_id": "nope", "patches": []})"),
                   "clean_shutdown_boot_id: \"nope\" is not a boot id"));
    CHECK(contains(load_error(dir, R"({"version": 1, "clean_shutdown_boot_id": "", "patches": [{"name": "lp_a", "applied_at_usec": -1}]})"),
                   "patches[0].applied_at_usec: not a non-negative integer"));
}

TEST_CASE("a file from a newer livepatchd is left in place")
{
    TempDir dir;
    const std::string newer = R"({"version": 2, "patches": "elsewhere"})";
    dir.write("desired.json", newer);
    auto state = open_file(dir).load();
    REQUIRE(!state);
    CHECK(state.error().errnum == ENOTSUP);
    CHECK(contains(state.error().message, "written by a newer livepatchd (format 2"));
    CHECK(dir.read("desired.json") == newer);
    CHECK(!dir.exists("desired.json.corrupt"));
}

TEST_CASE("keys a later format adds are ignored")
{
    TempDir dir;
    dir.write("desired.json",
              R"({"version": 1, "later": true, "clean_shutdown_boot_id": "", "patches": [
                  {"name": "lp_a", "applied_at_usec": 5, "applied_boot_id": "", "survived_guard": true,
                   "oops_after_apply": false, "later": 1}]})");
    auto state = open_file(dir).load();
    REQUIRE_MESSAGE(state, state.error().message);
    REQUIRE(state->patches.size() == 1);
    CHECK(state->patches[0].applied_at_usec == 5);
}

TEST_CASE("append, find and erase keep the order")
{
    DesiredState state;
    state.append("lp_b").applied_at_usec = 7;
    state.append("lp_a");
    CHECK(&state.append("lp_b") == &state.patches[0]); // no duplicate, same entry
    CHECK(state.patches.size() == 2);
    CHECK(state.find("lp_b")->applied_at_usec == 7);
    CHECK(state.find("lp_c") == nullptr);
    CHECK(state.erase("lp_b"));
    CHECK(!state.erase("lp_b"));
    REQUIRE(state.patches.size() == 1);
    CHECK(state.patches[0].name == "lp_a");
}

TEST_CASE("a number no type can hold is a damaged file, not an exception")
{
    // nlohmann's out_of_range escaped parse_desired_state, so the daemon could not start.
    auto state = parse_desired_state(R"({"version": 1, "patches": [], "x": 1e400})", "d.json");
    REQUIRE_FALSE(state);
    CHECK(state.error().errnum == EBADMSG);
}

TEST_CASE("a malformed forced list is dropped alone: the rest of the desired state is kept")
{
    // Review of the issue-18 change: a bad "forced" (only which patches this boot forced, for
    // the Forced property) made the whole file damaged: moved aside, every wanted patch
    // forgotten, nothing applied at the next boot.
    const std::string entry = R"({"name": "lp_a", "applied_at_usec": 5, "applied_boot_id": "",
                                  "survived_guard": true, "oops_after_apply": false})";
    for (const std::string& forced :
         {R"("forced_boot_id": ")" + boot_a + R"(", "forced": [17])",
          R"("forced_boot_id": ")" + boot_a + R"(", "forced": "lp_a")",
          R"("forced_boot_id": ")" + boot_a + R"(", "forced": ["../x"])",
          std::string(R"("forced_boot_id": "nope", "forced": ["lp_a"])")}) {
        CAPTURE(forced);
        TempDir dir;
        dir.write("desired.json", R"({"version": 1, "clean_shutdown_boot_id": ")" + boot_b +
                                      R"(", )" + forced + R"(, "patches": [)" + entry + "]}");
        auto state = open_file(dir).load();
        REQUIRE_MESSAGE(state, state.error().message);
        REQUIRE(state->patches.size() == 1);
        CHECK(state->patches[0].name == "lp_a");
        CHECK(state->clean_shutdown_boot_id == boot_b);
        CHECK(state->forced.empty());
        CHECK(state->forced_boot_id.empty());
        CHECK(!dir.exists("desired.json.corrupt"));
        CHECK(dir.exists("desired.json"));
    }
}

TEST_CASE("the dropped forced list is reported: the file, the field and the fix")
{
    std::vector<std::string> warnings;
    auto state = parse_desired_state(
        R"({"version": 1, "clean_shutdown_boot_id": "", "patches": [], "forced_boot_id": ")" +
            boot_a + R"(", "forced": [17]})",
        "/var/lib/livepatchd/desired.json", &warnings);
    REQUIRE(state);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].starts_with("/var/lib/livepatchd/desired.json: forced: 17 is not a patch "
                                  "name; ignoring the fields \"forced\" and \"forced_boot_id\""));
    CHECK(contains(warnings[0], "keeping the rest of the desired state"));
    CHECK(contains(warnings[0], "To fix: nothing; the next save writes them anew"));
    // A good file warns of nothing.
    warnings.clear();
    REQUIRE(parse_desired_state(to_desired_state_json(sample_state()), "d.json", &warnings));
    CHECK(warnings.empty());
}

TEST_CASE("a malformed oops count is dropped alone, with the fields and the fix named")
{
    // Only an oops of this boot that livepatchd did not see before a restart depends on it: a
    // bad one must not lose the wanted patches.
    for (const std::string& oops : {R"("oops_boot_id": ")" + boot_a + R"(", "oops_count": -1)",
                                    R"("oops_boot_id": ")" + boot_a + R"(")",
                                    std::string(R"("oops_boot_id": "nope", "oops_count": 2)")}) {
        CAPTURE(oops);
        std::vector<std::string> warnings;
        auto state = parse_desired_state(
            R"({"version": 1, "clean_shutdown_boot_id": "", "patches": [{"name": "lp_a", )"
            R"("applied_at_usec": 5, "applied_boot_id": "", "survived_guard": true, )"
            R"("oops_after_apply": false}], )" + oops + "}",
            "/var/lib/livepatchd/desired.json", &warnings);
        REQUIRE_MESSAGE(state, state.error().message);
        CHECK(state->patches.size() == 1);
        CHECK(state->oops_boot_id.empty());
        CHECK(state->oops_count == 0);
        REQUIRE(warnings.size() == 1);
        CHECK(warnings[0].starts_with("/var/lib/livepatchd/desired.json: "));
        CHECK(contains(warnings[0].substr(0, warnings[0].find(";")), "oops_"));
        CHECK(contains(warnings[0], "ignoring the fields \"oops_boot_id\" and \"oops_count\""));
        CHECK(contains(warnings[0], "To fix: nothing; the next save writes them anew"));
    }
}
