#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""docs/kernel-messages.md says it lists lpshim's kernel messages exactly. This keeps it true:
every message lpshim.ko can print (the format of each pr_*() call, and of each WARN*() that
prints a pr_fmt() line, in shim-kmod/) has a line in the page, and every `lpshim: ...` line of
the page is printed by one of them. A line of the page matches a format when it reads as that
format with each conversion (%s, %d, %pS, ...) replaced by some text: the page writes P, F, N,
-E, ... there.

    test_kernel_messages.py SOURCE_ROOT
"""

import glob
import os
import re
import sys
import unittest

ROOT = None

# The printk wrappers lpshim uses, each with the index of its format argument. pr_debug is
# left out on purpose: dynamic debug lines are not part of the stable wording (there are none).
PR_CALL = re.compile(r"\b(pr_emerg|pr_alert|pr_crit|pr_err|pr_warn|pr_notice|pr_info|pr_cont"
                     r"|WARN|WARN_ONCE)\s*\(")
PREFIX = "lpshim: "  # pr_fmt(fmt) is KBUILD_MODNAME ": " fmt in every file
CONVERSION = re.compile(r"%[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?:hh|h|ll|l|z|t)?"
                        r"(?:p[a-zA-Z]*|[diouxXcs])")
C_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "'": "'"}


def c_string_literals(text):
    """The concatenated string literals at the start of text (after blanks and pr_fmt( ),
    decoded; None if text does not start with one."""
    pos, out, found = 0, [], False
    while True:
        m = re.compile(r'\s*(?:pr_fmt\(\s*)?"').match(text, pos)
        if not m:
            break
        pos, found = m.end(), True
        while text[pos] != '"':
            if text[pos] == "\\":
                out.append(C_ESCAPES.get(text[pos + 1], "\\" + text[pos + 1]))
                pos += 2
            else:
                out.append(text[pos])
                pos += 1
        pos += 1
    return "".join(out) if found else None


def kernel_formats():
    """[(file:line, call, format)] for every message-printing call in shim-kmod/."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "shim-kmod", "*.[ch]"))):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        # Comments may quote a message; they print nothing.
        source = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group()), source,
                        flags=re.S)
        source = re.sub(r"//[^\n]*", "", source)
        for m in PR_CALL.finditer(source):
            rest = source[m.end():]
            if m.group(1).startswith("WARN"):
                # WARN(condition, format, ...): only a pr_fmt() format is an lpshim line.
                comma = rest.find(",")
                fmt = c_string_literals(rest[comma + 1:])
                if fmt is None or "pr_fmt(" not in rest[comma + 1:comma + 40]:
                    continue
            else:
                fmt = c_string_literals(rest)
                if fmt is None:  # a #define of a wrapper, not a call
                    continue
            where = "%s:%d" % (os.path.relpath(path, ROOT), source.count("\n", 0, m.start()) + 1)
            found.append((where, m.group(1), fmt))
    return found


def format_regex(fmt):
    """A regex for the documented form of a format: its text as it is, each conversion any
    text."""
    parts = CONVERSION.split(fmt.rstrip("\n"))
    return re.compile(re.escape(PREFIX) + ".+".join(re.escape(p) for p in parts) + r"\Z")


def documented_lines():
    """[(line number, text)] of every `lpshim: ...` code span in docs/kernel-messages.md."""
    lines = []
    with open(os.path.join(ROOT, "docs", "kernel-messages.md"), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            for span in re.findall(r"`([^`]*)`", line):
                if span.startswith(PREFIX) and span != PREFIX:  # not the prefix itself
                    lines.append((number, span))
    return lines


class KernelMessages(unittest.TestCase):
    maxDiff = None

    def test_the_scan_sees_lpshims_messages(self):
        # A broken scan would find nothing and pass everything below.
        formats = kernel_formats()
        self.assertGreater(len(formats), 50)
        self.assertIn("loaded (version %s)\n", [f for _, _, f in formats])
        self.assertIn("Duplicate shadow variable <%p, %lx>\n", [f for _, _, f in formats])
        self.assertGreater(len(documented_lines()), 40)

    def test_every_format_prints_one_prefix_and_one_line(self):
        for where, call, fmt in kernel_formats():
            with self.subTest(where=where):
                self.assertFalse(fmt.startswith(PREFIX),
                                 "%s: pr_fmt already adds %r: %r" % (where, PREFIX, fmt))
                if call != "pr_cont":
                    self.assertTrue(fmt.endswith("\n") and "\n" not in fmt[:-1],
                                    "%s: not one line ending in \\n: %r" % (where, fmt))

    def test_every_message_is_documented(self):
        documented = [text for _, text in documented_lines()]
        missing = []
        for where, _, fmt in kernel_formats():
            regex = format_regex(fmt)
            if not any(regex.match(text) for text in documented):
                missing.append("%s: %s%s" % (where, PREFIX, fmt.rstrip("\n")))
        self.assertEqual(missing, [], "not in docs/kernel-messages.md")

    def test_every_documented_message_is_printed(self):
        regexes = [format_regex(fmt) for _, _, fmt in kernel_formats()]
        unknown = ["docs/kernel-messages.md:%d: %s" % (number, text)
                   for number, text in documented_lines()
                   if not any(r.match(text) for r in regexes)]
        self.assertEqual(unknown, [], "printed by no pr_*() call in shim-kmod/")

    def test_the_matching_rules(self):
        r = format_regex("symbol '%s' in '%s' has no position %lu (%u matches)\n")
        self.assertTrue(r.match("lpshim: symbol 'F' in 'O' has no position N (M matches)"))
        self.assertFalse(r.match("lpshim: symbol 'F' in 'O' has no position N"))
        self.assertFalse(r.match("lpshim: symbol 'F' in 'O' has no position N (M matches)!"))
        self.assertTrue(format_regex("task %d (%s) at %pS\n").match("lpshim: task T (C) at F"))
        self.assertTrue(format_regex("'%.*s'\n").match("lpshim: 'S'"))
        self.assertEqual(c_string_literals(' "a %s"\n\t\t "b\\n", x)'), "a %sb\n")
        self.assertEqual(c_string_literals(' pr_fmt("x\\n"), y)'), "x\n")
        self.assertIsNone(c_string_literals(" fmt, ...)"))


if __name__ == "__main__":
    ROOT = sys.argv.pop(1)
    unittest.main()
