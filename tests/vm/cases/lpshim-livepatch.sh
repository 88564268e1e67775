#!/bin/bash
# Upstream livepatch's tools/testing/selftests/livepatch/test-livepatch.sh (6.1), on lpshim:
# one patch, two stacked patches, and an atomic-replace patch replacing another.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

P=test_lpshim_livepatch
R=test_lpshim_atomic_replace
P_LINE="$P: this has been live patched"
R_LINE="$R: this has been live patched"

# Upstream: test-livepatch.sh "basic function patching"
basic_function_patching() {
	start_test "basic function patching"
	load_lp $P
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is live patched"
	disable_lp $P
	unload_mod $P
	expect_unpatched

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# Upstream: test-livepatch.sh "multiple livepatches"
# Two non-replace patches on different functions: both are in effect, each until disabled.
multiple_livepatches() {
	start_test "multiple livepatches"
	load_lp $P
	log_patched /proc/cmdline /proc/meminfo
	load_lp $R replace=0
	log_patched /proc/cmdline /proc/meminfo
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is patched by $P"
	expect_eq "$(cat /proc/meminfo)" "$R_LINE" "/proc/meminfo is patched by $R"
	disable_lp $R
	unload_mod $R
	log_patched /proc/cmdline /proc/meminfo
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is still patched by $P"
	expect_eq "$(head -n 1 /proc/meminfo)" "$ORIG_MEMINFO" "/proc/meminfo is the original again"
	disable_lp $P
	unload_mod $P
	log_patched /proc/cmdline /proc/meminfo
	expect_unpatched

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
$P_LINE
% insmod $R.ko replace=0
lpshim: enabling patch '$R'
lpshim: '$R': starting patching transition
lpshim: '$R': patching complete
$P_LINE
$R_LINE
% echo 0 > $LPSHIM_SYSFS/$R/enabled
lpshim: '$R': starting unpatching transition
lpshim: '$R': unpatching complete
% rmmod $R
$P_LINE
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# Upstream: test-livepatch.sh "atomic replace livepatch"
# R replaces P: cmdline_proc_show, which only P patched, returns to the original; P leaves
# sysfs silently and its module can be removed without disabling it.
atomic_replace_livepatch() {
	start_test "atomic replace livepatch"
	load_lp $P
	log_patched /proc/cmdline /proc/meminfo
	load_lp $R replace=1
	wait_until $LP_WAIT "the replaced $P leaves sysfs" test ! -e "$LPSHIM_SYSFS/$P"
	log_patched /proc/cmdline /proc/meminfo
	expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is the original: $P is replaced"
	expect_eq "$(cat /proc/meminfo)" "$R_LINE" "/proc/meminfo is patched by $R"
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$R/stack_order)" 1 "$R is the only patch (stack_order 1)"
	unload_mod $P
	log_patched /proc/cmdline /proc/meminfo
	expect_eq "$(cat /proc/meminfo)" "$R_LINE" "/proc/meminfo is still patched by $R"
	disable_lp $R
	unload_mod $R
	log_patched /proc/cmdline /proc/meminfo
	expect_unpatched

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
$P_LINE
% insmod $R.ko replace=1
lpshim: enabling patch '$R'
lpshim: '$R': starting patching transition
lpshim: '$R': patching complete
$R_LINE
% rmmod $P
$R_LINE
% echo 0 > $LPSHIM_SYSFS/$R/enabled
lpshim: '$R': starting unpatching transition
lpshim: '$R': unpatching complete
% rmmod $R
EOF
}

lpshim_setup
basic_function_patching
multiple_livepatches
atomic_replace_livepatch
lpshim_teardown
