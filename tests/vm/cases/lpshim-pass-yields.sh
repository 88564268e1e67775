#!/bin/bash
# A pass of the transition work gives the CPU to a task that waits for it while it walks many
# pending tasks (issue 18). A pass walked every task under tasklist_lock, preemption off: with
# 30,000 pending tasks under TCG it held its CPU for 250 ms and more, while livepatchd's event
# loop waited on that CPU's queue and the other CPU sat idle.
#
# 3,000 threads asleep in a patched function keep a transition open, a CPU-bound process on
# each CPU always wants the CPU, and the sched trace must show the pass's worker switched out
# runnable between two tasks it found blocked in one pass (the attempt number of its
# lpshim_task_blocked events). Once the sleepers are gone the transition completes, with no
# walk under tasklist_lock.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

P=test_lpshim_consistency
S=$LPSHIM_SYSFS/$P
T=/sys/kernel/debug/lpshim_target
TOOLS=$BUILD/tests/vm/tools
TRACE=/sys/kernel/tracing/instances/lpshim-pass-yields
N=3000

hogs=() sleepers=
cleanup() {
	((${#hogs[@]} == 0)) || kill "${hogs[@]}" 2>/dev/null
	[[ -z $sleepers ]] || kill "$sleepers" 2>/dev/null
	[[ ! -d $TRACE ]] || { echo 0 >$TRACE/tracing_on; rmdir $TRACE 2>/dev/null; }
}
trap cleanup EXIT

lpshim_setup
load_mod lpshim_target
[[ -d /sys/kernel/tracing/instances ]] || mount -t tracefs nodev /sys/kernel/tracing

out=$(mktemp)
"$TOOLS/sleepers" $N /dev/lpshim_target_sleep >"$out" &
sleepers=$!
wait_until 300 "$N threads exist" grep -qx ready "$out"
wait_until 300 "$N threads sleep in lpshim_target_sleep" sh -c "[ \$(cat $T/sleepers) -ge $N ]"

# The pass's worker leaving the CPU, and each task a pass finds asleep in the function.
mkdir $TRACE
echo 'prev_comm ~ "kworker/*"' >$TRACE/events/sched/sched_switch/filter
echo 1 >$TRACE/events/sched/sched_switch/enable
for cpu in $(seq 0 $(($(nproc) - 1))); do
	taskset -c "$cpu" sh -c 'while :; do :; done' &
	hogs+=($!)
done
load_lp_nowait $P
echo 'reason == 2' >$TRACE/events/lpshim/lpshim_task_blocked/filter
echo 1 >$TRACE/events/lpshim/lpshim_task_blocked/enable
# Passes from the second on (the first may have begun before the trace): the retry period
# grows from 10 ms; 6 s is a dozen passes or more.
sleep 6
echo 0 >$TRACE/tracing_on
kill "${hogs[@]}"
wait "${hogs[@]}" 2>/dev/null || true
hogs=()
expect_eq "$(cat $S/transition)" 1 "the transition is held open by the sleepers"

# The yields of a pass's worker between two of its blocked events of the same attempt.
# A worker is known by its pid, from its sched_switch lines (prev_comm is the task's own; the
# comm before each line comes from a cache of 128 and may read "<...>").
read -r passes yields < <(awk '
	match($0, /-[0-9]+ +\[/) { pid = substr($0, RSTART + 1, RLENGTH - 2) + 0 }
	/ sched_switch: / { worker[pid] = 1 }
	/ lpshim_task_blocked: / && (pid in worker) {
		match($0, /attempt=[0-9]+/)
		attempt = substr($0, RSTART + 8, RLENGTH - 8) + 0
		if (!((pid, attempt) in seen)) { seen[pid, attempt] = 1; passes++ }
		if (pid in yielded && yielded[pid] == attempt) yields++
		last[pid] = attempt
		delete yielded[pid]
	}
	/ sched_switch: / && / prev_state=R/ && (pid in last) { yielded[pid] = last[pid] }
	END { print passes + 0, yields + 0 }' $TRACE/trace)
echo "# $passes passes traced, the worker gave up the CPU $yields times within one"
((passes >= 2)) || fail "only $passes passes found the sleepers blocked while traced"
((yields >= 1)) || fail "no pass gave the CPU to the CPU-bound processes while it walked $N pending tasks"
ok "a pass over $N pending tasks gives up the CPU to tasks that wait for it"
rmdir $TRACE

# Killed (released, the threads would read again at once, all 3,000 of them spinning), they
# leave the function and exit. The pass that then finds every task switched completes the
# transition from its walk under RCU and lpshim's count of entries per state: it does not walk
# all tasks again under tasklist_lock, preemption off, as upstream does (and lpshim did: with
# 30,000 tasks under TCG that walk took livepatchd's CPU for 150 ms). Only a task created
# without an entry during the pass would need that walk; none is here.
walks() { sed -n 's/^tasklist_walks \([0-9]*\)$/\1/p' /sys/kernel/debug/lpshim/stats; }
walks_before=$(walks)
[[ -n $walks_before ]] || fail "lpshim's stats have no tasklist_walks line: $(cat /sys/kernel/debug/lpshim/stats)"
kill $sleepers
wait $sleepers 2>/dev/null || true
sleepers=
wait_until 120 "the transition completes once the sleepers are gone" grep -sqx 0 $S/transition
ok "the sleepers gone, the transition completes"
expect_eq "$(walks)" "$walks_before" "walks of all tasks under tasklist_lock while the transition completed"
disable_lp $P
unload_mod $P
unload_mod lpshim_target
lpshim_teardown
