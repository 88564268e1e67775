#!/bin/bash
# The consistency checker (issue: per-task consistency model): 16 threads call lpshim_target's
# stage1, sleep, stage2 over and over while test_lpshim_consistency goes through 50 enable /
# disable / reverse cycles. A call that ran one version's stage1 and the other's stage2 is
# counted as mixed: the consistency model must allow none. The same patch marked immediate,
# enabled and disabled once under the same hammering, must count some, or the checker proves
# nothing. An immediate patch's module can never be removed (docs/consistency-model.md): this
# case leaves it and lpshim loaded, so it runs last in its boot.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

T=/sys/kernel/debug/lpshim_target
THREADS=${THREADS:-16}
CYCLES=${CYCLES:-50}

# hammer: THREADS writers, each a loop of 50 checked calls per write, until $STOP exists.
STOP=$(mktemp -u)
# The hammers stop however the case ends: a failure must not leave them running (the case would
# never finish).
trap 'touch "$STOP"' EXIT
hammer() {
	local i
	for ((i = 0; i < THREADS; i++)); do
		(while [[ ! -e $STOP ]]; do echo 50 >$T/check; done) &
	done
}

stop_hammer() {
	touch "$STOP"
	wait
	rm -f "$STOP"
}

# cycles PATCH: enable, then disable or reverse mid-transition, CYCLES times.
cycles() {
	local p=$1 s=$LPSHIM_SYSFS/$1 i start
	for ((i = 1; i <= CYCLES; i++)); do
		start=$(date +%s%N)
		insmod "$(module_path "$p")" || fail "insmod $p failed in cycle $i"
		if ((i % 5 == 0)); then
			# reverse while the patching transition runs (or disable if it is already done)
			echo 0 >$s/enabled || fail "echo 0 > $s/enabled failed in cycle $i"
		else
			wait_until 30 "cycle $i: $p is patched" grep -sqx 0 $s/transition
			echo 0 >$s/enabled || fail "echo 0 > $s/enabled failed in cycle $i"
		fi
		wait_until 30 "cycle $i: $p is gone" test ! -e $s
		wait_until 10 "cycle $i: nothing holds $p" grep -sqx 0 /sys/module/$p/refcnt
		rmmod "$p" || fail "rmmod $p failed in cycle $i"
		echo "  $p cycle $i: $((($(date +%s%N) - start) / 1000000)) ms, $(cat $T/check)" >&2
	done
}

run_checker() { # PATCH -> prints "calls mixed"
	echo reset >$T/check
	hammer
	sleep 1
	cycles "$1"
	stop_hammer
	sed -E 's/^calls=([0-9]+) mixed=([0-9]+)$/\1 \2/' $T/check
}

insmod "$(module_path lpshim)"
insmod "$(module_path lpshim_target)"

read -r calls mixed < <(run_checker test_lpshim_consistency)
echo "consistency model: $calls checked calls, $mixed mixed, $THREADS threads, $CYCLES cycles"
((calls > 1000)) || fail "the checker made only $calls calls"
expect_eq "$mixed" 0 "no call mixed versions under the consistency model"

# The negative control: every task switches at once when an immediate patch is enabled or
# disabled, so calls that sleep between their stages at that moment mix versions.
I=test_lpshim_consistency_immediate
echo reset >$T/check
hammer
sleep 1
insmod "$(module_path $I)" || fail "insmod $I failed"
wait_until 30 "$I is patched" grep -sqx 0 $LPSHIM_SYSFS/$I/transition
sleep 1
echo 0 >$LPSHIM_SYSFS/$I/enabled || fail "echo 0 > $I/enabled failed"
wait_until 30 "$I is gone" test ! -e $LPSHIM_SYSFS/$I
sleep 1
stop_hammer
read -r calls mixed < <(sed -E 's/^calls=([0-9]+) mixed=([0-9]+)$/\1 \2/' $T/check)
echo "immediate patch:   $calls checked calls, $mixed mixed"
((mixed > 0)) || fail "the immediate patch produced no mixed call: the checker cannot fail"
ok "the checker catches mixed calls when the consistency model is off ($mixed)"
expect_eq "$(cat /sys/module/$I/refcnt)" 1 "the immediate patch's module stays pinned"
