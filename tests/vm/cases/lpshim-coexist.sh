#!/bin/bash
# lpshim beside the kernel's other users of ftrace redirection, after upstream livepatch's
# tools/testing/selftests/livepatch/test-kprobe.sh (2024) and the conflicts its test-ftrace.sh
# shows: ftrace lets one user redirect a function (IPMODIFY), so lpshim and upstream livepatch,
# or a kprobe with a post_handler, cannot share one; whichever comes second is refused cleanly,
# in either order. On different functions lpshim and upstream livepatch work side by side.
# (Only the kprobe-first order is tried: a kprobe refused by ftrace WARNs on newer kernels.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

P=test_lpshim_livepatch
C=test_klp_conflict
O=test_klp_other
K=test_kprobe_post
P_LINE="$P: this has been live patched"
C_LINE="$C: this has been live patched"
O_LINE="$O: this has been live patched"

# Upstream: test-ftrace.sh/test-kprobe.sh's refusal of a second IPMODIFY user, upstream side:
# an upstream livepatch on a function lpshim already redirects fails with its own -16 lines.
upstream_livepatch_refused_after_lpshim() {
	start_test "upstream livepatch refused on a function lpshim redirects"
	load_lp $P
	load_failing_mod $C "Device or resource busy"
	[[ ! -e $KLP_SYSFS/$C ]] || fail "$KLP_SYSFS/$C is left after the refusal"
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is still patched by lpshim"
	disable_lp $P
	unload_mod $P
	expect_unpatched

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
% insmod $C.ko
livepatch: enabling patch '$C'
livepatch: failed to register ftrace handler for function 'cmdline_proc_show' (-16)
livepatch: failed to patch object 'vmlinux'
livepatch: failed to enable patch '$C'
livepatch: '$C': unpatching complete
insmod: ERROR: could not insert module $C.ko: Device or resource busy
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# The same, lpshim side: lpshim refuses a function an upstream livepatch redirects, and says so.
lpshim_refused_after_upstream_livepatch() {
	start_test "lpshim refused on a function upstream livepatch redirects"
	load_klp $C
	expect_eq "$(cat /proc/cmdline)" "$C_LINE" "/proc/cmdline is patched by upstream livepatch"
	load_failing_mod $P "Device or resource busy"
	[[ ! -e $LPSHIM_SYSFS/$P ]] || fail "$LPSHIM_SYSFS/$P is left after the refusal"
	expect_eq "$(cat /proc/cmdline)" "$C_LINE" "/proc/cmdline is still patched by upstream livepatch"
	disable_klp $C
	unload_mod $C
	expect_unpatched

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $C.ko
livepatch: enabling patch '$C'
livepatch: '$C': starting patching transition
livepatch: '$C': patching complete
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: function 'cmdline_proc_show' is already redirected by another ftrace user (upstream livepatch, or a kprobe with a post handler)
lpshim: failed to enable patch '$P' (-16)
insmod: ERROR: could not insert module $P.ko: Device or resource busy
% echo 0 > $KLP_SYSFS/$C/enabled
livepatch: '$C': starting unpatching transition
livepatch: '$C': unpatching complete
% rmmod $C
EOF
}

# expect_kprobe_on_ftrace: test_kprobe_post's probe is armed through ftrace (the premise of
# the two kprobe cases: only an ftrace-based kprobe meets lpshim in ftrace).
expect_kprobe_on_ftrace() {
	expect_match "$(cat /sys/kernel/debug/kprobes/list)" 'cmdline_proc_show\+0x[0-9a-f]+ .*\[FTRACE\]' \
		"the kprobe on cmdline_proc_show is armed through ftrace"
}

# Upstream: test-kprobe.sh "livepatch interaction with kprobed function with post_handler"
# Once the kprobe is gone, the same patch loads: the refusal was the conflict, nothing else.
kprobe_with_post_handler() {
	start_test "livepatch interaction with kprobed function with post_handler"
	load_mod $K has_post_handler=1
	expect_kprobe_on_ftrace
	load_failing_mod $P "Device or resource busy"
	[[ ! -e $LPSHIM_SYSFS/$P ]] || fail "$LPSHIM_SYSFS/$P is left after the refusal"
	expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is the original under the kprobe"
	unload_mod $K
	load_lp $P
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is live patched once the kprobe is gone"
	disable_lp $P
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $K.ko has_post_handler=1
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: function 'cmdline_proc_show' is already redirected by another ftrace user (upstream livepatch, or a kprobe with a post handler)
lpshim: failed to enable patch '$P' (-16)
insmod: ERROR: could not insert module $P.ko: Device or resource busy
% rmmod $K
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

# Upstream: test-kprobe.sh "livepatch interaction with kprobed function without post_handler"
# A kprobe without a post_handler does not redirect: it shares the function with lpshim.
kprobe_without_post_handler() {
	start_test "livepatch interaction with kprobed function without post_handler"
	load_mod $K has_post_handler=0
	expect_kprobe_on_ftrace
	load_lp $P
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is live patched under the kprobe"
	unload_mod $K
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is still live patched without the kprobe"
	disable_lp $P
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $K.ko has_post_handler=0
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
% rmmod $K
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# lpshim on cmdline_proc_show, then upstream livepatch on version_proc_show: both in effect;
# the last loaded leaves first.
side_by_side_lpshim_first() {
	start_test "lpshim and upstream livepatch side by side, lpshim first"
	load_lp $P
	load_klp $O
	log_patched /proc/cmdline /proc/version
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is patched by lpshim"
	expect_eq "$(cat /proc/version)" "$O_LINE" "/proc/version is patched by upstream livepatch"
	disable_klp $O
	unload_mod $O
	log_patched /proc/cmdline /proc/version
	expect_eq "$(cat /proc/version)" "$ORIG_VERSION" "/proc/version is the original again"
	disable_lp $P
	unload_mod $P
	expect_unpatched

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
% insmod $O.ko
livepatch: enabling patch '$O'
livepatch: '$O': starting patching transition
livepatch: '$O': patching complete
$P_LINE
$O_LINE
% echo 0 > $KLP_SYSFS/$O/enabled
livepatch: '$O': starting unpatching transition
livepatch: '$O': unpatching complete
% rmmod $O
$P_LINE
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

# Upstream livepatch first, then lpshim: both in effect; the first loaded leaves first.
side_by_side_upstream_first() {
	start_test "lpshim and upstream livepatch side by side, upstream livepatch first"
	load_klp $O
	load_lp $P
	log_patched /proc/cmdline /proc/version
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is patched by lpshim"
	expect_eq "$(cat /proc/version)" "$O_LINE" "/proc/version is patched by upstream livepatch"
	disable_klp $O
	unload_mod $O
	log_patched /proc/cmdline /proc/version
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is still patched by lpshim"
	disable_lp $P
	unload_mod $P
	expect_unpatched

	expect_kmsg "$LP_KMSG" <<EOF
% insmod $O.ko
livepatch: enabling patch '$O'
livepatch: '$O': starting patching transition
livepatch: '$O': patching complete
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
$P_LINE
$O_LINE
% echo 0 > $KLP_SYSFS/$O/enabled
livepatch: '$O': starting unpatching transition
livepatch: '$O': unpatching complete
% rmmod $O
$P_LINE
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

lpshim_setup
upstream_livepatch_refused_after_lpshim
lpshim_refused_after_upstream_livepatch
kprobe_with_post_handler
kprobe_without_post_handler
side_by_side_lpshim_first
side_by_side_upstream_first
lpshim_teardown
