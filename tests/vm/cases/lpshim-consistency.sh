#!/bin/bash
# The per-task consistency model (issue: lpshim.ko per-task consistency model): a task with a
# function of the patch on its stack keeps the transition open while every other task switches,
# and moves when it leaves the function, is stopped, or is kicked; reverse and force; a parked
# kernel thread blocks until it leaves; a busy kernel thread that calls cond_resched() switches.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

P=test_lpshim_consistency
S=$LPSHIM_SYSFS/$P
T=/sys/kernel/debug/lpshim_target
TASKS=/sys/kernel/debug/lpshim/tasks
OUT=$(mktemp)

transition_is() { grep -sqx "$1" $S/transition; }
patch_gone() { test ! -e $S; }

# start_reader: a task asleep in lpshim_target_sleep (read() of the sleep device); sets READER.
start_reader() {
	cat /dev/lpshim_target_sleep >"$OUT" &
	READER=$!
	wait_until 10 "the reader sleeps in lpshim_target_sleep" grep -qx 1 $T/sleepers
}

release_reader() {
	echo 1 >$T/sleep_release
	wait $READER
}

# The transition stays open and the only task left is the one in the patched function.
expect_blocked_by() { # TID COMM FUNCTION
	sleep 1
	expect_eq "$(cat $S/transition)" 1 "the transition stays open while $2 is in $3"
	local lines
	lines=$(cat $TASKS)
	expect_eq "$(wc -l <<<"$lines")" 1 "only one task is left to switch"
	expect_match "$lines" "^$1 [0-9]+ $2 sleeping-in-function $3( |$)" "it is $2 ($1), asleep in $3"
}

disable_and_unload() {
	disable_lp $P
	unload_mod $P
}

# The lifecycle lines of one enable and disable, with the transition waiting in between.
expect_plain_cycle() {
	expect_kmsg '^lpshim: ' <<EOF
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
EOF
}

# 1. Everything but the sleeper switches; the sleeper switches once it leaves the function.
user_task_blocks_until_it_leaves() {
	start_test "a user task in a patched function keeps the transition open until it leaves"
	start_reader
	load_lp_nowait $P
	expect_blocked_by $READER cat lpshim_target_sleep
	expect_eq "$(cat $T/version)" v2 "a new task runs the patch"
	release_reader
	wait_until 10 "the transition completes once the reader left" transition_is 0
	# It woke in the old sleep function and finished that read in the old version.
	expect_eq "$(cat "$OUT")" "woken by original" "the reader finished its read with the original code"
	disable_and_unload
	expect_plain_cycle
}

# 2. SIGSTOP takes the sleeper out of the function; it switches; SIGCONT restarts its read.
sigstop_moves_it_out() {
	start_test "SIGSTOP moves a blocked user task out of the patched function"
	start_reader
	load_lp_nowait $P
	expect_blocked_by $READER cat lpshim_target_sleep
	kill -STOP $READER
	wait_until 10 "the transition completes with the reader stopped" transition_is 0
	kill -CONT $READER
	wait_until 10 "the restarted read sleeps again" grep -qx 1 $T/sleepers
	release_reader
	expect_eq "$(cat "$OUT")" "woken by v2" "the continued reader runs the patch"
	disable_and_unload
	expect_plain_cycle
}

# 3. The kick (sysfs signal): a fake signal, invisible to the task, moves it out.
kick_moves_it_out() {
	start_test "a kick moves a blocked user task out, invisibly"
	start_reader
	load_lp_nowait $P
	expect_blocked_by $READER cat lpshim_target_sleep
	log "% echo 1 > $S/signal"
	echo 1 >$S/signal
	wait_until 10 "the transition completes after the kick" transition_is 0
	wait_until 10 "the kicked read sleeps again" grep -qx 1 $T/sleepers
	kill -0 $READER || fail "the kicked reader is gone"
	release_reader
	expect_eq "$(cat "$OUT")" "woken by v2" "the kicked reader restarted its read in the patch"
	disable_and_unload
	expect_plain_cycle
}

# 4. Reverse: writing 0 during the patching transition goes back; the sleeper is in the
# original, which is where unpatching leads, so it completes at once.
reverse_transition() {
	start_test "writing 0 during the patching transition reverses it"
	start_reader
	load_lp_nowait $P
	expect_blocked_by $READER cat lpshim_target_sleep
	log "% echo 0 > $S/enabled"
	echo 0 >$S/enabled
	wait_until 10 "the reversed transition completes and the patch leaves" patch_gone
	expect_eq "$(cat $T/version)" original "the original runs again"
	release_reader
	unload_mod $P
	expect_kmsg '^lpshim: ' <<EOF
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': reversing transition from patching to unpatching
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
EOF
}

# 5. A kernel thread parked in a patched function blocks until it leaves.
kthread_blocks_until_it_leaves() {
	start_test "a kernel thread parked in a patched function blocks until it leaves"
	local kthread
	kthread=$(pgrep -x lpshim_tgt_park)
	echo 1 >$T/kthread_park
	wait_until 10 "the kthread is parked" grep -qx 1 $T/kthread_park
	load_lp_nowait $P
	expect_blocked_by "$kthread" lpshim_tgt_park lpshim_target_kthread_park
	echo 0 >$T/kthread_park
	wait_until 10 "the transition completes once the kthread left" transition_is 0
	disable_and_unload
	expect_plain_cycle
}

# 6. A busy kernel thread that calls cond_resched() outside the patch switches (upstream only
# since 6.4): at the sched switch point, or by the stack check while it waits for the CPU.
busy_kthread_switches() {
	start_test "a busy kernel thread that calls cond_resched() switches"
	echo 1 >$T/kthread_busy
	local before
	before=$(cat $T/busy_loops)
	wait_until 10 "the busy kthread loops" test "$(cat $T/busy_loops)" -gt "$before"
	load_lp_nowait $P
	wait_until 20 "the transition completes with the kthread busy" transition_is 0
	echo 0 >$T/kthread_busy
	disable_and_unload
	expect_plain_cycle
}

# 7. Force, last: the forced patch's module can never be removed (nor lpshim_target, which it
# links against, nor lpshim).
force_transition() {
	start_test "force moves the remaining tasks and pins the module"
	start_reader
	load_lp_nowait $P
	expect_blocked_by $READER cat lpshim_target_sleep
	log "% echo 1 > $S/force"
	echo 1 >$S/force
	wait_until 10 "the forced transition completes" transition_is 0
	release_reader
	disable_lp $P
	if rmmod $P 2>/dev/null; then fail "the module of a forced patch was removed"; fi
	ok "the module of a forced patch cannot be removed"
	expect_kmsg '^lpshim: ' <<EOF
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': forcing 1 remaining tasks to the patched state
lpshim: '$P': patching complete
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
EOF
}

# 8. After that, the same for a per-function immediate replacement that a task sleeps in: the
# transition does not wait for it, so its module must stay for good.
immediate_function_pins_module() {
	start_test "a per-function immediate replacement pins its module"
	local v3=test_lpshim_v3
	load_lp $v3 immediate_sleep=1
	start_reader
	disable_lp $v3
	if rmmod $v3 2>/dev/null; then fail "the module of an immediate function was removed"; fi
	ok "the module of an immediate function cannot be removed"
	release_reader
	expect_eq "$(cat "$OUT")" "woken by original" "the reader finished in the immediate replacement"
}

# 9. After those, an atomic replace whose function is immediate takes over the function a task
# sleeps in, in the patch it replaces, without the consistency model: the replaced patch's
# module must stay too, as after a force.
immediate_replace_pins_replaced() {
	start_test "an immediate function of a replace patch pins the module it replaced"
	local v2b=test_lpshim_v2b v3r=test_lpshim_v3_replace
	load_lp $v2b
	start_reader
	load_lp $v3r immediate_sleep=1
	wait_until 10 "$v2b is replaced" test ! -e $LPSHIM_SYSFS/$v2b
	if rmmod $v2b 2>/dev/null; then fail "the module of a patch replaced by an immediate function was removed"; fi
	ok "the module of a patch replaced by an immediate function cannot be removed"
	release_reader
	expect_eq "$(cat "$OUT")" "woken by original" "the reader finished its read (sleep_tag is back to the original)"
}

insmod "$(module_path lpshim)"
insmod "$(module_path lpshim_target)"
user_task_blocks_until_it_leaves
sigstop_moves_it_out
kick_moves_it_out
reverse_transition
kthread_blocks_until_it_leaves
busy_kthread_switches
force_transition
immediate_function_pins_module
immediate_replace_pins_replaced
