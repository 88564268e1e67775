#!/bin/bash
# livepatchd when things go wrong (issue 17), under systemd in the guest:
#  - SIGTERM or SIGKILL during a SIGSTOP hold, and a restart that then fails (a configuration
#    typo, an unreadable store) or finds a damaged stopped.json: no process stays stopped 2 s
#    after the restart;
#  - a clock step of -1 h and +1 h during a transition changes no decision, and a step does
#    not mark a patch as having survived the crash-loop guard;
#  - a store file changed after install is refused at Apply and at the boot apply with the
#    named error Tampered, and the boot apply stacks nothing above a refused patch;
#  - an unprivileged user's process with a command name that is not UTF-8 and holds an escape
#    sequence neither breaks ListPendingTasks nor reaches the terminal raw, and nobody but
#    root (or whom polkit allows) gets kernel stacks;
#  - the stop rung stops a multi-threaded process whose blocked task is not its leader, and
#    never a process of another pid namespace;
#  - an unprivileged user's task asleep uninterruptibly in a patched function (as on a FUSE
#    mount of their own that never answers) does not make the stall revert the patch.
# SECTIONS="a b" runs only those sections (for running the case on an older build).
. "$(dirname "$0")/../lib.sh"

C=test_lpshim_consistency
E=lpshim_example_cmdline
V1=lpshim_example_target_v1
T=/sys/kernel/debug/lpshim_target
CONF=/etc/livepatchd/livepatchd.json
STATE=/var/lib/livepatchd
MANAGER=(org.livepatchd.LivePatch1 /org/livepatchd/LivePatch1 org.livepatchd.LivePatch1.Manager)
E_LINE="$E: this has been live patched"
HOLD='{"transition": {"stall_timeout_ms": 120000}, "remediation": {"kick": {"enabled": false}, "stop_continue": {"after_ms": 0, "hold_ms": 10000}}}'
OUT=$(mktemp)

state_is() { [[ $(busctl get-property "${MANAGER[@]}" State) == "s \"$1\"" ]]; }
patch_field() { livepatchctl --json list | python3 -c "
import json, sys
print(next((p.get(sys.argv[2], '') for p in json.load(sys.stdin) if p['Name'] == sys.argv[1]), 'none'))" "$1" "$2"; }
patch_state() { patch_field "$1" State; }
proc_state() { awk '{ sub(/.*\) /, ""); print substr($0, 1, 1) }' /proc/$1/stat 2>/dev/null || echo gone; }
not_stopped() { [[ $(proc_state "$1") != T ]]; }
is_stopped() { [[ $(proc_state "$1") == T ]]; }
desired_field() { python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
print(next(p[sys.argv[3]] for p in d['patches'] if p['name'] == sys.argv[2]))" $STATE/desired.json "$1" "$2"; }
journal_has() { journalctl -u livepatchd --no-pager -o cat | grep -q -- "$1"; }

configure() {
	echo "$1" >$CONF
	systemctl reset-failed livepatchd 2>/dev/null || true
	systemctl restart livepatchd || { journalctl -u livepatchd --no-pager | tail; fail "livepatchd does not start with $1"; }
}

start_reader() { # [COMMAND...]: a reader asleep in lpshim_target_sleep; READER is its pid
	local before
	before=$(cat $T/sleepers)
	if (($#)); then "$@" >"$OUT" & else cat /dev/lpshim_target_sleep >"$OUT" & fi
	READER=$!
	wait_until 10 "the reader sleeps in lpshim_target_sleep" sh -c "[ \$(cat $T/sleepers) -gt $before ]"
}

release_reader() {
	kill -CONT $READER 2>/dev/null || true
	wait_until 10 "the reader sleeps before its release" sh -c "[ \$(cat $T/sleepers) -gt 0 ]"
	echo 1 >$T/sleep_release
	wait $READER || true
}

revert_c() {
	wait_until 30 "the transition of $C ends" state_is idle
	[[ $(patch_state $C) == applied ]] && livepatchctl revert $C >/dev/null
	wait_until 10 "the module of $C is removed" test ! -e /sys/module/$C
}

# hold_then WHAT ACTION...: the reader stopped by the stop rung for 10 s, then ACTION.
hold_reader() {
	configure "$HOLD"
	start_reader
	livepatchctl apply --no-block $C
	wait_until 10 "the stop rung stopped the reader" is_stopped $READER
}

# -------------------------------------------------------------------------------------------
sigterm_during_hold() {
	echo "# SIGTERM during a hold"
	hold_reader
	systemctl stop livepatchd
	wait_until 2 "the reader is continued within 2 s of the stop" not_stopped $READER
	ok "SIGTERM during a SIGSTOP hold: the process is continued"
	systemctl start livepatchd
	release_reader
	revert_c
}

# sigkill_then_broken WHAT BREAK REPAIR: SIGKILL during a hold, BREAK before systemd restarts
# the service; the restarted (failing) livepatchd still continues the reader within 2 s.
sigkill_then_broken() {
	local what=$1 break=$2 repair=$3
	echo "# SIGKILL during a hold, then $what"
	hold_reader
	systemctl kill -s SIGKILL livepatchd
	eval "$break"
	# RestartSec=1s, then at most 2 s.
	wait_until 3 "the reader is continued within 2 s of the restart ($what)" not_stopped $READER
	ok "SIGKILL during a hold, then $what: the process is continued"
	eval "$repair"
	systemctl reset-failed livepatchd 2>/dev/null || true
	systemctl restart livepatchd || { journalctl -u livepatchd --no-pager | tail; fail "livepatchd does not start after the repair"; }
	release_reader
	revert_c
}

sigkill_bad_config() {
	sigkill_then_broken "a configuration typo" \
		"echo '{\"transition\": {\"stal_timeout_ms\": 1}}' >$CONF" "echo '{}' >$CONF"
}

sigkill_damaged_record() {
	sigkill_then_broken "a damaged stopped.json" \
		"printf '{\"stopped\": [{\"pid\": 12' >$STATE/stopped.json; if [ -d $STATE/stopped ]; then : >$STATE/stopped/garbage; fi" \
		"rm -f $STATE/stopped.json* $STATE/stopped/garbage; echo '{}' >$CONF"
}

sigkill_unreadable_store() {
	sigkill_then_broken "an unreadable patch store" \
		"mv $STATE/patches $STATE/patches.away; : >$STATE/patches" \
		"rm $STATE/patches; mv $STATE/patches.away $STATE/patches; echo '{}' >$CONF"
}

# -------------------------------------------------------------------------------------------
clock_steps() {
	echo "# clock steps during a transition"
	configure '{"transition": {"stall_timeout_ms": 20000, "on_stall": "revert"}, "remediation": {"enabled": false}}'
	start_reader
	livepatchctl apply --no-block $C
	wait_until 10 "State is transitioning" state_is transitioning
	date -s '-1 hour' >/dev/null
	sleep 2
	expect_eq "$(patch_state $C)" applying "a clock step of -1 h: the transition is still under way"
	state_is transitioning || fail "a clock step of -1 h: State is $(busctl get-property "${MANAGER[@]}" State)"
	date -s '+2 hours' >/dev/null
	sleep 2
	expect_eq "$(patch_state $C)" applying "a clock step of +1 h: the transition is still under way"
	state_is transitioning || fail "a clock step of +1 h: State is $(busctl get-property "${MANAGER[@]}" State)"
	date -s '-1 hour' >/dev/null
	release_reader
	wait_until 20 "the transition completes" state_is idle
	expect_eq "$(patch_state $C)" applied "the patch is applied once the reader left"
	livepatchctl revert $C >/dev/null
}

clock_step_crash_guard() {
	echo "# a clock step and the crash-loop guard"
	configure '{"boot": {"crash_guard_seconds": 300}}'
	livepatchctl install "$(module_path $E)" >/dev/null
	livepatchctl apply $E >/dev/null
	expect_eq "$(desired_field $E survived_guard)" False "right after the apply, the guard's window is open"
	date -s '+1 hour' >/dev/null
	systemctl restart livepatchd
	sleep 2
	local survived
	survived=$(desired_field $E survived_guard)
	date -s '-1 hour' >/dev/null
	expect_eq "$survived" False "a clock step of +1 h does not close the guard's window"
	livepatchctl revert $E >/dev/null
	livepatchctl remove $E >/dev/null
}

# -------------------------------------------------------------------------------------------
# tamper NAME: change one byte of the stored module's description, keeping its size.
tamper() {
	python3 - "$STATE/patches/$1.ko" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, 'rb').read())
at = data.find(b'description=') + len(b'description=')
data[at] = ord('X') if data[at] != ord('X') else ord('Y')
open(path, 'wb').write(data)
PY
}

tampered_apply() {
	echo "# a tampered store file at Apply"
	configure '{}'
	livepatchctl install "$(module_path $E)" >/dev/null
	tamper $E
	local out
	out=$(dbus-send --system --print-reply --dest=org.livepatchd.LivePatch1 /org/livepatchd/LivePatch1 \
		org.livepatchd.LivePatch1.Manager.Apply "string:$E" 2>&1) && {
		livepatchctl revert $E >/dev/null
		livepatchctl remove $E >/dev/null
		fail "Apply of a tampered file succeeded"
	}
	expect_match "$out" "^Error org\.livepatchd\.LivePatch1\.Error\.Tampered: " "Apply refuses a tampered store file: $out"
	[[ $(cat /proc/cmdline) != "$E_LINE" ]] || fail "the tampered patch was loaded"
	livepatchctl remove $E >/dev/null
}

tampered_boot() {
	echo "# a tampered store file at the boot apply; nothing is stacked above it"
	configure '{"boot": {"crash_guard_seconds": 2}}'
	livepatchctl install "$(module_path $E)" >/dev/null
	livepatchctl install "$(module_path $V1)" >/dev/null
	livepatchctl apply $E >/dev/null
	livepatchctl apply $V1 >/dev/null
	# Both wanted, neither in the kernel: what a reboot looks like to the boot apply.
	systemctl stop livepatchd
	for p in $V1 $E; do
		echo 0 >/sys/kernel/lpshim/$p/enabled
		wait_until 10 "$p is unpatched" test ! -e /sys/kernel/lpshim/$p
		rmmod $p
	done
	tamper $E
	systemctl start livepatchd
	sleep 4
	local e_loaded=no v1_loaded=no
	[[ -e /sys/module/$E ]] && e_loaded=yes
	[[ -e /sys/module/$V1 ]] && v1_loaded=yes
	local e_reason v1_reason
	e_reason=$(patch_field $E SkipReason)
	v1_reason=$(patch_field $V1 SkipReason)
	echo "# $E: $(patch_state $E): $e_reason"
	echo "# $V1: $(patch_state $V1): $v1_reason"
	for p in $V1 $E; do
		if [[ $(patch_state $p) == applied ]]; then livepatchctl revert $p >/dev/null; else livepatchctl revert $p >/dev/null 2>&1 || true; fi
	done
	expect_eq "$e_loaded" no "the boot apply refused the tampered $E"
	expect_match "$e_reason" "Tampered|changed since" "$E's SkipReason names the tampering"
	journal_has "Tampered" || journal_has "changed since it was installed" || fail "the journal does not name the tampering"
	ok "the journal names the tampering"
	expect_eq "$v1_loaded" no "the boot apply did not stack $V1 without $E below it"
	livepatchctl remove $E >/dev/null
	livepatchctl remove $V1 >/dev/null
}

# -------------------------------------------------------------------------------------------
unprivileged_comm() {
	echo "# an unprivileged user's command name that is not UTF-8 and holds an escape sequence"
	configure '{"transition": {"stall_timeout_ms": 120000}, "remediation": {"enabled": false}}'
	start_reader setpriv --reuid=65534 --regid=65534 --clear-groups python3 -c '
import ctypes
ctypes.CDLL(None).prctl(15, b"\xff\x1b[31mevil", 0, 0, 0)
print(open("/dev/lpshim_target_sleep").read(), end="")'
	livepatchctl apply --no-block $C
	wait_until 10 "State is transitioning" state_is transitioning
	local out
	out=$(livepatchctl blocking 2>&1) || fail "livepatchctl blocking failed: $out"
	echo "$out" | sed 's/\x1b/<ESC>/g; s/^/# /'
	expect_match "$out" $'(^|\n) *'"$READER +$READER +"'\\xff\\x1b\[31mevil +user' \
		"livepatchctl blocking lists the task with the hostile name, escaped"
	[[ $out != *$'\x1b'* ]] || fail "livepatchctl blocking printed an escape sequence raw"
	ok "no escape sequence reached the terminal"
	out=$(livepatchctl blocking -v --json 2>&1) || fail "livepatchctl --json blocking failed: $out"
	python3 -c 'import json,sys; json.loads(sys.argv[1])' "$out" || fail "livepatchctl --json blocking is not JSON"
	ok "livepatchctl --json blocking is valid JSON"
	# Stacks only to those polkit allows: nobody gets none (no polkit agent answers yes).
	local frames
	frames=$(setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system --json=short call "${MANAGER[@]}" ListPendingTasks 2>&1 |
		python3 -c 'import json,sys; print(sum(len(t[10]) for t in json.load(sys.stdin)["data"][0]))') ||
		fail "ListPendingTasks as nobody failed"
	expect_eq "$frames" 0 "ListPendingTasks gives nobody no kernel stacks"
	release_reader
	revert_c
}

multithreaded_stop() {
	echo "# the stop rung on a multi-threaded process"
	configure '{"transition": {"stall_timeout_ms": 20000}, "remediation": {"kick": {"enabled": false}}}'
	start_reader python3 -c '
import threading, time
t = threading.Thread(target=lambda: print(open("/dev/lpshim_target_sleep").read(), end=""))
t.start()
t.join()'
	livepatchctl apply $C >/dev/null || fail "the apply did not complete: the multi-threaded reader was not stopped"
	ok "the stop rung stopped a multi-threaded process"
	journal_has "stopping process $READER " || fail "no journal entry for the stop of $READER"
	release_reader
	livepatchctl revert $C >/dev/null
}

foreign_pid_namespace() {
	echo "# a process in another pid namespace is never stopped"
	configure '{"transition": {"stall_timeout_ms": 120000}, "remediation": {"kick": {"enabled": false}, "stop_continue": {"after_ms": 0}}}'
	start_reader unshare --pid --fork --mount-proc cat /dev/lpshim_target_sleep
	local inner
	inner=$(pgrep -P $READER cat)
	livepatchctl apply --no-block $C
	refused() { livepatchctl blocking -v | grep -q "not stopped: .*pid namespace"; }
	wait_until 10 "the ladder refused to stop the reader of another pid namespace" refused
	ok "the reader in another pid namespace is reported, not stopped"
	expect_eq "$(patch_state $C)" applying "the transition waits"
	[[ $(proc_state $inner) != T ]] || fail "the reader of another pid namespace was stopped"
	release_reader
	revert_c
}

unprivileged_dsleep_no_revert() {
	echo "# an unprivileged user's task in uninterruptible sleep in a patched function"
	local D=test_lpshim_dsleep P=test_lpshim_dsleep_patch reader
	configure '{"transition": {"stall_timeout_ms": 3000, "on_stall": "revert"}}'
	insmod "$(module_path $D)"
	livepatchctl install "$(module_path $P)" >/dev/null
	# As a FUSE mount of its own that never answers would: D state, in the patched function.
	setpriv --reuid=65534 --regid=65534 --clear-groups cat /dev/$D &
	reader=$!
	# D in the patched function, by the kernel's own stack of it: D alone may be cat's exec
	# still paging in from the 9p root, and a transition started then completes at once.
	in_d() { [[ $(proc_state $reader) == D ]] && grep -q "test_lpshim_dsleep_wait" /proc/$reader/stack; }
	wait_until 10 "nobody's reader sleeps uninterruptibly in test_lpshim_dsleep_wait" in_d
	livepatchctl apply --no-block $P
	sleep 8 # the stall is at 3 s; a revert would be done by now
	expect_eq "$(patch_state $P)" applying "past the stall timeout, the patch is still being applied, not reverted"
	state_is stalled || fail "State is $(busctl get-property "${MANAGER[@]}" State), not stalled"
	ok "State is stalled"
	journal_has "the stalled transition to patched is not reverted: task $reader (cat) belongs to uid 65534" ||
		journal_has "the stalled transition to patched is not reverted: task $reader (cat) is in uninterruptible sleep" ||
		fail "the journal does not say why the patch is not reverted"
	ok "the journal says why the stalled transition is not reverted"
	expect_match "$(livepatchctl blocking)" $'(^|\n) *'"$reader +$reader +cat +user" \
		"livepatchctl blocking lists nobody's task"
	kill -KILL $reader
	wait $reader 2>/dev/null || true
	wait_until 20 "the transition completes once the task is gone" state_is idle
	expect_eq "$(patch_state $P)" applied "the patch is applied once nobody's task is gone"
	livepatchctl revert $P >/dev/null
	wait_until 10 "the module of $P is removed" test ! -e /sys/module/$P
	livepatchctl remove $P >/dev/null
	rmmod $D
}

# -------------------------------------------------------------------------------------------
"$(dirname "$0")/../install-livepatchd" "$BUILD"
mkdir -p "$(dirname $CONF)"
echo '{}' >$CONF
systemctl start livepatchd
insmod "$(module_path lpshim_target)"
livepatchctl install "$(module_path $C)" >/dev/null

for section in ${SECTIONS:-sigterm_during_hold sigkill_bad_config sigkill_damaged_record \
	sigkill_unreadable_store clock_steps clock_step_crash_guard tampered_apply tampered_boot \
	unprivileged_comm multithreaded_stop foreign_pid_namespace unprivileged_dsleep_no_revert}; do
	$section
done

configure '{}'
livepatchctl remove $C >/dev/null
systemctl stop livepatchd
rmmod lpshim_target
wait_until 10 "nothing holds lpshim" grep -sqx 0 /sys/module/lpshim/refcnt
rmmod lpshim
rm -f "$OUT"
