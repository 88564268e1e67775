#!/bin/bash
# What lpshim refuses, and that a refusal changes nothing: a module not marked as an lpshim
# patch, a symbol that does not resolve, an ambiguous symbol without old_sympos, a position past
# the last match, and a function ftrace cannot redirect. Each is refused at insmod with EINVAL
# and one message naming the cause; the patch already in effect stays in effect, no directory
# appears in sysfs, and the refused module is not loaded. Then old_sympos picks the twin it names.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

T=test_lpshim_twins
R=test_lpshim_refused
U=test_lpshim_unmarked
P=test_lpshim_livepatch
P_LINE="$P: this has been live patched"
TWINS=/sys/module/$T/parameters/twins

# refused NAME MESSAGE [PARAM=VALUE...]: insmod NAME fails with EINVAL, lpshim says MESSAGE, and
# nothing changed: the patch P still applies, sysfs holds P alone, NAME is not loaded.
refused() {
	local name=$1 message=$2
	shift 2
	start_test "refused: $message"
	# insmod's words for EINVAL
	load_failing_mod "$name" "Invalid parameters" "$@"
	expect_kmsg "$LP_KMSG" <<-EOF
	% insmod $name.ko${*:+ $*}
	lpshim: $message
	lpshim: failed to enable patch '$name' (-22)
	insmod: ERROR: could not insert module $name.ko: Invalid parameters
	EOF
	expect_eq "$(ls $LPSHIM_SYSFS | tr '\n' ' ')" "$P " "$LPSHIM_SYSFS holds $P alone"
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is still live patched"
	expect_eq "$(cat $TWINS)" "a b" "both twins are unpatched"
	expect_eq "$(cat $LPSHIM_SYSFS/$P/transition)" 0 "no transition is left open"
}

lpshim_setup
load_lp $P
load_mod $T
expect_eq "$(cat $TWINS)" "a b" "the twins return a and b"

refused $U "module '$U' is not marked as an lpshim patch (LPSHIM_PATCH_MODULE())"
refused $R "symbol 'lpshim_no_such_function' not found in 'vmlinux'" \
	func=lpshim_no_such_function object=vmlinux
refused $R "symbol 'no_such_twin' not found in '$T'" func=no_such_twin
refused $R "symbol 'twin' is ambiguous in '$T' (2 matches): set old_sympos" func=twin
refused $R "symbol 'twin' in '$T' has no position 3 (2 matches)" func=twin sympos=3
refused $R "function 'test_lpshim_twins_untraceable' cannot be redirected: ftrace does not trace it" \
	func=test_lpshim_twins_untraceable

# old_sympos names one twin: kallsyms lists a module's symbols in link order, so 2 is b's.
start_test "old_sympos picks the twin it names"
load_lp $R func=twin sympos=2
expect_eq "$(cat $TWINS)" "a patched" "twin 2 (test_lpshim_twins_b.c) is patched, twin 1 is not"
[[ -d $LPSHIM_SYSFS/$R/$T/twin,2 ]] || fail "no $LPSHIM_SYSFS/$R/$T/twin,2"
ok "$LPSHIM_SYSFS/$R/$T/twin,2 exists"
disable_lp $R
unload_mod $R
expect_eq "$(cat $TWINS)" "a b" "the twins are unpatched again"

disable_lp $P
unload_mod $P
unload_mod $T
lpshim_teardown
