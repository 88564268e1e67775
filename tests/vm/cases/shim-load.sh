#!/bin/bash
# lpshim.ko resolves what it needs, creates /sys/kernel/lpshim, and unloads leaving nothing.
. "$(dirname "$0")/../lib.sh"

kmsg_mark
insmod "$(module_path lpshim)"
expect_kmsg '^lpshim:' <<<'lpshim: loaded (version 0.1.0)'
[[ -d /sys/kernel/lpshim ]] || fail "/sys/kernel/lpshim is missing"
ok "/sys/kernel/lpshim exists"

kmsg_mark
rmmod lpshim
expect_kmsg '^lpshim:' <<<'lpshim: unloaded'
[[ ! -e /sys/kernel/lpshim ]] || fail "/sys/kernel/lpshim is left after unload"
[[ ! -e /sys/module/lpshim ]] || fail "the module is still listed"
ok "nothing is left after unload"
