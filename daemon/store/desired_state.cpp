// SPDX-License-Identifier: GPL-2.0-only
#include "store/desired_state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "common/journal.hpp"
#include "kernel/boot_info.hpp"
#include "store/patch_file.hpp"

namespace livepatchd {

using nlohmann::json;

namespace {

constexpr int format_version = 1;
constexpr mode_t file_mode = 0600;

// Content errors: thrown inside the parser, turned into one Error by parse_desired_state.
struct Damaged {
    std::string what;
};

const json& member(const json& object, const char* key, std::string_view where)
{
    const auto it = object.find(key);
    if (it == object.end())
        throw Damaged{std::string(where) + ": \"" + key + "\" is missing"};
    return *it;
}

std::string string_member(const json& object, const char* key, std::string_view where)
{
    const json& value = member(object, key, where);
    if (!value.is_string())
        throw Damaged{std::string(where) + "." + key + ": not a string"};
    return value.get<std::string>();
}

std::uint64_t uint_member(const json& object, const char* key, std::string_view where)
{
    const json& value = member(object, key, where);
    if (!value.is_number_unsigned())
        throw Damaged{std::string(where) + "." + key + ": not a non-negative integer"};
    return value.get<std::uint64_t>();
}

bool bool_member(const json& object, const char* key, std::string_view where)
{
    const json& value = member(object, key, where);
    if (!value.is_boolean())
        throw Damaged{std::string(where) + "." + key + ": not a boolean"};
    return value.get<bool>();
}

std::string boot_id_member(const json& object, const char* key, std::string_view where)
{
    std::string id = string_member(object, key, where);
    if (!id.empty() && !is_boot_id(id))
        throw Damaged{std::string(where) + "." + key + ": \"" + id.substr(0, 40) +
                      "\" is not a boot id"};
    return id;
}

} // namespace

std::string_view to_string(PendingAction action)
{
    switch (action) {
    case PendingAction::none: return "";
    case PendingAction::apply: return "apply";
    case PendingAction::revert: return "revert";
    }
    return "";
}

const DesiredPatch* DesiredState::find(std::string_view name) const
{
    const auto it = std::find_if(patches.begin(), patches.end(),
                                 [&](const DesiredPatch& p) { return p.name == name; });
    return it == patches.end() ? nullptr : &*it;
}

DesiredPatch* DesiredState::find(std::string_view name)
{
    return const_cast<DesiredPatch*>(std::as_const(*this).find(name));
}

DesiredPatch& DesiredState::append(std::string_view name)
{
    if (DesiredPatch* existing = find(name))
        return *existing;
    DesiredPatch patch;
    patch.name = std::string(name);
    patches.push_back(std::move(patch));
    return patches.back();
}

bool DesiredState::erase(std::string_view name)
{
    return std::erase_if(patches, [&](const DesiredPatch& p) { return p.name == name; }) > 0;
}

std::string to_desired_state_json(const DesiredState& state)
{
    // ordered_json: the keys in the order written, "version" first, for people reading it.
    using ordered_json = nlohmann::ordered_json;
    ordered_json patches = ordered_json::array();
    for (const DesiredPatch& patch : state.patches) {
        ordered_json entry{{"name", patch.name},
                           {"applied_at_usec", patch.applied_at_usec},
                           {"applied_boot_id", patch.applied_boot_id},
                           {"applied_boottime_usec", patch.applied_boottime_usec},
                           {"applied_oops_count", patch.applied_oops_count},
                           {"survived_guard", patch.survived_guard},
                           {"oops_after_apply", patch.oops_after_apply}};
        if (patch.pending != PendingAction::none)
            entry["pending"] = std::string(to_string(patch.pending));
        patches.push_back(std::move(entry));
    }
    ordered_json document{{"version", format_version},
                          {"patches", std::move(patches)},
                          {"clean_shutdown_boot_id", state.clean_shutdown_boot_id}};
    if (!state.forced.empty()) {
        document["forced_boot_id"] = state.forced_boot_id;
        document["forced"] = state.forced;
    }
    if (!state.oops_boot_id.empty()) {
        document["oops_boot_id"] = state.oops_boot_id;
        document["oops_count"] = state.oops_count;
    }
    return document.dump(2) + "\n";
}

Result<DesiredState> parse_desired_state(std::string_view text, std::string_view origin,
                                         std::vector<std::string>* warnings)
{
    json document;
    try {
        document = json::parse(text);
    } catch (const json::exception& e) {
        // parse_error, and out_of_range for a number too large for any type (406): both are
        // a damaged file, never an exception out of here (which would stop the daemon).
        return Error{EBADMSG, std::string(origin) + ": not JSON: " + e.what()};
    }
    try {
        if (!document.is_object())
            throw Damaged{"the top level is not an object"};
        const json& version = member(document, "version", "the top level");
        if (!version.is_number_unsigned())
            throw Damaged{"version: not a non-negative integer"};
        if (version.get<std::uint64_t>() > format_version)
            return Error{ENOTSUP, std::string(origin) + ": written by a newer livepatchd (format " +
                                      version.dump() + ", this one reads " +
                                      std::to_string(format_version) +
                                      "); run that version, or move the file away to start "
                                      "with no patch applied"};
        // Keys this version does not know are ignored: a later minor format may add some.
        DesiredState state;
        state.clean_shutdown_boot_id =
            boot_id_member(document, "clean_shutdown_boot_id", "the top level");
        // Added in issue 18, within format 1: optional. It only says which patches this boot
        // forced (the Forced property), so a bad one is dropped alone, with a warning: the
        // wanted patches must not be lost over it.
        if (document.contains("forced")) {
            try {
                state.forced_boot_id =
                    boot_id_member(document, "forced_boot_id", "the top level");
                const json& forced = document["forced"];
                if (!forced.is_array())
                    throw Damaged{"forced: not an array"};
                for (const json& name : forced) {
                    if (!name.is_string() || !is_valid_patch_name(name.get<std::string>()))
                        throw Damaged{"forced: " + name.dump().substr(0, 80) +
                                      " is not a patch name"};
                    state.forced.push_back(name.get<std::string>());
                }
            } catch (const Damaged& damaged) {
                state.forced.clear();
                state.forced_boot_id.clear();
                if (warnings)
                    warnings->push_back(
                        std::string(origin) + ": " + damaged.what +
                        "; ignoring the fields \"forced\" and \"forced_boot_id\" (the patches "
                        "forced in this boot: their Forced property reads false until forced "
                        "again) and keeping the rest of the desired state. To fix: nothing; "
                        "the next save writes them anew (or delete both fields by hand)");
            }
        }
        // Added later in format 1: optional. It only keeps an oops seen while livepatchd was
        // down in the same boot: a bad one is dropped alone, with a warning.
        if (document.contains("oops_boot_id")) {
            try {
                state.oops_boot_id = boot_id_member(document, "oops_boot_id", "the top level");
                state.oops_count = uint_member(document, "oops_count", "the top level");
            } catch (const Damaged& damaged) {
                state.oops_boot_id.clear();
                state.oops_count = 0;
                if (warnings)
                    warnings->push_back(
                        std::string(origin) + ": " + damaged.what +
                        "; ignoring the fields \"oops_boot_id\" and \"oops_count\" (an oops "
                        "of this boot that livepatchd did not see before it stopped is not "
                        "recorded) and keeping the rest of the desired state. To fix: nothing; "
                        "the next save writes them anew");
            }
        }
        const json& patches = member(document, "patches", "the top level");
        if (!patches.is_array())
            throw Damaged{"patches: not an array"};
        std::set<std::string, std::less<>> seen;
        for (std::size_t i = 0; i < patches.size(); ++i) {
            const std::string where = "patches[" + std::to_string(i) + "]";
            const json& entry = patches[i];
            if (!entry.is_object())
                throw Damaged{where + ": not an object"};
            DesiredPatch patch;
            patch.name = string_member(entry, "name", where);
            if (!is_valid_patch_name(patch.name))
                throw Damaged{where + ".name: \"" + patch.name.substr(0, 80) +
                              "\" is not a patch name"};
            if (!seen.insert(patch.name).second)
                throw Damaged{where + ".name: " + patch.name + " is listed twice"};
            patch.applied_at_usec = uint_member(entry, "applied_at_usec", where);
            patch.applied_boot_id = boot_id_member(entry, "applied_boot_id", where);
            patch.survived_guard = bool_member(entry, "survived_guard", where);
            patch.oops_after_apply = bool_member(entry, "oops_after_apply", where);
            // Added later in format 1: optional.
            if (entry.contains("applied_boottime_usec"))
                patch.applied_boottime_usec = uint_member(entry, "applied_boottime_usec", where);
            if (entry.contains("applied_oops_count"))
                patch.applied_oops_count = uint_member(entry, "applied_oops_count", where);
            if (entry.contains("pending")) {
                const std::string pending = string_member(entry, "pending", where);
                if (pending == "apply")
                    patch.pending = PendingAction::apply;
                else if (pending == "revert")
                    patch.pending = PendingAction::revert;
                else
                    throw Damaged{where + ".pending: \"" + pending.substr(0, 40) +
                                  "\" is not \"apply\" or \"revert\""};
            }
            state.patches.push_back(std::move(patch));
        }
        return state;
    } catch (const Damaged& damaged) {
        return Error{EBADMSG, std::string(origin) + ": " + damaged.what};
    }
}

DesiredStateFile::DesiredStateFile(std::filesystem::path directory, UniqueFd directory_fd)
    : directory_(std::move(directory)), path_(directory_ / desired_state_file_name),
      directory_fd_(std::move(directory_fd))
{
}

Result<DesiredStateFile> DesiredStateFile::open(const std::filesystem::path& state_directory)
{
    if (::mkdir(state_directory.c_str(), 0700) < 0 && errno != EEXIST)
        return Error{errno, state_directory.native() + ": cannot create the state directory: " +
                                std::strerror(errno)};
    UniqueFd fd(::open(state_directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd)
        return Error{errno, state_directory.native() + ": cannot open the state directory: " +
                                std::strerror(errno)};
    // A temporary is a save() that a crash interrupted before its rename: the file it was to
    // replace is intact, and the temporary is not trusted.
    if (auto r = remove_stale_temp_files(fd.get(), state_directory.native()); !r)
        return std::move(r).error();
    return DesiredStateFile(state_directory, std::move(fd));
}

Result<DesiredState> DesiredStateFile::load() const
{
    auto text = read_file_at(directory_fd_.get(), directory_.native(),
                             std::string(desired_state_file_name), desired_state_max_size);
    if (!text) {
        if (text.error().errnum == ENOENT)
            return DesiredState{};
        if (text.error().errnum != EFBIG)
            return std::move(text).error();
    }
    std::vector<std::string> warnings;
    Result<DesiredState> state = text ? parse_desired_state(*text, path_.native(), &warnings)
                                      : Result<DesiredState>(std::move(text).error());
    for (const std::string& warning : warnings)
        journal::log(LogLevel::warning, warning);
    if (state || state.error().errnum == ENOTSUP)
        return state;

    const std::string aside = std::string(desired_state_file_name) + std::string(corrupt_suffix);
    if (::renameat(directory_fd_.get(), std::string(desired_state_file_name).c_str(),
                   directory_fd_.get(), aside.c_str()) < 0)
        return Error{errno, state.error().message + "; moving it aside to " + aside +
                                " failed too: " + std::strerror(errno)};
    (void)sync_directory(directory_fd_.get(), directory_.native());
    return Error{EBADMSG, state.error().message + "; kept as " +
                              (directory_ / aside).native() +
                              " for inspection, and livepatchd starts with no patch wanted"};
}

Result<void> DesiredStateFile::save(const DesiredState& state) const
{
    return write_file_atomically(directory_fd_.get(), directory_.native(),
                                 std::string(desired_state_file_name),
                                 to_desired_state_json(state), file_mode);
}

} // namespace livepatchd
