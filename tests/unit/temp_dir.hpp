// SPDX-License-Identifier: GPL-2.0-only
//
// A scratch directory for one test case, removed with everything in it at the end.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace livepatchd::test {

struct TempDir {
    std::filesystem::path path;

    TempDir()
    {
        std::string templ =
            (std::filesystem::temp_directory_path() / "livepatchd-test-XXXXXX").string();
        if (!::mkdtemp(templ.data()))
            throw std::runtime_error("mkdtemp failed");
        path = templ;
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::filesystem::path write(const std::filesystem::path& name, std::string_view bytes) const
    {
        const auto file = path / name;
        std::filesystem::create_directories(file.parent_path());
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        return file;
    }

    std::string read(const std::filesystem::path& name) const
    {
        std::ifstream in(path / name, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    bool exists(const std::filesystem::path& name) const
    {
        std::error_code ec;
        return std::filesystem::exists(std::filesystem::symlink_status(path / name, ec));
    }
};

} // namespace livepatchd::test
