#!/bin/bash
# Upstream livepatch's tools/testing/selftests/livepatch/test-ftrace.sh (6.1), on lpshim:
# lpshim redirects through ftrace, so it refuses to patch while kernel.ftrace_enabled is 0, and
# while a patch is in effect ftrace cannot be turned off (its ftrace_ops is PERMANENT).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

P=test_lpshim_livepatch
P_LINE="$P: this has been live patched"

# set_ftrace_enabled [--fail] VALUE: sysctl kernel.ftrace_enabled=VALUE, logged; with --fail
# it must be refused, and sysctl's complaint is logged too (upstream's helper of this name).
set_ftrace_enabled() {
	local must_fail=0 err
	if [[ $1 == --fail ]]; then
		must_fail=1
		shift
	fi
	log "% sysctl kernel.ftrace_enabled=$1"
	err=$(sysctl -q kernel.ftrace_enabled="$1" 2>&1) || true
	if [[ $(sysctl -n kernel.ftrace_enabled) == "$1" ]]; then
		((!must_fail)) || fail "sysctl kernel.ftrace_enabled=$1 succeeded; expected it to be refused"
		ok "kernel.ftrace_enabled is $1"
	else
		((must_fail)) || fail "sysctl kernel.ftrace_enabled=$1 failed: $err"
		log "$(sed 's#/proc/sys/kernel/#kernel.#' <<<"$err")"
		ok "sysctl kernel.ftrace_enabled=$1 is refused"
	fi
}

# Upstream: test-ftrace.sh "livepatch interaction with ftrace_enabled sysctl"
livepatch_interaction_with_ftrace_enabled_sysctl() {
	start_test "livepatch interaction with ftrace_enabled sysctl"
	set_ftrace_enabled 0
	load_failing_mod $P "Device or resource busy"
	[[ ! -e $LPSHIM_SYSFS/$P ]] || fail "$LPSHIM_SYSFS/$P is left after the refusal"
	expect_unpatched
	set_ftrace_enabled 1
	load_lp $P
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is live patched"
	set_ftrace_enabled --fail 0
	expect_eq "$(sysctl -n kernel.ftrace_enabled)" 1 "kernel.ftrace_enabled is still 1"
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is still live patched"
	disable_lp $P
	unload_mod $P

	expect_kmsg "$LP_KMSG" <<EOF
% sysctl kernel.ftrace_enabled=0
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: cannot redirect functions: ftrace is disabled (kernel.ftrace_enabled=0)
lpshim: failed to enable patch '$P' (-16)
insmod: ERROR: could not insert module $P.ko: Device or resource busy
% sysctl kernel.ftrace_enabled=1
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
% sysctl kernel.ftrace_enabled=0
sysctl: setting key "kernel.ftrace_enabled": Device or resource busy
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% rmmod $P
EOF
}

lpshim_setup
livepatch_interaction_with_ftrace_enabled_sysctl
lpshim_teardown
