#!/bin/bash
# lpshim_target.ko loads and unloads cleanly, and each of its observation channels works with the
# original functions (docs/test-target.md). Later cases rely on every channel checked here.
. "$(dirname "$0")/../lib.sh"

dbg=/sys/kernel/debug/lpshim_target
ko=$(module_path lpshim_target)

kmsg_mark
insmod "$ko"
expect_kmsg '^lpshim_target:' <<<'lpshim_target: loaded'

expect_eq "$(cat $dbg/version)" original "version reads the original"

bench=$(echo 100000 >$dbg/bench && cat $dbg/bench)
expect_match "$bench" '^calls=100000 ns_per_call=[0-9]+\.[0-9]{3} twin_ns_per_call=[0-9]+\.[0-9]{3} overhead_ns=-?[0-9]+\.[0-9]{3} overhead_per_twin=-?[0-9]+\.[0-9]{3} version_delta=0$' "bench runs the original"
[[ $bench != *"ns_per_call=0.000"* ]] || fail "bench reported 0 ns per call"

# A reader sleeps inside lpshim_target_sleep until released, then reports the version.
out=$(mktemp)
cat /dev/lpshim_target_sleep >"$out" &
reader=$!
wait_until 10 "the reader sleeps in lpshim_target_sleep" grep -qx 1 $dbg/sleepers
expect_match "$(cat /proc/$reader/stack)" 'lpshim_target_sleep\+' "the reader's stack shows lpshim_target_sleep"
expect_eq "$(awk '/^State:/ {print $2}' /proc/$reader/status)" S "the reader sleeps interruptibly"
echo 1 >$dbg/sleep_release
wait $reader
expect_eq "$(cat "$out")" "woken by original" "the released reader reads the original tag"
expect_eq "$(cat $dbg/sleepers)" 0 "no sleeper is left"

# SIGSTOP moves a sleeper out of the function; SIGCONT puts it back (the restart is transparent).
cat /dev/lpshim_target_sleep >"$out" &
reader=$!
wait_until 10 "the second reader sleeps" grep -qx 1 $dbg/sleepers
kill -STOP $reader
wait_until 10 "the stopped reader leaves lpshim_target_sleep" grep -qx 0 $dbg/sleepers
kill -CONT $reader
wait_until 10 "the continued reader sleeps again" grep -qx 1 $dbg/sleepers
ok "SIGSTOP takes the reader out of lpshim_target_sleep, SIGCONT puts it back"

# While the device is open the module cannot go away.
if rmmod lpshim_target 2>/dev/null; then fail "rmmod succeeded while a reader sleeps in the module"; fi
ok "rmmod is refused while a reader sleeps"
echo 1 >$dbg/sleep_release
wait $reader

# The park kthread sleeps inside lpshim_target_kthread_park until unparked.
park_pid=$(pgrep -x lpshim_tgt_park)
echo 1 >$dbg/kthread_park
wait_until 10 "the kthread is parked" grep -qx 1 $dbg/kthread_park
expect_match "$(cat /proc/$park_pid/stack)" 'lpshim_target_kthread_park\+' "the parked kthread's stack shows the target"
echo 0 >$dbg/kthread_park
wait_until 10 "the kthread is unparked" grep -qx 0 $dbg/kthread_park
[[ $(cat /proc/$park_pid/stack) != *lpshim_target_kthread_park* ]] || fail "the unparked kthread is still in the target"
ok "the unparked kthread left the target"

# The busy kthread makes progress while started and stops when told.
echo 1 >$dbg/kthread_busy
before=$(cat $dbg/busy_loops)
wait_until 10 "the busy kthread loops" test "$(cat $dbg/busy_loops)" -gt "$before"
echo 0 >$dbg/kthread_busy
wait_until 10 "the busy kthread stops" grep -qx 0 $dbg/kthread_busy
stopped=$(cat $dbg/busy_loops)
sleep 0.3
expect_eq "$(cat $dbg/busy_loops)" "$stopped" "the stopped busy kthread makes no progress"

# The consistency checker counts every call and, with the originals only, no mixed call.
echo reset >$dbg/check
for _ in 1 2 3 4; do echo 250 >$dbg/check & done
wait
expect_eq "$(cat $dbg/check)" "calls=1000 mixed=0" "check counts 1000 consistent calls from 4 writers"

# Bad input is refused and changes nothing.
for bad in 0 -1 abc 100000001 "1 2"; do
	if echo "$bad" >$dbg/bench 2>/dev/null; then fail "bench accepted '$bad'"; fi
done
ok "bench refuses bad input"

kmsg_mark
rmmod lpshim_target
expect_kmsg '^lpshim_target:' <<<'lpshim_target: unloaded'
[[ ! -e $dbg && ! -e /dev/lpshim_target_sleep ]] || fail "debugfs or the device is left after unload"
ok "nothing is left after unload"
