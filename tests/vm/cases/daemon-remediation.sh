#!/bin/bash
# The remediation ladder of livepatchd (docs/remediation.md), under systemd in the guest: a
# reader asleep in a patched function keeps the transition open; the kick alone, SIGSTOP/SIGCONT
# alone, and the whole ladder each end it, and the reader's read then completes in the patched
# code. With remediation off it stays pending; a process its user stopped is never continued;
# a crash between SIGSTOP and SIGCONT leaves no process stopped once systemd restarted the
# daemon; a parked kthread is reported as one, never signalled, and the stall reverts the patch.
# The signal thread, which times the holds, runs SCHED_FIFO under the unit.
. "$(dirname "$0")/../lib.sh"

C=test_lpshim_consistency
T=/sys/kernel/debug/lpshim_target
CONF=/etc/livepatchd/livepatchd.json
OUT=$(mktemp)
MANAGER=(org.livepatchd.LivePatch1 /org/livepatchd/LivePatch1 org.livepatchd.LivePatch1.Manager)

state_is() { [[ $(busctl get-property "${MANAGER[@]}" State) == "s \"$1\"" ]]; }
patch_state() { livepatchctl --json list | python3 -c "
import json, sys
print(next((p['State'] for p in json.load(sys.stdin) if p['Name'] == sys.argv[1]), 'none'))" "$1"; }
# The STACK= field of livepatchd's latest journal entry that has one (a multi-line field: JSON).
last_journal_stack() {
	journalctl -u livepatchd --no-pager -o json --output-fields=STACK | python3 -c '
import json, sys
stacks = [json.loads(line).get("STACK") for line in sys.stdin]
print(next((s for s in reversed(stacks) if isinstance(s, str)), ""))'
}
proc_state() { awk '{ sub(/.*\) /, ""); print substr($0, 1, 1) }' /proc/$1/stat; }
# On a failure: livepatchd's journal since the case began (its last lines).
on_fail() {
	journalctl -u livepatchd --no-pager -o short-monotonic --since "@$CASE_STARTED" | tail -60 | sed 's/^/# /'
}
CASE_STARTED=$(date +%s)

# configure JSON: restart livepatchd with this remediation configuration.
configure() {
	echo "$1" >$CONF
	systemctl restart livepatchd || { journalctl -u livepatchd --no-pager | tail; fail "livepatchd does not start with $1"; }
}

start_reader() {
	cat /dev/lpshim_target_sleep >"$OUT" &
	READER=$!
	wait_until 10 "the reader sleeps in lpshim_target_sleep" grep -qx 1 $T/sleepers
}

# A release wakes only the tasks asleep at that moment: a reader still on its way back into the
# function (after SIGCONT, or a restarted read) would sleep on, and wait would never return.
release_reader() {
	wait_until 10 "the reader sleeps before its release" grep -qx 1 $T/sleepers
	echo 1 >$T/sleep_release
	wait $READER
}

# ladder_ends_it WHAT CONFIG: with CONFIG, applying C completes while the reader sleeps; the
# reader's read restarts in the patched code.
ladder_ends_it() {
	local what=$1 start end
	echo "# $what"
	configure "$2"
	start_reader
	start=$(date +%s%N)
	livepatchctl apply $C >/dev/null || fail "$what: the apply did not complete"
	end=$(date +%s%N)
	echo "# $what: the transition completed $(((end - start) / 1000000)) ms after the apply"
	expect_eq "$(patch_state $C)" applied "$what: the patch is applied"
	kill -0 $READER || fail "$what: the reader is gone"
	expect_eq "$(proc_state $READER)" S "$what: the reader is asleep again, not stopped"
	wait_until 10 "the restarted read sleeps again" grep -qx 1 $T/sleepers
	release_reader
	expect_eq "$(cat "$OUT")" "woken by v2" "$what: the reader's read completed in the patch"
	livepatchctl revert $C >/dev/null
}

"$(dirname "$0")/../install-livepatchd" "$BUILD"
mkdir -p "$(dirname $CONF)"
echo '{}' >$CONF
systemctl start livepatchd
# The thread that sends the stop rung's signals and times the hold runs SCHED_FIFO at priority
# 2 (the unit's LimitRTPRIO=2 and RestrictRealtime=no; above the loop's 1 during a transition),
# and, with no transition, it alone; also after SIGCONTs, for whose wait it is an ordinary
# thread for a moment.
signal_thread_is_realtime() {
	local main
	main=$(systemctl show -P MainPID livepatchd)
	expect_eq "$(ps -L -o cls=,rtprio= -p "$main" | awk '$1 != "TS"' | sort | uniq -c | awk '{ print $1, $2, $3 }')" \
		"1 FF 2" "$1: one thread of livepatchd runs SCHED_FIFO at priority 2, the others SCHED_OTHER"
	! journalctl -u livepatchd --no-pager -o cat | grep -qE "timed by an ordinary thread|could not return to SCHED_FIFO" ||
		fail "livepatchd says its holds are timed by an ordinary thread"
}
signal_thread_is_realtime "at start"
insmod "$(module_path lpshim_target)"
livepatchctl install "$(module_path $C)" >/dev/null

ladder_ends_it "the whole ladder" '{"transition": {"stall_timeout_ms": 20000}}'
ladder_ends_it "the kick alone" \
	'{"transition": {"stall_timeout_ms": 20000}, "remediation": {"stop_continue": {"enabled": false}}}'
ladder_ends_it "SIGSTOP/SIGCONT alone" \
	'{"transition": {"stall_timeout_ms": 20000}, "remediation": {"kick": {"enabled": false}}}'
signal_thread_is_realtime "after a hold"
journalctl -u livepatchd --no-pager -o cat | grep -q "stopping process $READER (cat, .*) for 50 ms: task $READER is asleep in lpshim_target_sleep" ||
	fail "no journal entry for the SIGSTOP of the reader"
ok "the journal names the stopped process, its unit and the function"
expect_match "$(last_journal_stack)" "lpshim_target_sleep\+0x[0-9a-f]+/0x[0-9a-f]+ \[lpshim_target\]" \
	"the SIGSTOP's journal entry carries the reader's symbolised kernel stack"

echo "# a hold that outlasts the transition"
# The loop hears of a stop with its SIGCONT: with a 3 s hold, lpshim's next pass switches the
# stopped reader and ends the transition first. The stop is reported all the same.
configure '{"transition": {"stall_timeout_ms": 60000}, "remediation": {"kick": {"enabled": false}, "stop_continue": {"hold_ms": 3000}}}'
SIGNALS=$(mktemp)
livepatchctl --json watch >"$SIGNALS" &
WATCH=$!
sleep 1
start_reader
livepatchctl apply $C >/dev/null || fail "a 3 s hold: the apply did not complete"
expect_eq "$(proc_state $READER)" T "a 3 s hold: the transition completes while the reader is held"
reader_remediated() { [[ $(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("Signal") == "TaskRemediated":
        print(d["TGID"], d["Action"])' "$SIGNALS") == "$READER stop-continue" ]]; }
wait_until 10 "TaskRemediated(stop-continue) for the reader" reader_remediated
ok "a hold that outlasts the transition: one TaskRemediated for the reader once it is continued"
kill $WATCH 2>/dev/null || true
rm -f "$SIGNALS"
release_reader
livepatchctl revert $C >/dev/null

echo "# remediation off"
configure '{"transition": {"stall_timeout_ms": 60000}, "remediation": {"enabled": false}}'
start_reader
livepatchctl apply --no-block $C
sleep 3
expect_eq "$(patch_state $C)" applying "remediation off: the transition stays open"
release_reader
wait_until 20 "the transition completes once the reader left" state_is idle
livepatchctl revert $C >/dev/null

echo "# a process its user stopped"
configure '{"transition": {"stall_timeout_ms": 60000}, "remediation": {"kick": {"enabled": false}}}'
start_reader
kill -STOP $READER
# A stopped reader is out of the function already: the transition completes; what matters is
# that nobody continued it.
livepatchctl apply --no-block $C
wait_until 20 "the transition completes" state_is idle
sleep 1
expect_eq "$(proc_state $READER)" T "the process its user stopped is still stopped"
kill -CONT $READER
release_reader
livepatchctl revert $C >/dev/null

echo "# a crash between SIGSTOP and SIGCONT"
mkdir -p /run/systemd/system/livepatchd.service.d
printf '[Service]\nEnvironment=LIVEPATCHD_FAULT_KILL_AFTER_STOP=1\n' \
	>/run/systemd/system/livepatchd.service.d/fault.conf
systemctl daemon-reload
# The crash comes on the signal thread right after the SIGSTOP (the loop hears of a stop only
# after its SIGCONT). A long hold: a crash point moved after the SIGCONT would leave nothing to
# continue, and the check below would fail.
configure '{"transition": {"stall_timeout_ms": 60000}, "remediation": {"kick": {"enabled": false}, "stop_continue": {"hold_ms": 10000}}}'
start_reader
livepatchctl apply --no-block $C
wait_until 20 "livepatchd crashed after the SIGSTOP" \
	sh -c "journalctl -u livepatchd --no-pager -o cat | grep -q 'continued process $READER'"
ok "livepatchd.service (its ExecStopPost or its restart) continued the process its crashed daemon stopped"
rm /run/systemd/system/livepatchd.service.d/fault.conf
systemctl daemon-reload
configure '{"transition": {"stall_timeout_ms": 60000}, "remediation": {"kick": {"enabled": false}}}'
wait_until 20 "the transition completes" state_is idle
expect_eq "$(proc_state $READER)" S "the reader is not left stopped"
release_reader
livepatchctl revert $C >/dev/null

# ExecStopPost (livepatchd --continue-stopped) exits as soon as it has said what it continued;
# journald names a message's unit from its sender's cgroup, unless the message came on the
# unit's stream. A journald that reads the message late (stopped here; busy in production) must
# still file it under livepatchd.service, where the operator and the check above look.
echo "# ExecStopPost's word, read by journald after it exited"
sleep 1000 &
SLEEPER=$!
journald=$(systemctl show -P MainPID systemd-journald)
[[ $journald -gt 1 ]] || fail "systemd-journald's MainPID is '$journald'"
# Whatever ends the case: journald running, the sleeper gone, its record too.
trap 'kill -CONT $journald $SLEEPER 2>/dev/null; kill $SLEEPER 2>/dev/null; rm -f /var/lib/livepatchd/stopped/$SLEEPER.*' EXIT
kill -STOP $SLEEPER
wait_until 10 "the sleeper is stopped" sh -c "[ \"\$(awk '{ sub(/.*\) /, \"\"); print substr(\$0, 1, 1) }' /proc/$SLEEPER/stat)\" = T ]"
start_time=$(awk '{ sub(/.*\) /, ""); split($0, f, " "); print f[20] }' /proc/$SLEEPER/stat)
: >/var/lib/livepatchd/stopped/$SLEEPER.$start_time
kill -STOP "$journald"
stopped=0
timeout 60 systemctl stop livepatchd || stopped=$?
kill -CONT "$journald"
((stopped == 0)) || fail "systemctl stop livepatchd failed ($stopped) while journald was stopped"
journalctl --sync
expect_eq "$(proc_state $SLEEPER)" S "ExecStopPost continued the process on record"
journalctl -u livepatchd --no-pager -o cat | grep -q "continued process $SLEEPER," ||
	fail "journalctl -u livepatchd does not show ExecStopPost's 'continued process $SLEEPER'"
ok "journalctl -u livepatchd shows what ExecStopPost continued, though journald read it late"
kill $SLEEPER && wait $SLEEPER 2>/dev/null || true
trap - EXIT

echo "# a parked kthread"
configure '{"transition": {"stall_timeout_ms": 5000, "on_stall": "revert"}}'
echo 1 >$T/kthread_park
wait_until 10 "the kthread is parked" grep -qx 1 $T/kthread_park
kthread=$(pgrep -x lpshim_tgt_park)
livepatchctl apply --no-block $C
kthread_refused() { livepatchctl blocking -v | grep -q "not stopped: it is a kernel thread"; }
wait_until 10 "the ladder has looked at the kthread" kthread_refused
blocking=$(livepatchctl blocking -v)
echo "$blocking" | sed 's/^/# /'
expect_match "$blocking" $'(^|\n)'"$kthread +$kthread +lpshim_tgt_park +kthread +sleeping-in-function +[0-9.]+s +lpshim_target_kthread_park \\[lpshim_target\\]" \
	"livepatchctl blocking lists the kthread as kind kthread, blocked in its function"
wait_until 20 "the stall reverted the patch" sh -c "livepatchctl --json list | grep -q '\"State\": \"installed\"'"
expect_eq "$(patch_state $C)" installed "the stall reverted the patch"
journalctl -u livepatchd --no-pager -o cat | grep -q "task $kthread (lpshim_tgt_park, kthread) blocks the transition in lpshim_target_kthread_park.*; not stopped: it is a kernel thread" ||
	fail "the parked kthread is not reported as a kthread"
ok "the parked kthread is reported as a kthread, not stopped"
expect_match "$(last_journal_stack)" "lpshim_target_kthread_park\+0x[0-9a-f]+/0x[0-9a-f]+ \[lpshim_target\]" \
	"the kthread's journal entry carries its symbolised kernel stack"
journalctl -u livepatchd --no-pager -o cat | grep -q "has not completed after 5000 ms; on_stall is revert" ||
	fail "the stall is not reported"
ok "the stall and its outcome are reported"
echo 0 >$T/kthread_park

livepatchctl remove $C >/dev/null
systemctl stop livepatchd
rmmod lpshim_target
wait_until 10 "nothing holds lpshim" grep -sqx 0 /sys/module/lpshim/refcnt
rmmod lpshim
