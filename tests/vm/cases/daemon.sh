#!/bin/bash
# livepatchd under systemd in the guest, driven the way an operator drives it: livepatchctl and
# busctl. Install and apply the cmdline example; State reads idle after the transition; a
# restart keeps the patch; a transition held open by a sleeping task shows in State, check and
# blocking, and refuses a second apply; bad inputs return their named errors and change
# nothing; revert restores /proc/cmdline and removes the module. The reboot cases (a second
# boot of the same state, livepatchd.apply=0) are tests/vm/daemon-reboot, from the host.
. "$(dirname "$0")/../lib.sh"

K=$KVER
E=lpshim_example_cmdline
C=test_lpshim_consistency
V1=lpshim_example_target_v1
E_LINE="$E: this has been live patched"
ORIG_CMDLINE=$(cat /proc/cmdline)
BUSCTL=(busctl --system)
MANAGER=(org.livepatchd.LivePatch1 /org/livepatchd/LivePatch1 org.livepatchd.LivePatch1.Manager)
T=/sys/kernel/debug/lpshim_target
SCRATCH=$(mktemp -d)

state() { "${BUSCTL[@]}" get-property "${MANAGER[@]}" State; }
state_is() { [[ $(state) == "s \"$1\"" ]]; }
patch_state() { livepatchctl --json list | python3 -c "
import json, sys
print(next((p['State'] for p in json.load(sys.stdin) if p['Name'] == sys.argv[1]), 'none'))" "$1"; }
listing() { livepatchctl --json list; }

# expect_bus_error ERROR WHAT METHOD ARGUMENT: calling METHOD(ARGUMENT) fails with the D-Bus
# error org.livepatchd.LivePatch1.Error.ERROR (or org.freedesktop.DBus.Error.ERROR).
expect_bus_error() {
	local name=$1 what=$2 out
	if out=$(dbus-send --system --print-reply --dest=org.livepatchd.LivePatch1 \
		/org/livepatchd/LivePatch1 "org.livepatchd.LivePatch1.Manager.$3" "string:$4" 2>&1); then
		fail "$what: the call succeeded: $out"
	fi
	expect_match "$out" "^Error org\.(livepatchd\.LivePatch1|freedesktop\.DBus)\.Error\.$name: " "$what: $out"
}

# --- the service starts ------------------------------------------------------------------
"$(dirname "$0")/../install-livepatchd" "$BUILD"
mkdir -p /etc/livepatchd
# Remediation or a stall revert would end the held-open transition below before the case looks
# at it (tests/vm/cases/daemon-remediation.sh tests those).
echo '{"transition": {"stall_timeout_ms": 120000}, "remediation": {"enabled": false}}' \
	>/etc/livepatchd/livepatchd.json
systemctl start livepatchd || { journalctl -u livepatchd --no-pager | tail -20; fail "systemctl start livepatchd failed"; }
expect_eq "$(systemctl is-active livepatchd)" active "livepatchd.service is active"
expect_eq "$(state)" 's "idle"' "State is idle"
[[ -d /sys/kernel/lpshim ]] || fail "lpshim.ko is not loaded after the start"
ok "the service loaded lpshim.ko"
expect_eq "$("${BUSCTL[@]}" get-property "${MANAGER[@]}" KernelRelease)" "s \"$K\"" "KernelRelease is $K"

# --- install and apply -----------------------------------------------------------------------
out=$(livepatchctl install "$(module_path $E)")
expect_eq "$out" "Installed $E (apply it with: livepatchctl apply $E)" "livepatchctl install"
expect_eq "$(patch_state $E)" installed "the patch is installed, not applied"
out=$(livepatchctl apply $E)
expect_eq "$out" "$E: applied" "livepatchctl apply waits until applied"
expect_eq "$(cat /proc/cmdline)" "$E_LINE" "/proc/cmdline is live patched"
wait_until 5 "State is idle" state_is idle
ok "State reads idle after the transition"
expect_eq "$(patch_state $E)" applied "the patch is applied"
livepatchctl check >/dev/null || fail "livepatchctl check exits $? with every patch applied"
ok "livepatchctl check exits 0"
journalctl -u livepatchd --no-pager -o cat MESSAGE_ID=5b5e20f1304b434c8c8bfbc866f04ccd PATCH=$E |
	grep -qx "$E: transition to patched completed after .* s" ||
	fail "no 'transition ended' journal entry for $E"
ok "the journal has the transition's end, with PATCH= and MESSAGE_ID="

# --- a restart keeps it --------------------------------------------------------------------
systemctl restart livepatchd
expect_eq "$(systemctl is-active livepatchd)" active "livepatchd.service is active after a restart"
expect_eq "$(cat /proc/cmdline)" "$E_LINE" "/proc/cmdline is still live patched after a restart"
expect_eq "$(patch_state $E)" applied "the patch is still applied after a restart"
expect_eq "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["State"])' \
	< <(livepatchctl --json status))" idle "livepatchctl --json status: State idle"

# --- bad inputs: named errors, nothing changed ----------------------------------------------
before=$(listing)
head -c 4096 /dev/urandom >$SCRATCH/garbage.ko
# Install takes a file descriptor (dbus-send cannot pass one): livepatchctl opens the file.
expect_install_error() { # REGEX WHAT FILE
	local out
	out=$(livepatchctl install "$3" 2>&1) && fail "$2: the install succeeded: $out"
	expect_match "$out" "$1" "$2: $out"
}
expect_install_error "is not an ELF file" "a non-ELF file" $SCRATCH/garbage.ko
other=$(ls -d "$BUILD"/modules/*/ | grep -v "/$K/\$" | head -n 1)
if [[ -n $other ]]; then
	expect_install_error "built for .*, but this kernel is $(re_quote "$K")" "a module for another kernel" \
		"$other/lpshim_example_target_v1.ko"
fi
expect_bus_error NotInstalled "an unknown patch name" Apply lp_no_such_patch
err=$(livepatchctl apply lp_no_such_patch 2>&1) && fail "livepatchctl apply of an unknown patch succeeded"
expect_match "$err" "^livepatchctl: .*lp_no_such_patch" "livepatchctl names the unknown patch"
expect_eq "$(listing)" "$before" "the bad inputs changed nothing"

# --- a transition held open: State, check, blocking, and a second apply refused -------------
# The daemon's list of pending tasks is the BPF map that lpshim's tracepoints feed: it runs
# without debugfs (lpshim's own list) for this part.
NO_DEBUGFS=/run/systemd/system/livepatchd.service.d/50-no-debugfs.conf
mkdir -p "$(dirname $NO_DEBUGFS)"
printf '[Service]\nInaccessiblePaths=/sys/kernel/debug\n' >$NO_DEBUGFS
systemctl daemon-reload
systemctl restart livepatchd
insmod "$(module_path lpshim_target)"
cat /dev/lpshim_target_sleep >/dev/null &
reader=$!
wait_until 10 "the reader sleeps in lpshim_target_sleep" grep -qx 1 $T/sleepers
livepatchctl install "$(module_path $C)" >/dev/null
livepatchctl install "$(module_path $V1)" >/dev/null
livepatchctl apply --no-block $C
wait_until 10 "State is transitioning" state_is transitioning
ok "State reads transitioning while a task sleeps in a patched function"
rc=0
livepatchctl check >/dev/null || rc=$?
expect_eq "$rc" 3 "livepatchctl check exits 3 during a transition"
expect_match "$(livepatchctl blocking)" \
	$'(^|\n)'"$reader +$reader +cat +user +sleeping-in-function +[0-9.]+s +lpshim_target_sleep \\[lpshim_target\\]"$'(\n|$)' \
	"livepatchctl blocking names the sleeping reader and its function"
blocking=$(livepatchctl blocking -v)
echo "$blocking" | sed 's/^/# /'
expect_match "$blocking" "state S, unit lpvm-run.service" \
	"livepatchctl blocking -v shows the reader's state and unit"
expect_match "$blocking" "found blocked [1-9][0-9]* time\\(s\\) by lpshim" \
	"livepatchctl blocking -v counts lpshim's attempts, from the BPF map"
expect_match "$blocking" $'\n +lpshim_target_sleep\\+0x[0-9a-f]+/0x[0-9a-f]+ \\[lpshim_target\\]' \
	"livepatchctl blocking -v shows the reader's symbolised kernel stack"
expect_bus_error TransitionInProgress "a second apply during a transition" Apply $V1
expect_eq "$(patch_state $V1)" installed "the refused patch is still only installed"
echo 1 >$T/sleep_release
wait $reader || true
wait_until 20 "State is idle again" state_is idle
expect_eq "$(patch_state $C)" applied "the held-open patch is applied once the reader left"
livepatchctl revert $C >/dev/null
wait_until 10 "the module of $C is removed" test ! -e /sys/module/$C
ok "revert removed the module of $C"
rmmod lpshim_target
rm $NO_DEBUGFS
systemctl daemon-reload
systemctl restart livepatchd

# --- revert and remove -----------------------------------------------------------------------
out=$(livepatchctl revert $E)
expect_eq "$out" "$E: reverted" "livepatchctl revert"
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is the original again"
wait_until 10 "the module of $E is removed" test ! -e /sys/module/$E
ok "the patch's module is gone"
expect_eq "$(patch_state $E)" installed "the patch is back to installed"
livepatchctl remove $E >/dev/null
livepatchctl remove $C >/dev/null
livepatchctl remove $V1 >/dev/null
expect_eq "$(patch_state $E)" none "the patch is gone from the store"

# --- an atomic replace ----------------------------------------------------------------------
# The patches a cumulative patch replaced are no longer wanted once its transition ended (what
# the kernel had below it, read before its load): they show as installed, not skipped, and can
# be removed.
V2=lpshim_example_target_v2
CU=lpshim_example_cumulative
insmod "$(module_path lpshim_target)"
livepatchctl install "$(module_path $V1)" >/dev/null
livepatchctl install "$(module_path $V2)" >/dev/null
livepatchctl install "$(module_path $CU)" >/dev/null
for p in $V1 $V2 $CU; do
	livepatchctl apply $p >/dev/null || fail "livepatchctl apply $p failed"
done
expect_eq "$(cat $T/version)" cumulative "the cumulative patch replaced v1 and v2"
replaced_not_wanted() {
	[[ "$(patch_state $V1) $(patch_state $V2) $(patch_state $CU)" == "installed installed applied" ]]
}
wait_until 10 "v1 and v2 are installed, no longer wanted" replaced_not_wanted
ok "the replaced patches are no longer wanted"
wait_until 10 "the replaced patches' modules are removed" test ! -e /sys/module/$V1 -a ! -e /sys/module/$V2
livepatchctl remove $V2 >/dev/null || fail "a replaced patch cannot be removed from the store"
ok "a replaced patch can be removed from the store"
livepatchctl revert $CU >/dev/null
wait_until 10 "the module of $CU is removed" test ! -e /sys/module/$CU
rmmod lpshim_target
livepatchctl remove $CU >/dev/null
livepatchctl remove $V1 >/dev/null

# The service stops without touching the kernel; lpshim stays (the last case's teardown is ours).
systemctl stop livepatchd
rmmod lpshim
rm -rf "$SCRATCH"
