#!/bin/bash
# Upstream livepatch's tools/testing/selftests/livepatch/test-sysfs.sh (6.1, plus the replace
# and stack_order cases of later kernels), on lpshim: the permissions and values of
# /sys/kernel/lpshim/<patch>/..., which mean what /sys/kernel/livepatch/... means on 6.1 and
# later, and the writes it refuses.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

P=test_lpshim_livepatch
R=test_lpshim_atomic_replace
D=test_lpshim_callbacks_demo
T=test_lpshim_callbacks_mod

# Upstream: test-sysfs.sh "sysfs test" (6.1; replace and stack_order permissions from later
# kernels; immediate is lpshim's own)
sysfs_test() {
	local p=$LPSHIM_SYSFS/$P
	start_test "sysfs test"
	load_lp $P
	expect_attr $p drwxr-xr-x
	expect_attr $p/enabled -rw-r--r-- 1
	expect_attr $p/force --w-------
	expect_attr $p/transition -r--r--r-- 0
	expect_attr $p/replace -r--r--r-- 0
	expect_attr $p/immediate -r--r--r-- 0
	expect_attr $p/stack_order -r--r--r-- 1
	expect_attr $p/vmlinux drwxr-xr-x
	expect_attr $p/vmlinux/patched -r--r--r-- 1
	expect_attr "$p/vmlinux/cmdline_proc_show,1" drwxr-xr-x
	disable_lp $P
	unload_mod $P

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

# Upstream: core.c enabled_store() and force_store(), which test-sysfs.sh does not cover:
# writing the value enabled already has, or force on a patch not in transition, is EINVAL and
# changes nothing; a disabled patch is gone from sysfs, so it cannot be enabled again there.
sysfs_test_refused_writes() {
	local p=$LPSHIM_SYSFS/$P
	start_test "sysfs test refused writes"
	load_lp $P
	expect_write_error 1 $p/enabled "Invalid argument" "writing 1 to an enabled patch's enabled is EINVAL"
	expect_write_error 1 $p/force "Invalid argument" "writing 1 to force of a patch not in transition is EINVAL"
	expect_eq "$(sysfs_value $p/enabled)" 1 "$P is still enabled"
	expect_eq "$(sysfs_value $p/transition)" 0 "$P is not in transition"
	expect_eq "$(cat /proc/cmdline)" "$P: this has been live patched" "/proc/cmdline is still live patched"
	disable_lp $P
	expect_write_error 1 $p/enabled "No such file or directory" "a disabled patch cannot be enabled again: it left sysfs"
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

# Upstream: test-sysfs.sh "sysfs test object/patched"
# <object>/patched follows its module: 0 until it loads, 1 while loaded, 0 after it unloads.
# The object's function directories exist whether the module is loaded or not.
sysfs_test_object_patched() {
	local p=$LPSHIM_SYSFS/$D
	start_test "sysfs test object/patched"
	load_lp $D
	expect_attr $p/$T drwxr-xr-x
	expect_attr $p/$T/patched -r--r--r-- 0
	expect_attr "$p/test_lpshim_callbacks_busy/busymod_work_func,1" drwxr-xr-x
	load_mod $T
	expect_eq "$(sysfs_value $p/$T/patched)" 1 "$T/patched reads 1 once $T is loaded"
	unload_mod $T
	expect_eq "$(sysfs_value $p/$T/patched)" 0 "$T/patched reads 0 once $T is unloaded"
	disable_lp $D
	unload_mod $D

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $D.ko
lpshim: enabling patch '$D'
$D: pre_patch_callback: vmlinux
lpshim: '$D': starting patching transition
$D: post_patch_callback: vmlinux
lpshim: '$D': patching complete
% insmod $T.ko
lpshim: applying patch '$D' to loading module '$T'
$D: pre_patch_callback: $T -> [MODULE_STATE_COMING] Full formed, running module_init
$D: post_patch_callback: $T -> [MODULE_STATE_COMING] Full formed, running module_init
$T: ${T}_init
% rmmod $T
$T: ${T}_exit
$D: pre_unpatch_callback: $T -> [MODULE_STATE_GOING] Going away
lpshim: reverting patch '$D' on unloading module '$T'
$D: post_unpatch_callback: $T -> [MODULE_STATE_GOING] Going away
% echo 0 > $LPSHIM_SYSFS/$D/enabled
$D: pre_unpatch_callback: vmlinux
lpshim: '$D': starting unpatching transition
$D: post_unpatch_callback: vmlinux
lpshim: '$D': unpatching complete
% rmmod $D
EOF
}

# Upstream (after 6.1): test-sysfs.sh "sysfs test replace enabled" and "... replace disabled"
sysfs_test_replace() {
	local value
	start_test "sysfs test replace"
	for value in 1 0; do
		load_lp $R replace=$value
		expect_attr $LPSHIM_SYSFS/$R/replace -r--r--r-- $value
		disable_lp $R
		unload_mod $R
	done

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $R.ko replace=1
lpshim: enabling patch '$R'
lpshim: '$R': starting patching transition
lpshim: '$R': patching complete
% echo 0 > $LPSHIM_SYSFS/$R/enabled
lpshim: '$R': starting unpatching transition
lpshim: '$R': unpatching complete
% rmmod $R
% insmod $R.ko replace=0
lpshim: enabling patch '$R'
lpshim: '$R': starting patching transition
lpshim: '$R': patching complete
% echo 0 > $LPSHIM_SYSFS/$R/enabled
lpshim: '$R': starting unpatching transition
lpshim: '$R': unpatching complete
% rmmod $R
EOF
}

# Upstream (after 6.1): test-sysfs.sh "sysfs test stack_order value"
# stack_order is the 1-based position in load order among enabled patches; when the middle
# one leaves, the one above it moves down.
# Upstream's later "sysfs test stack_order value", with lpshim's rule that patches leave the
# stack top first (the issue's lifecycle): disabling a lower patch is refused and changes nothing.
sysfs_test_stack_order() {
	start_test "sysfs test stack_order value"
	load_lp $P
	load_lp $D
	load_lp $R replace=0
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$P/stack_order)" 1 "$P/stack_order reads 1"
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$D/stack_order)" 2 "$D/stack_order reads 2"
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$R/stack_order)" 3 "$R/stack_order reads 3"
	log "% echo 0 > $LPSHIM_SYSFS/$D/enabled"
	if echo 0 2>/dev/null >$LPSHIM_SYSFS/$D/enabled; then
		fail "disabling $D under $R was accepted"
	fi
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$D/enabled)" 1 "$D is still enabled after the refused disable"
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$R/stack_order)" 3 "$R/stack_order still reads 3"
	disable_lp $R
	unload_mod $R
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$D/stack_order)" 2 "$D/stack_order reads 2 on top"
	disable_lp $D
	unload_mod $D
	disable_lp $P
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
% insmod $D.ko
lpshim: enabling patch '$D'
$D: pre_patch_callback: vmlinux
lpshim: '$D': starting patching transition
$D: post_patch_callback: vmlinux
lpshim: '$D': patching complete
% insmod $R.ko replace=0
lpshim: enabling patch '$R'
lpshim: '$R': starting patching transition
lpshim: '$R': patching complete
% echo 0 > $LPSHIM_SYSFS/$D/enabled
lpshim: patch '$D' is not on top of the stack: disable '$R' first
% echo 0 > $LPSHIM_SYSFS/$R/enabled
lpshim: '$R': starting unpatching transition
lpshim: '$R': unpatching complete
% rmmod $R
% echo 0 > $LPSHIM_SYSFS/$D/enabled
$D: pre_unpatch_callback: vmlinux
lpshim: '$D': starting unpatching transition
$D: post_unpatch_callback: vmlinux
lpshim: '$D': unpatching complete
% rmmod $D
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

lpshim_setup
sysfs_test
sysfs_test_refused_writes
sysfs_test_object_patched
sysfs_test_replace
sysfs_test_stack_order
lpshim_teardown
