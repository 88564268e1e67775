#!/bin/bash
# transition.on_stall: revert in both directions, as TransitionFinished reports it (issue 18):
# a parked kthread (root's, never signalled) asleep in a patched function stalls the
# transition; a stalled apply goes back (outcome reversed, the patch installed), and a stalled
# revert goes back too (outcome reversed, the patch stays applied), where it used to wait for
# ever while the journal said "on_stall is revert". Every transition gets exactly one
# TransitionFinished. (on_stall: force pins lpshim for good, so it is not run in this boot:
# the bus and unit tests cover Forced.) Last, slow reads and writes of the kernel's patches
# (a Revert's, a Kick's, the ladder's kicks, the stall's reversal) and slow reads of the
# blockers' /proc do not hold the event loop.
. "$(dirname "$0")/../lib.sh"

C=test_lpshim_consistency
T=/sys/kernel/debug/lpshim_target
CONF=/etc/livepatchd/livepatchd.json
DROPIN=/run/systemd/system/livepatchd.service.d/slow-kernel-read.conf
SIGNALS=$(mktemp)
MANAGER=(org.livepatchd.LivePatch1 /org/livepatchd/LivePatch1 org.livepatchd.LivePatch1.Manager)

state_is() { [[ $(busctl get-property "${MANAGER[@]}" State) == "s \"$1\"" ]]; }
patch_state() { livepatchctl --json list | python3 -c "
import json, sys
print(next((p['State'] for p in json.load(sys.stdin) if p['Name'] == sys.argv[1]), 'none'))" "$1"; }
# "PATCH TARGET OUTCOME" of every TransitionFinished that livepatchctl watch printed so far.
finished_list() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("Signal") == "TransitionFinished":
        print(d["Patch"], d["Target"], d["Outcome"])' "$SIGNALS"; }
finished() { finished_list | wc -l; }
finished_is() { [[ $(finished) == "$1" ]]; }
# loop_policy: the scheduling policy of livepatchd's event loop (its main thread), as chrt says it.
loop_policy() { chrt -p "$(systemctl show -p MainPID --value livepatchd)" | head -n1 | sed 's/.*: //'; }
loop_policy_is() { [[ $(loop_policy) == "$1" ]]; }

"$(dirname "$0")/../install-livepatchd" "$BUILD"
mkdir -p "$(dirname $CONF)"
echo '{"transition": {"stall_timeout_ms": 3000, "on_stall": "revert"}}' >$CONF
systemctl start livepatchd
insmod "$(module_path lpshim_target)"
livepatchctl install "$(module_path $C)" >/dev/null
livepatchctl --json watch >"$SIGNALS" &
WATCH=$!
# Under set -e a failing trap is the script's exit status: the watcher may be gone already.
trap 'kill $WATCH 2>/dev/null || true; rm -f $CONF $DROPIN; systemctl daemon-reload' EXIT
sleep 1

echo "# a stalled apply"
echo 1 >$T/kthread_park
wait_until 10 "the kthread is parked" grep -qx 1 $T/kthread_park
expect_eq "$(loop_policy)" SCHED_OTHER "the event loop is an ordinary thread while no transition runs"
livepatchctl apply --no-block $C
# Tens of thousands of tasks woken at once would keep an ordinary loop from a CPU (issue 18).
wait_until 3 "the event loop runs SCHED_FIFO while the transition lasts" \
	loop_policy_is "SCHED_FIFO|SCHED_RESET_ON_FORK"
ok "the event loop runs SCHED_FIFO while the transition lasts: $(loop_policy)"
wait_until 30 "the stall reverted the apply" finished_is 1
# Lowering keeps SCHED_RESET_ON_FORK: only CAP_SYS_NICE, which the unit does not have, clears it.
wait_until 3 "the event loop is an ordinary thread again after the transition" \
	loop_policy_is "SCHED_OTHER|SCHED_RESET_ON_FORK"
ok "the event loop is an ordinary thread again after the transition"
expect_eq "$(patch_state $C)" installed "the stalled apply was reversed"
sleep 1
expect_eq "$(finished_list)" "$C patched reversed" "TransitionFinished: the transition to patched, reversed"
expect_eq "$(finished)" 1 "one TransitionFinished for the stalled apply"
echo 0 >$T/kthread_park
wait_until 10 "the kthread is unparked" grep -qx 0 $T/kthread_park

echo "# a stalled revert"
livepatchctl apply $C >/dev/null || fail "the apply did not complete"
sleep 1
expect_eq "$(finished_list | tail -n1)" "$C patched completed" "TransitionFinished: completed"
expect_eq "$(finished)" 2 "one TransitionFinished for the apply"
echo 1 >$T/kthread_park
wait_until 10 "the kthread is parked in the patched function" grep -qx 1 $T/kthread_park
livepatchctl revert --no-block $C
wait_until 30 "the stall reversed the revert" finished_is 3
expect_eq "$(patch_state $C)" applied "the stalled revert was reversed: the patch stays applied"
sleep 1
expect_eq "$(finished_list | tail -n1)" "$C unpatched reversed" \
	"TransitionFinished: the transition to unpatched, reversed"
expect_eq "$(finished)" 3 "one TransitionFinished for the stalled revert"
journalctl -u livepatchd --no-pager -o cat | grep -q "the stalled revert is reversed (on_stall is revert)" ||
	fail "the journal does not say the revert was reversed"
ok "the journal says the stalled revert was reversed"
echo 0 >$T/kthread_park
wait_until 10 "the kthread is unparked" grep -qx 0 $T/kthread_park

livepatchctl revert $C >/dev/null || fail "the revert did not complete"
sleep 1
expect_eq "$(finished)" 4 "one TransitionFinished for the revert"
sed 's/^/# /' "$SIGNALS"

echo "# slow reads and writes of the kernel and of the blockers' /proc do not hold the loop"
# A test build sleeps 300 ms in each tick's read of lpshim's sysfs and before each read of a
# blocker's /proc for the stall's decision (LIVEPATCHD_FAULT_DELAY_AT), as one such read took
# 243 ms, and one look's reads of /proc 82 ms, at 30,000 pending tasks under emulation: the loop
# serves on meanwhile, and a stalled apply is still followed and reversed. (lpshim's transition
# events and a transition's start read the kernel's patches no more: an atomic replace's end
# knows what it replaced from the desired order.) So it does before a Revert's and a Kick's
# writes to lpshim, as a Revert took 105 ms right after 30,000 pending tasks exited, and before
# the remediation ladder's kicks and the stall's reversal; and before each write of the
# transition's record (transition.json, written at each start and reversal), and before
# each removal of an unpatched patch's module; and before the heap's trim at a transition's end
# (malloc_trim() gives back the memory of the looks' lists: 79 ms in the kernel at 30,000
# pending tasks, s57); and before livepatchd's stop asks systemd whether the system is stopping
# (a synchronous call to PID 1, then the clean shutdown's synced save: s65's 76 ms dispatch).
mkdir -p "$(dirname $DROPIN)"
printf '[Service]\nEnvironment=LIVEPATCHD_FAULT_DELAY_AT=tick-reads-kernel:300,stall-reads-facts:300,revert-writes-kernel:300,kick-writes-kernel:300,ladder-kicks-kernel:300,stall-writes-kernel:300,transition-record-writes:300,unload-writes-kernel:300,pending-lists-trim:300,stop-asks-systemd:300\n' >$DROPIN
# At debug level, the loop's dispatches of 20 ms or more are logged with their DISPATCH_USEC.
echo '{"log": {"level": "debug"}, "transition": {"stall_timeout_ms": 3000, "on_stall": "revert"}}' >$CONF
systemctl daemon-reload
cursor=$(journalctl -u livepatchd -n 1 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
systemctl restart livepatchd
echo 1 >$T/kthread_park
wait_until 10 "the kthread is parked in the patched function" grep -qx 1 $T/kthread_park
livepatchctl apply --no-block $C
busctl call "${MANAGER[@]}" Kick >/dev/null || fail "Kick during the stalled apply failed"
reversed() {
	journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor" |
		grep -q "^$C: transition to patched reversed after"
}
wait_until 60 "the stall reversed the apply" reversed
expect_eq "$(patch_state $C)" installed "with slow reads, the stalled apply was reversed"
echo 0 >$T/kthread_park
wait_until 10 "the kthread is unparked" grep -qx 0 $T/kthread_park
livepatchctl apply $C >/dev/null || fail "the apply did not complete"
livepatchctl revert $C >/dev/null || fail "the revert did not complete"
expect_eq "$(patch_state $C)" installed "with slow writes, the revert completed"
# The reverted patch's module is removed at a later tick (delete_module() waits for the kernel:
# 30 ms of the loop and two sleeps under emulation; delayed 300 ms here): the second removal
# since the restart (the first, after the stalled apply's reversal, came before the apply).
removals() {
	journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor" | grep -cx "$C: module removed"
}
removed_twice() { (($(removals) >= 2)); }
wait_until 30 "livepatchd removed the reverted patch's module" removed_twice
# Its stop, measured with the rest (its last dispatch is logged too).
systemctl stop livepatchd
# Each delay was reached (a test build says so after it slept): the writes measured are the
# ones delayed.
for point in tick-reads-kernel stall-reads-facts revert-writes-kernel kick-writes-kernel \
	ladder-kicks-kernel stall-writes-kernel transition-record-writes unload-writes-kernel \
	pending-lists-trim stop-asks-systemd; do
	journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor" |
		grep -q "^fault point $point: delayed 300 ms" ||
		fail "livepatchd never reached its fault point $point (delayed 300 ms)"
done
ok "every slow read and write was reached and delayed"
# The stop's question was answered (after the loop: the bus must still be open then).
journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor" |
	grep -qx "at livepatchd's stop, systemd's state is running" ||
	fail "livepatchd's stop did not learn systemd's state: $(journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor" | grep "cannot ask systemd" | tail -1)"
ok "livepatchd's stop asked systemd whether the system is stopping, and was answered"
# The longest dispatch of the loop since the restart, how many were logged (the first is
# always: the longest so far), and the longest tick, its read of the kernel included (TICK_USEC:
# the delay did happen).
read -r longest logged tick < <(journalctl -u livepatchd --no-pager --after-cursor="$cursor" \
	-o json --output-fields=DISPATCH_USEC,TICK_USEC | python3 -c '
import json, sys
entries = [json.loads(line) for line in sys.stdin]
took = [int(e["DISPATCH_USEC"]) for e in entries if e.get("DISPATCH_USEC")]
ticks = [int(e["TICK_USEC"]) for e in entries if e.get("TICK_USEC")]
print(max(took, default=0), len(took), max(ticks, default=0))')
((logged > 0)) || fail "livepatchd logged no DISPATCH_USEC line at debug level"
((tick >= 300000)) || fail "no tick took the 300 ms delay (the longest: $((tick / 1000)) ms): was it set?"
if ((longest >= 300000)); then
	journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor" |
		grep "dispatch took [0-9]\{6,\} us\|the tick took" | tail -20 | sed 's/^/# /'
	fail "an event loop dispatch took $((longest / 1000)) ms while livepatchd read or wrote the kernel's patches, read /proc, wrote its transition record or asked systemd at its stop"
fi
ok "no event loop dispatch waited for a slow read or write of the kernel's patches, a read of /proc, a write of the transition record or the stop's question to systemd ($((longest / 1000)) ms the longest)"
rm -f $DROPIN
systemctl daemon-reload
systemctl restart livepatchd
# lpshim frees an unpatched patch asynchronously, and livepatchd unloads its module at its next
# look: Remove may still find it applied for a moment.
remove_patch() { livepatchctl remove $C >/dev/null; }
wait_until 10 "the patch can be removed" remove_patch
systemctl stop livepatchd
rmmod lpshim_target
wait_until 10 "nothing holds lpshim" grep -sqx 0 /sys/module/lpshim/refcnt
rmmod lpshim
