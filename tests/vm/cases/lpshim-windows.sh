#!/bin/bash
# Windows between what the ftrace handler reads and what it runs, and between a task's work and
# lpshim's unload (issue 16, points 2, 3, 6 and 7), each held open by a test hook of lpshim's debug
# build (shim-kmod/debug.h) so that the outcome does not depend on luck.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"
use_debug_lpshim

V2=test_lpshim_consistency
V3=test_lpshim_v3
T=/sys/kernel/debug/lpshim_target
TASKS=/sys/kernel/debug/lpshim/tasks
PARAMS=/sys/module/lpshim/parameters
OUT=$(mktemp -d)

in_transition() { grep -sqx 1 "$LPSHIM_SYSFS/$1/transition"; }
# 1. A failed enable pops its functions, then clears their marks: a handler that read a popped
# function as the top of its func_stack must be waited out before its mark is cleared, or it
# sends a task that runs the version below into the code of a module whose init is failing.
failed_enable_waits_out_handler() {
	start_test "a failed enable waits out a handler that read its function"
	load_lp $V2
	# The next call that finds v3's function on top, in transition, busy-waits 1.5 s between
	# reading the top and reading its mark; v3's enable fails 1 s after it pushed it.
	echo lpshim_target_version:1500 >$PARAMS/test_delay_after_top
	(while :; do cat $T/version; done) >"$OUT/versions" &
	local reader=$!
	load_failing_mod $V3 "Input/output error" fail_after_ms=1000
	kill $reader
	wait $reader 2>/dev/null || true
	expect_match "$(cat $PARAMS/test_delay_after_top)" ':0$' "the delayed handler call happened"
	expect_eq "$(sort -u "$OUT/versions" | tr '\n' ' ')" "v2 " \
		"every call ran version 2, none the code of the patch whose enable failed"
	disable_lp $V2
	unload_mod $V2
}

# 2. A failed enable must not have made an immediate function reachable: the module's memory is
# freed whatever its reference count when its init fails.
failed_enable_with_immediate_function() {
	start_test "a failed enable never runs its immediate function"
	load_lp $V2
	insmod_logged $V3 fail_after_ms=2000 immediate_sleep=1 2>/dev/null &
	local loader=$!
	wait_until 10 "$V3's enable has begun" test -d $LPSHIM_SYSFS/$V3
	sleep 0.5
	start_sleeper reader
	local reader=$SLEEPER
	if wait $loader; then fail "insmod $V3.ko succeeded; it must fail"; fi
	ok "insmod $V3.ko failed"
	expect_match "$(cat /proc/$reader/stack)" "\[$V2\]" \
		"the reader sleeps in version 2, not in the failed patch's immediate function"
	release_sleepers
	expect_eq "$(cat "$OUT/reader")" "woken by v2" "the reader finished its read in version 2"
	disable_lp $V2
	unload_mod $V2
}

# 3. A task that the handler already sent to the patch's code, preempted before it got there (in
# the ftrace trampoline), still has the patch ahead of it: the unpatching transition must wait.
trampoline_window() {
	start_test "a task between the handler's choice and the patch's code blocks unpatching"
	load_lp $V2
	echo lpshim_target_sleep:4000 >$PARAMS/test_sleep_after_choice
	cat /dev/lpshim_target_sleep >"$OUT/reader" &
	local reader=$!
	wait_until 10 "the reader waits after the handler's choice" \
		grep -q ':0$' $PARAMS/test_sleep_after_choice
	log "% echo 0 > $LPSHIM_SYSFS/$V2/enabled"
	echo 0 >$LPSHIM_SYSFS/$V2/enabled
	sleep 1
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$V2/transition)" 1 \
		"the unpatching transition waits for the task on its way into the patch"
	expect_match "$(cat $TASKS)" "^$reader [0-9]+ cat [a-z-]+ " "the task is listed as pending"
	wait_until 10 "the reader sleeps in version 2" sleepers_are 1
	expect_eq "$(sysfs_value $LPSHIM_SYSFS/$V2/transition)" 1 "the transition waits while it sleeps there"
	release_sleepers
	wait_until 10 "the unpatching transition completes" test ! -e $LPSHIM_SYSFS/$V2
	expect_eq "$(cat "$OUT/reader")" "woken by v2" "the reader ran version 2, which it was sent to"
	unload_mod $V2
}

# 4. lpshim's unload never waits without limit for a return-to-user switch attempt that its task
# took off its queue but has not finished: such a work holds lpshim, so rmmod refuses at once.
unload_with_running_switch_work() {
	start_test "unloading lpshim never waits for a switch attempt in progress"
	start_sleeper blocker
	local blocker=$SLEEPER
	load_lp_nowait $V2
	echo 6000 >$PARAMS/test_switch_work_delay_ms
	log "% echo 1 > $LPSHIM_SYSFS/$V2/signal"
	echo 1 >$LPSHIM_SYSFS/$V2/signal
	wait_until 10 "the kicked task runs its switch attempt" grep -qx 0 $PARAMS/test_switch_work_delay_ms
	wait_until 10 "the transition completes" grep -sqx 0 $LPSHIM_SYSFS/$V2/transition
	disable_lp $V2
	unload_mod $V2
	local start end rc=0
	start=$(date +%s%N)
	rmmod lpshim 2>"$OUT/rmmod" || rc=$?
	end=$(date +%s%N)
	echo "# rmmod lpshim: status $rc after $(((end - start) / 1000000)) ms: $(cat "$OUT/rmmod")"
	((rc != 0)) || fail "rmmod lpshim succeeded while a switch attempt was still running"
	(((end - start) / 1000000 < 1000)) || fail "rmmod lpshim waited $(((end - start) / 1000000)) ms"
	ok "rmmod lpshim refused at once while a switch attempt was running"
	wait_until 15 "the switch attempt finished and lpshim is free" grep -sqx 0 /sys/module/lpshim/refcnt
	rmmod lpshim || fail "rmmod lpshim failed once the switch attempt had finished"
	ok "rmmod lpshim succeeds once the switch attempt has finished"
	release_sleepers
	insmod "$(module_path lpshim)"
}

insmod "$(module_path lpshim)"
insmod "$(module_path lpshim_target)"
# Every test in turn; TESTS="NAME..." runs only those (to see each fail on its own).
all="failed_enable_waits_out_handler
	failed_enable_with_immediate_function
	trampoline_window
	unload_with_running_switch_work"
for t in ${TESTS:-$all}; do
	$t
done
rmmod lpshim_target
rmmod lpshim
