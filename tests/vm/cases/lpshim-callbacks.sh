#!/bin/bash
# Upstream livepatch's tools/testing/selftests/livepatch/test-callbacks.sh (6.1), on lpshim:
# when each object's pre/post (un)patch callbacks run, around patch enable and disable and
# around target modules loading and unloading.
#
# Case 9 ("busy target module") needs a patching transition that stays open while a worker
# sleeps in the function to patch: the per-task consistency model.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

P=test_lpshim_callbacks_demo
P2=test_lpshim_callbacks_demo2
T=test_lpshim_callbacks_mod
B=test_lpshim_callbacks_busy
LIVE='[MODULE_STATE_LIVE] Normal state'
COMING='[MODULE_STATE_COMING] Full formed, running module_init'
GOING='[MODULE_STATE_GOING] Going away'

# Upstream: test-callbacks.sh "target module before livepatch"
# T loads first: every callback runs for vmlinux, then for T, which is live.
target_module_before_livepatch() {
	start_test "target module before livepatch"
	load_mod $T
	load_lp $P
	disable_lp $P
	unload_mod $P
	unload_mod $T

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $T.ko
$T: ${T}_init
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
$P: pre_patch_callback: $T -> $LIVE
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
$P: post_patch_callback: $T -> $LIVE
lpshim: '$P': patching complete
% echo 0 > $LPSHIM_SYSFS/$P/enabled
$P: pre_unpatch_callback: vmlinux
$P: pre_unpatch_callback: $T -> $LIVE
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
$P: post_unpatch_callback: $T -> $LIVE
lpshim: '$P': unpatching complete
% rmmod $P
% rmmod $T
$T: ${T}_exit
EOF
}

# Upstream: test-callbacks.sh "module_coming notifier"
# T loads after P: its pre/post_patch callbacks run while it is coming, before its init.
module_coming_notifier() {
	start_test "module_coming notifier"
	load_lp $P
	load_mod $T
	disable_lp $P
	unload_mod $P
	unload_mod $T

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
lpshim: '$P': patching complete
% insmod $T.ko
lpshim: applying patch '$P' to loading module '$T'
$P: pre_patch_callback: $T -> $COMING
$P: post_patch_callback: $T -> $COMING
$T: ${T}_init
% echo 0 > $LPSHIM_SYSFS/$P/enabled
$P: pre_unpatch_callback: vmlinux
$P: pre_unpatch_callback: $T -> $LIVE
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
$P: post_unpatch_callback: $T -> $LIVE
lpshim: '$P': unpatching complete
% rmmod $P
% rmmod $T
$T: ${T}_exit
EOF
}

# Upstream: test-callbacks.sh "module_going notifier"
# T unloads while P is enabled: its pre/post_unpatch callbacks run after its exit.
module_going_notifier() {
	start_test "module_going notifier"
	load_mod $T
	load_lp $P
	unload_mod $T
	disable_lp $P
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $T.ko
$T: ${T}_init
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
$P: pre_patch_callback: $T -> $LIVE
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
$P: post_patch_callback: $T -> $LIVE
lpshim: '$P': patching complete
% rmmod $T
$T: ${T}_exit
$P: pre_unpatch_callback: $T -> $GOING
lpshim: reverting patch '$P' on unloading module '$T'
$P: post_unpatch_callback: $T -> $GOING
% echo 0 > $LPSHIM_SYSFS/$P/enabled
$P: pre_unpatch_callback: vmlinux
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# Upstream: test-callbacks.sh "module_coming and module_going notifiers"
module_coming_and_going_notifiers() {
	start_test "module_coming and module_going notifiers"
	load_lp $P
	load_mod $T
	unload_mod $T
	disable_lp $P
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
lpshim: '$P': patching complete
% insmod $T.ko
lpshim: applying patch '$P' to loading module '$T'
$P: pre_patch_callback: $T -> $COMING
$P: post_patch_callback: $T -> $COMING
$T: ${T}_init
% rmmod $T
$T: ${T}_exit
$P: pre_unpatch_callback: $T -> $GOING
lpshim: reverting patch '$P' on unloading module '$T'
$P: post_unpatch_callback: $T -> $GOING
% echo 0 > $LPSHIM_SYSFS/$P/enabled
$P: pre_unpatch_callback: vmlinux
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# Upstream: test-callbacks.sh "target module not present"
# Callbacks run only for loaded objects: here vmlinux alone.
target_module_not_present() {
	start_test "target module not present"
	load_lp $P
	disable_lp $P
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
lpshim: '$P': patching complete
% echo 0 > $LPSHIM_SYSFS/$P/enabled
$P: pre_unpatch_callback: vmlinux
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# Upstream: test-callbacks.sh "pre-patch callback -ENODEV"
# vmlinux's pre_patch fails: the patch is refused with its error before T's pre_patch runs, and
# no post_unpatch runs (no pre_patch succeeded). Nothing is left: no sysfs, no module.
pre_patch_callback_enodev() {
	start_test "pre-patch callback -ENODEV"
	load_mod $T
	load_failing_mod $P "No such device" pre_patch_ret=-19
	[[ ! -e $LPSHIM_SYSFS/$P ]] || fail "$LPSHIM_SYSFS/$P is left after the refusal"
	unload_mod $T

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $T.ko
$T: ${T}_init
% insmod $P.ko pre_patch_ret=-19
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
lpshim: pre-patch callback failed for object 'vmlinux' (-19)
lpshim: failed to enable patch '$P' (-19)
insmod: ERROR: could not insert module $P.ko: No such device
% rmmod $T
$T: ${T}_exit
EOF
}

# Not upstream's (issue 18): a callback's -EBUSY (or -EAGAIN) must not pass for lpshim's own
# refusals, which the daemon names from the errno alone (RedirectRefused, TransitionInProgress):
# lpshim returns ECANCELED for it, and its line keeps the callback's own error.
pre_patch_callback_ebusy() {
	start_test "pre-patch callback -EBUSY"
	load_failing_mod $P "Operation canceled" pre_patch_ret=-16
	[[ ! -e $LPSHIM_SYSFS/$P ]] || fail "$LPSHIM_SYSFS/$P is left after the refusal"

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko pre_patch_ret=-16
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
lpshim: pre-patch callback failed for object 'vmlinux' (-16)
lpshim: failed to enable patch '$P' (-125)
insmod: ERROR: could not insert module $P.ko: Operation canceled
EOF
}

# Upstream: test-callbacks.sh "module_coming + pre-patch callback -ENODEV"
# T's pre_patch fails while T is coming: T's load is refused before its init runs; P stays.
module_coming_pre_patch_callback_enodev() {
	start_test "module_coming + pre-patch callback -ENODEV"
	load_lp $P
	log "% echo -19 > /sys/module/$P/parameters/pre_patch_ret"
	echo -19 >/sys/module/$P/parameters/pre_patch_ret
	load_failing_mod $T "No such device"
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$P/enabled)" 1 "$P is still enabled"
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$P/$T/patched)" 0 "$P's object $T is not patched"
	disable_lp $P
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
lpshim: '$P': patching complete
% echo -19 > /sys/module/$P/parameters/pre_patch_ret
% insmod $T.ko
lpshim: applying patch '$P' to loading module '$T'
$P: pre_patch_callback: $T -> $COMING
lpshim: pre-patch callback failed for object '$T' (-19)
lpshim: patch '$P' failed for module '$T', refusing to load module '$T'
insmod: ERROR: could not insert module $T.ko: No such device
% echo 0 > $LPSHIM_SYSFS/$P/enabled
$P: pre_unpatch_callback: vmlinux
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# Upstream: test-callbacks.sh "multiple target modules"
# B (its worker done) and then T: each object gets its callbacks at its own time.
multiple_target_modules() {
	start_test "multiple target modules"
	load_mod $B block_transition=N
	load_lp $P
	load_mod $T
	unload_mod $T
	disable_lp $P
	unload_mod $P
	unload_mod $B

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $B.ko block_transition=N
$B: ${B}_init
$B: busymod_work_func enter
$B: busymod_work_func exit
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
$P: pre_patch_callback: $B -> $LIVE
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
$P: post_patch_callback: $B -> $LIVE
lpshim: '$P': patching complete
% insmod $T.ko
lpshim: applying patch '$P' to loading module '$T'
$P: pre_patch_callback: $T -> $COMING
$P: post_patch_callback: $T -> $COMING
$T: ${T}_init
% rmmod $T
$T: ${T}_exit
$P: pre_unpatch_callback: $T -> $GOING
lpshim: reverting patch '$P' on unloading module '$T'
$P: post_unpatch_callback: $T -> $GOING
% echo 0 > $LPSHIM_SYSFS/$P/enabled
$P: pre_unpatch_callback: vmlinux
$P: pre_unpatch_callback: $B -> $LIVE
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
$P: post_unpatch_callback: $B -> $LIVE
lpshim: '$P': unpatching complete
% rmmod $P
% rmmod $B
$B: ${B}_exit
EOF
}

# Upstream: test-callbacks.sh "busy target module"
# B's worker sleeps in busymod_work_func, which P replaces, so P's patching transition stays
# open. T loading meanwhile gets pre_patch but no post_patch (that waits for the transition),
# T unloading gets no pre_unpatch; writing 0 to enabled reverses the transition, which then
# completes at once (the worker is in the original, which is what unpatched tasks run). No
# pre_unpatch runs on a reverse. Needs the per-task consistency model.
busy_target_module() {
	start_test "busy target module"
	load_mod $B block_transition=Y
	load_lp_nowait $P
	wait_until $LP_WAIT "$P is in transition" grep -sqx 1 $LPSHIM_SYSFS/$P/transition
	sleep 1
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$P/transition)" 1 "$P is still in transition a second later"
	# Not upstream's (issue 18): another patch meanwhile is refused with EAGAIN, the errno
	# that says "retry once the transition has ended" (upstream's EBUSY says nothing).
	load_failing_mod $P2 "Resource temporarily unavailable"
	load_mod $T
	unload_mod $T
	disable_lp $P
	unload_mod $P
	unload_mod $B

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $B.ko block_transition=Y
$B: ${B}_init
$B: busymod_work_func enter
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
$P: pre_patch_callback: $B -> $LIVE
lpshim: '$P': starting patching transition
% insmod $P2.ko
lpshim: patch '$P' is in transition; try again when it completes
lpshim: failed to enable patch '$P2' (-11)
insmod: ERROR: could not insert module $P2.ko: Resource temporarily unavailable
% insmod $T.ko
lpshim: applying patch '$P' to loading module '$T'
$P: pre_patch_callback: $T -> $COMING
$T: ${T}_init
% rmmod $T
$T: ${T}_exit
lpshim: reverting patch '$P' on unloading module '$T'
$P: post_unpatch_callback: $T -> $GOING
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': reversing transition from patching to unpatching
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
$P: post_unpatch_callback: $B -> $LIVE
lpshim: '$P': unpatching complete
% rmmod $P
% rmmod $B
$B: busymod_work_func exit
$B: ${B}_exit
EOF
}

# Upstream: test-callbacks.sh "multiple livepatches"
# Two patches stacked: each runs its own callbacks at its own enable and disable.
multiple_livepatches() {
	start_test "multiple livepatches"
	load_lp $P
	load_lp $P2
	disable_lp $P2
	disable_lp $P
	unload_mod $P2
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
lpshim: '$P': patching complete
% insmod $P2.ko
lpshim: enabling patch '$P2'
$P2: pre_patch_callback: vmlinux
lpshim: '$P2': starting patching transition
$P2: post_patch_callback: vmlinux
lpshim: '$P2': patching complete
% echo 0 > $LPSHIM_SYSFS/$P2/enabled
$P2: pre_unpatch_callback: vmlinux
lpshim: '$P2': starting unpatching transition
$P2: post_unpatch_callback: vmlinux
lpshim: '$P2': unpatching complete
% echo 0 > $LPSHIM_SYSFS/$P/enabled
$P: pre_unpatch_callback: vmlinux
lpshim: '$P': starting unpatching transition
$P: post_unpatch_callback: vmlinux
lpshim: '$P': unpatching complete
% rmmod $P2
% rmmod $P
EOF
}

# Upstream: test-callbacks.sh "atomic replace"
# P2 replaces P: only P2's callbacks run; P leaves silently and unloads without a disable.
atomic_replace() {
	start_test "atomic replace"
	load_lp $P
	load_lp $P2 replace=1
	wait_until $LP_WAIT "the replaced $P leaves sysfs" test ! -e "$LPSHIM_SYSFS/$P"
	disable_lp $P2
	unload_mod $P2
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
$P: pre_patch_callback: vmlinux
lpshim: '$P': starting patching transition
$P: post_patch_callback: vmlinux
lpshim: '$P': patching complete
% insmod $P2.ko replace=1
lpshim: enabling patch '$P2'
$P2: pre_patch_callback: vmlinux
lpshim: '$P2': starting patching transition
$P2: post_patch_callback: vmlinux
lpshim: '$P2': patching complete
% echo 0 > $LPSHIM_SYSFS/$P2/enabled
$P2: pre_unpatch_callback: vmlinux
lpshim: '$P2': starting unpatching transition
$P2: post_unpatch_callback: vmlinux
lpshim: '$P2': unpatching complete
% rmmod $P2
% rmmod $P
EOF
}

lpshim_setup
target_module_before_livepatch
module_coming_notifier
module_going_notifier
module_coming_and_going_notifiers
target_module_not_present
pre_patch_callback_enodev
pre_patch_callback_ebusy
module_coming_pre_patch_callback_enodev
multiple_target_modules
busy_target_module
multiple_livepatches
atomic_replace
lpshim_teardown
