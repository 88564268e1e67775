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

# On a CPU that enforces IBT, the kernel seals at boot the ENDBR of the functions it never calls
# indirectly, lpshim's helpers among them on Debian's 6.12: lpshim must refuse to load, naming
# the helper and the way out, rather than fault on its first call. TCG has no IBT: the debug
# build's test_ibt_sealed makes a helper read as sealed (shim-kmod/debug.h).
debug_ko=$(LPSHIM_FLAVOUR=debug module_path lpshim)
for helper in kallsyms_lookup_name task_call_func; do
	kmsg_mark
	if out=$(insmod "$debug_ko" test_ibt_sealed=$helper 2>&1); then
		rmmod lpshim
		fail "lpshim loaded although $helper reads as sealed against indirect calls"
	fi
	expect_kmsg '^lpshim:' <<<"lpshim: cannot call $helper: this CPU enforces IBT and the kernel sealed $helper at boot against indirect calls; boot with ibt=off to use lpshim on this kernel"
	[[ $out == *"Operation not supported"* ]] || fail "insmod says '$out', not EOPNOTSUPP"
	[[ ! -e /sys/module/lpshim && ! -e /sys/kernel/lpshim ]] || fail "a refused lpshim left /sys/module/lpshim or /sys/kernel/lpshim"
	ok "with $helper sealed (IBT), lpshim refuses to load and leaves nothing"
done
