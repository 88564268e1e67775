// SPDX-License-Identifier: GPL-2.0-only
//
// printable(): what a task's owner puts in its name reaches the bus, the journal and the
// admin's terminal only as valid, printable UTF-8.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "common/text.hpp"

using namespace livepatchd;

TEST_CASE("printable text is left alone")
{
    CHECK(printable("cat") == "cat");
    CHECK(printable("kworker/0:1") == "kworker/0:1");
    CHECK(printable("caf\xc3\xa9") == "caf\xc3\xa9");
    CHECK(is_valid_utf8("caf\xc3\xa9"));
}

TEST_CASE("invalid UTF-8 and control characters are escaped")
{
    // prctl(PR_SET_NAME) takes any bytes: a name that is not UTF-8 made sd-bus refuse the whole
    // ListPendingTasks reply and drop TaskBlocked; an escape sequence reached terminals.
    CHECK(printable("\xff\x1b[31mevil") == "\\xff\\x1b[31mevil");
    CHECK(is_valid_utf8(printable("\xff\x1b[31mevil")));
    CHECK(printable("a\nb\tc\x7f") == "a\\x0ab\\x09c\\x7f");
    CHECK(printable("\xc2\x9b") == "\\xc2\\x9b");           // C1 CSI
    CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");           // overlong
    CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
    CHECK(printable("\xe2\x82") == "\\xe2\\x82");           // cut short
    CHECK(printable("back\\slash") == "back\\slash");
    for (const char* x : {"\xff\x1b[31mevil", "a\nb", "\xc2\x9b", "back\\slash"})
        CHECK(printable(printable(x)) == printable(x)); // idempotent: layers never escape twice
    CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
    CHECK_FALSE(is_valid_utf8("\xff"));
}

TEST_CASE("make_printable escapes in place exactly as printable does")
{
    // (Printable ASCII is passed byte by byte first: a name that is ASCII up to a DEL, an
    // escape or a non-ASCII byte is checked from there.)
    for (const char* x : {"cat", "caf\xc3\xa9", "\xff\x1b[31mevil", "a\nb", "\xc2\x9b", "", "\xe2\x82",
                          "cat\x7f", "cat\x1b[2J", "cat\xc2\x9b", "cat\xc3\xa9", "cat\xc3"}) {
        std::string text = x;
        make_printable(text);
        CHECK(text == printable(x));
    }
    std::string nul("a\0b", 3);
    make_printable(nul);
    CHECK(nul == "a\\x00b");
}
