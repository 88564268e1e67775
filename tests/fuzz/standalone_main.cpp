// SPDX-License-Identifier: GPL-2.0-only
//
// A main for the fuzz targets where libFuzzer is not available (GCC builds): runs the target on
// every file of the seed corpus, then on mutations of them (byte flips, insertions, cuts) for
// the given number of seconds, with a fixed seed so that a failure repeats. The unit suite
// runs each target this way for a few seconds; the clang build (-Dfuzz=true) runs the same
// targets under libFuzzer (docs/testing.md).
//   fuzz_X CORPUS_DIR [SECONDS]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char* argv[])
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR [SECONDS]\n", argv[0]);
        return 2;
    }
    const double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
    std::vector<std::string> corpus;
    for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::ostringstream bytes;
        bytes << in.rdbuf();
        corpus.push_back(bytes.str());
    }
    corpus.emplace_back();
    for (const std::string& input : corpus)
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    std::mt19937_64 random(17);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    unsigned long runs = 0;
    while (std::chrono::steady_clock::now() < end) {
        std::string input = corpus[random() % corpus.size()];
        for (int edits = 1 + static_cast<int>(random() % 8); edits > 0; --edits) {
            const std::size_t at = input.empty() ? 0 : random() % input.size();
            switch (random() % 4) {
            case 0:
                if (!input.empty())
                    input[at] = static_cast<char>(random());
                break;
            case 1:
                input.insert(input.begin() + static_cast<std::ptrdiff_t>(at),
                             static_cast<char>(random()));
                break;
            case 2:
                input.resize(at);
                break;
            default:
                if (!input.empty())
                    input[at] ^= static_cast<char>(1 << (random() % 8));
                break;
            }
        }
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
        ++runs;
    }
    std::printf("%lu inputs from %zu seeds in %.1f s: no crash\n", runs + corpus.size(),
                corpus.size(), seconds);
    return 0;
}
