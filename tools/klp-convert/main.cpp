// SPDX-License-Identifier: GPL-2.0-only
//
// lpshim-klp-convert: turns a patch module's references to symbols the target kernel does not
// export into livepatch relocations (docs/klp-convert.md).
#include <getopt.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "converter.hpp"
#include "file_io.hpp"

using namespace klpconvert;

namespace {

constexpr const char* prog = "lpshim-klp-convert";
constexpr const char* signature_magic = "~Module signature appended~\n";

void usage(std::FILE* out)
{
    std::fputs(R"(Usage: lpshim-klp-convert [OPTIONS] MODULE.ko
       lpshim-klp-convert --dump-symbols [FILE]

Turns every reference of the patch module MODULE.ko to a symbol that the target kernel does not
export into a livepatch relocation (.klp.rela sections, .klp.sym symbols), which the kernel and
lpshim resolve when the patch, or the module it patches, loads. A module that references only
exported symbols is left as it is. The target kernel is the one MODULE.ko was built for.

Options:
  -o, --output FILE       write the result to FILE (default: replace MODULE.ko)
  -k, --kdir DIR          the target kernel's build directory, whose Module.symvers lists its
                          exports (default: /lib/modules/RELEASE/build)
  -s, --symvers FILE      more exports: the Module.symvers of lpshim.ko and of any module the
                          patch links against (repeatable)
  -S, --kallsyms FILE     the symbols of vmlinux: /proc/kallsyms of a machine running the target
                          kernel, read as root, or what --dump-symbols wrote there (default:
                          /proc/kallsyms when this machine runs the target kernel)
  -m, --module NAME[=KO]  a module the patch patches or takes symbols from (repeatable); KO is
                          its .ko or .ko.xz (default: found through
                          /lib/modules/RELEASE/modules.dep)
  -m, --module KO         the same, named by its modinfo
      --modules-dir DIR   where to find modules (default: /lib/modules/RELEASE)
  -v, --verbose           say what is converted
      --dump-symbols [FILE]
                          write this machine's /proc/kallsyms, with the kernel's release and
                          version, to FILE (default: standard output); run it as root on a
                          machine that runs the target kernel
  -h, --help              this text

Exit status: 0 converted, or nothing to convert; 1 refused (MODULE.ko is left unchanged) or
failed; 2 bad usage. See docs/klp-convert.md.
)",
               out);
}

struct ModuleArg {
    std::string name;
    std::string path;
};

int report_error(const std::string& message)
{
    std::fprintf(stderr, "%s: %s\n", prog, message.c_str());
    return 1;
}

std::string read_define(const std::string& path, const std::string& name)
{
    std::ifstream in(path);
    std::string line;
    const std::string prefix = "#define " + name + " \"";
    while (std::getline(in, line))
        if (line.rfind(prefix, 0) == 0 && line.size() > prefix.size() && line.back() == '"')
            return line.substr(prefix.size(), line.size() - prefix.size() - 1);
    return {};
}

int dump_symbols(const char* path)
{
    auto data = read_file("/proc/kallsyms");
    if (!data)
        return report_error(data.error().message);
    const std::string_view text(reinterpret_cast<const char*>(data->data()), data->size());
    struct utsname u;
    uname(&u);
    // Validate before writing: a file that --kallsyms refuses is no use.
    auto table = ObjectSymbols::from_kallsyms(text, "/proc/kallsyms");
    if (!table)
        return report_error(table.error().message);
    if (table->addresses_hidden())
        std::fprintf(stderr, "%s: warning: /proc/kallsyms shows no addresses (not root, or "
                             "kernel.kptr_restrict=2): the positions are right, but the "
                             "converter cannot show addresses or tell __init symbols\n", prog);
    std::ostringstream header;
    header << "# lpshim-klp-convert --dump-symbols: /proc/kallsyms of a running kernel\n"
           << "# release: " << u.release << "\n"
           << "# version: " << u.version << "\n";
    const std::string h = header.str();
    std::FILE* out = path ? std::fopen(path, "we") : stdout;
    if (!out)
        return report_error(std::string(path) + ": cannot create it: " + std::strerror(errno));
    const bool ok = std::fwrite(h.data(), 1, h.size(), out) == h.size() &&
                    std::fwrite(text.data(), 1, text.size(), out) == text.size();
    const bool closed = path ? std::fclose(out) == 0 : std::fflush(out) == 0;
    if (!ok || !closed)
        return report_error(std::string(path ? path : "standard output") +
                            ": cannot write it: " + std::strerror(errno));
    return 0;
}

// modules.dep: "kernel/drivers/block/loop.ko.xz: dep..." per line.
std::string find_module(const std::string& modules_dir, const std::string& name)
{
    std::ifstream dep(modules_dir + "/modules.dep");
    std::string line;
    while (std::getline(dep, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        const std::string path = line.substr(0, colon);
        if (module_name_of_path(path) == name)
            return path[0] == '/' ? path : modules_dir + "/" + path;
    }
    return {};
}

} // namespace

int main(int argc, char** argv)
{
    std::string output, kdir, kallsyms, modules_dir;
    std::vector<std::string> symvers;
    std::vector<ModuleArg> module_args;
    bool verbose = false;
    bool dump = false;
    const char* dump_path = nullptr;

    enum { opt_modules_dir = 256, opt_dump_symbols };
    static const option options[] = {
        {"output", required_argument, nullptr, 'o'},
        {"kdir", required_argument, nullptr, 'k'},
        {"symvers", required_argument, nullptr, 's'},
        {"kallsyms", required_argument, nullptr, 'S'},
        {"module", required_argument, nullptr, 'm'},
        {"modules-dir", required_argument, nullptr, opt_modules_dir},
        {"verbose", no_argument, nullptr, 'v'},
        {"dump-symbols", no_argument, nullptr, opt_dump_symbols},
        {"help", no_argument, nullptr, 'h'},
        {},
    };
    int c;
    while ((c = getopt_long(argc, argv, "o:k:s:S:m:vh", options, nullptr)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'k':
            kdir = optarg;
            break;
        case 's':
            symvers.emplace_back(optarg);
            break;
        case 'S':
            kallsyms = optarg;
            break;
        case 'm': {
            const std::string arg = optarg;
            const auto eq = arg.find('=');
            ModuleArg m{module_name_of_path(arg.substr(0, eq)),
                        eq == std::string::npos ? std::string() : arg.substr(eq + 1)};
            // A path alone: the module's name is the one its modinfo says (read below).
            if (eq == std::string::npos &&
                (arg.find('/') != std::string::npos || arg.ends_with(".ko") ||
                 arg.ends_with(".ko.xz") || access(arg.c_str(), F_OK) == 0)) {
                m.path = arg;
                m.name.clear();
            } else if (m.name.empty()) {
                std::fprintf(stderr, "%s: --module '%s': no module name\n", prog, optarg);
                return 2;
            }
            module_args.push_back(std::move(m));
            break;
        }
        case opt_modules_dir:
            modules_dir = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case opt_dump_symbols:
            dump = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            std::fprintf(stderr, "Try '%s --help'.\n", prog);
            return 2;
        }
    }
    if (dump) {
        if (argc - optind > 1) {
            std::fprintf(stderr, "%s: --dump-symbols takes at most one FILE\n", prog);
            return 2;
        }
        dump_path = optind < argc ? argv[optind] : nullptr;
        return dump_symbols(dump_path);
    }
    if (argc - optind != 1) {
        std::fprintf(stderr, "%s: give one module to convert (see --help)\n", prog);
        return 2;
    }
    const std::string input = argv[optind];
    if (output.empty())
        output = input;

    // The patch module.
    auto bytes = read_file(input);
    if (!bytes)
        return report_error(bytes.error().message);
    {
        // read_file() decompressed an .xz: the result could not be written back as it was.
        std::ifstream raw(input, std::ios::binary);
        char magic[6] = {};
        raw.read(magic, sizeof(magic));
        if (is_xz({reinterpret_cast<const std::uint8_t*>(magic), sizeof(magic)}))
            return report_error(input + ": the module is compressed: convert it before "
                                        "compressing it");
    }
    const std::size_t siglen = std::strlen(signature_magic);
    if (bytes->size() >= siglen &&
        std::memcmp(bytes->data() + bytes->size() - siglen, signature_magic, siglen) == 0)
        return report_error(input + ": the module is signed, and converting it would break its "
                                    "signature: convert it before signing it");
    auto parsed = ElfObject::parse(*bytes, input);
    if (!parsed)
        return report_error(parsed.error().message);
    ElfObject& ko = parsed.value();
    const auto release = module_release(ko);
    if (!release || release->empty())
        return report_error(input + ": no vermagic in its modinfo: not a kernel module built "
                                    "by Kbuild");

    // What the target kernel exports.
    Exports exports;
    const bool kdir_given = !kdir.empty();
    if (!kdir_given)
        kdir = "/lib/modules/" + *release + "/build";
    {
        auto text = read_file(kdir + "/Module.symvers");
        if (!text)
            return report_error(
                "no exports of the target kernel " + *release + ": " + text.error().message +
                (kdir_given ? "" : "; install linux-headers-" + *release + ", or give --kdir"));
        if (auto added = exports.add_symvers({reinterpret_cast<const char*>(text->data()),
                                              text->size()},
                                             kdir + "/Module.symvers");
            !added)
            return report_error(added.error().message);
        const std::string kdir_release =
            read_define(kdir + "/include/generated/utsrelease.h", "UTS_RELEASE");
        if (!kdir_release.empty() && kdir_release != *release)
            return report_error(input + " was built for " + *release + ", but " + kdir +
                                " is the build directory of " + kdir_release);
    }
    for (const auto& file : symvers) {
        auto text = read_file(file);
        if (!text)
            return report_error(text.error().message);
        if (auto added = exports.add_symvers({reinterpret_cast<const char*>(text->data()),
                                              text->size()},
                                             file);
            !added)
            return report_error(added.error().message);
    }

    // The module objects.
    if (modules_dir.empty())
        modules_dir = "/lib/modules/" + *release;
    std::vector<std::unique_ptr<ObjectSymbols>> module_tables;
    std::vector<std::string> module_names;
    for (auto& m : module_args) {
        if (m.path.empty()) {
            m.path = find_module(modules_dir, m.name);
            if (m.path.empty())
                return report_error("--module " + m.name + ": no such module in " +
                                    modules_dir + "/modules.dep; give its .ko: --module " +
                                    m.name + "=PATH");
        }
        auto data = read_file(m.path);
        if (!data)
            return report_error(data.error().message);
        auto mod = ElfObject::parse(*data, m.path);
        if (!mod)
            return report_error(mod.error().message);
        if (m.name.empty()) {
            for (const auto& [key, value] : modinfo_entries(*mod))
                if (key == "name")
                    m.name = value;
            if (m.name.empty())
                m.name = module_name_of_path(m.path);
        }
        for (const auto& [key, value] : modinfo_entries(*mod))
            if (key == "name" && value != m.name)
                return report_error("--module " + m.name + ": " + m.path + " is module '" +
                                    value + "'");
        const auto mod_release = module_release(*mod);
        if (mod_release && *mod_release != *release)
            return report_error("--module " + m.name + ": " + m.path + " was built for " +
                                *mod_release + ", the patch for " + *release);
        if (m.name == "vmlinux")
            return report_error("--module vmlinux: vmlinux is not a module; its symbols come "
                                "from --kallsyms");
        auto table = ObjectSymbols::from_module(*mod, m.name);
        if (!table)
            return report_error(table.error().message);
        module_tables.push_back(std::make_unique<ObjectSymbols>(std::move(table.value())));
        module_names.push_back(m.name);
    }

    const Needs need = needs(ko, exports, module_names);
    if (need.symbols.empty() && !need.annotations) {
        if (verbose)
            std::fprintf(stderr, "%s: %s references only exported symbols: nothing to convert\n",
                         prog, input.c_str());
        if (output != input)
            if (auto written = write_file_atomic(output, *bytes, 0644); !written)
                return report_error(written.error().message);
        return 0;
    }

    // vmlinux's symbols.
    std::unique_ptr<ObjectSymbols> vmlinux;
    {
        struct utsname u;
        uname(&u);
        std::string path = kallsyms;
        if (path.empty() && *release == u.release)
            path = "/proc/kallsyms";
        if (!path.empty()) {
            auto text = read_file(path);
            if (!text)
                return report_error(text.error().message);
            auto table = ObjectSymbols::from_kallsyms(
                {reinterpret_cast<const char*>(text->data()), text->size()}, path);
            if (!table)
                return report_error(table.error().message);
            if (table->release() && *table->release() != *release)
                return report_error(path + " holds the symbols of " + *table->release() +
                                    ", and " + input + " is for " + *release);
            const std::string kdir_version =
                read_define(kdir + "/include/generated/utsversion.h", "UTS_VERSION");
            if (table->version() && !kdir_version.empty() && *table->version() != kdir_version)
                return report_error(path + " holds the symbols of another build of " + *release +
                                    " ('" + *table->version() + "'; " + kdir + " is '" +
                                    kdir_version + "'): capture them again on the target");
            if (table->addresses_hidden())
                std::fprintf(stderr, "%s: warning: %s shows no addresses (captured without "
                                     "root?): positions are right, but __init symbols cannot "
                                     "be told apart\n", prog, path.c_str());
            vmlinux = std::make_unique<ObjectSymbols>(std::move(table.value()));
        }
    }

    ConvertInputs in;
    in.exports = &exports;
    in.vmlinux = vmlinux.get();
    for (const auto& t : module_tables)
        in.modules.push_back(t.get());
    const Report report = convert(ko, in);
    for (const auto& w : report.warnings)
        std::fprintf(stderr, "%s: %s: warning: %s\n", prog, input.c_str(), w.c_str());
    if (!report.errors.empty()) {
        for (const auto& e : report.errors)
            std::fprintf(stderr, "%s: %s: %s\n", prog, input.c_str(), e.c_str());
        std::fprintf(stderr, "%s: %s: refused (%zu error%s); nothing was written\n", prog,
                     input.c_str(), report.errors.size(), report.errors.size() > 1 ? "s" : "");
        return 1;
    }
    if (!report.changed) {
        if (output != input)
            if (auto written = write_file_atomic(output, *bytes, 0644); !written)
                return report_error(written.error().message);
        return 0;
    }

    auto out = ko.serialize();
    if (!out)
        return report_error(out.error().message);
    // What is written is read back and checked as the kernel will read it.
    auto reread = ElfObject::parse(*out, output);
    if (!reread)
        return report_error("internal error: the converted module does not read back: " +
                            reread.error().message);
    if (auto valid = verify_livepatch_elf(*reread); !valid)
        return report_error("internal error: " + valid.error().message);
    struct stat st;
    const mode_t mode = stat(input.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    if (auto written = write_file_atomic(output, *out, mode); !written)
        return report_error(written.error().message);
    if (verbose) {
        for (const auto& s : report.converted)
            std::fprintf(stderr, "%s: %s: %s -> .klp.sym.%s.%s,%lu (%zu relocation%s)\n", prog,
                         input.c_str(), s.name.c_str(), s.object.c_str(), s.name.c_str(),
                         s.sympos, s.relocations, s.relocations == 1 ? "" : "s");
    }
    return 0;
}
