#!/bin/bash
# livepatchd and patches with livepatch relocations (issue 19): Install refuses a module whose
# relocations the kernel would refuse, with its reason and nothing changed; livepatchctl shows
# which objects' non-exported symbols each patch needs and how many (LivepatchObjects on the
# bus); a patch that reads vmlinux's static data and one that fixes a module's static code apply
# and revert through livepatchctl.
. "$(dirname "$0")/../lib.sh"

S=lpshim_example_saved_cmdline
M=lpshim_example_klp_module
KT=lpshim_klp_target
ORIG_CMDLINE=$(cat /proc/cmdline)
PATCH_IFACE=org.livepatchd.LivePatch1.Patch

listing() { livepatchctl --json list; }
# objects NAME: "object:count ..." from livepatchctl --json list.
objects() { listing | python3 -c "
import json, sys
p = next(p for p in json.load(sys.stdin) if p['Name'] == sys.argv[1])
print(' '.join('%s:%d' % (o['Object'], o['Symbols']) for o in p['LivepatchObjects']))" "$1"; }

"$(dirname "$0")/../install-livepatchd" "$BUILD"
systemctl start livepatchd || { journalctl -u livepatchd --no-pager | tail -20; fail "systemctl start livepatchd failed"; }
expect_eq "$(systemctl is-active livepatchd)" active "livepatchd.service is active"

before=$(listing)
out=$(livepatchctl install "$(module_path test_klp_vml_badname)" 2>&1) &&
	fail "a module with a malformed livepatch symbol was installed: $out"
expect_match "$out" "livepatch symbol '\.klp\.sym\.vmlinux\.saved_command_line' is not named \.klp\.sym\.<object>\.<name>,<position>" \
	"Install refuses a malformed livepatch symbol"
out=$(livepatchctl install "$(module_path test_klp_mod_reltype)" 2>&1) &&
	fail "a module with a GOTPCREL livepatch relocation was installed: $out"
expect_match "$out" "has type 9, which the kernel does not apply to a patch" \
	"Install refuses a relocation type the kernel does not apply"
expect_eq "$(listing)" "$before" "the refused installs changed nothing"

livepatchctl install "$(module_path $S)" >/dev/null
livepatchctl install "$(module_path $M)" >/dev/null
livepatchctl install "$(module_path lpshim_example_cmdline)" >/dev/null
expect_eq "$(objects $S)" "vmlinux:1" "$S needs 1 non-exported symbol of vmlinux"
expect_eq "$(objects $M)" "$KT:3" "$M needs 3 non-exported symbols of $KT"
expect_eq "$(objects lpshim_example_cmdline)" "" "a patch of exported symbols needs none"
path=$(busctl --system --json=short call org.livepatchd.LivePatch1 /org/livepatchd/LivePatch1 \
	org.livepatchd.LivePatch1.Manager ListPatches | python3 -c "
import json, sys
print(next(p[1] for p in json.load(sys.stdin)['data'][0] if p[0] == sys.argv[1]))" $S) ||
	fail "ListPatches has no $S"
expect_eq "$(busctl --system get-property org.livepatchd.LivePatch1 "$path" $PATCH_IFACE LivepatchObjects)" \
	'a(su) 1 "vmlinux" 1' "the bus shows LivepatchObjects"
expect_match "$(livepatchctl list | grep "^$M ")" "$KT 3" "livepatchctl list shows $KT 3 for $M"

out=$(livepatchctl apply $S)
expect_eq "$out" "$S: applied" "livepatchctl apply $S"
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE (live patched)" "/proc/cmdline is live patched"
insmod "$(module_path $KT)"
out=$(livepatchctl apply $M)
expect_eq "$out" "$M: applied" "livepatchctl apply $M"
echo 4 >/sys/kernel/debug/$KT/name
expect_eq "$(cat /sys/kernel/debug/$KT/name)" "out of range" "$KT's static function is fixed"
for p in $M $S; do
	out=$(livepatchctl revert $p)
	expect_eq "$out" "$p: reverted" "livepatchctl revert $p"
	wait_until 10 "the module of $p is removed" test ! -e /sys/module/$p
done
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is the original again"
expect_eq "$(cat /sys/kernel/debug/$KT/name)" "(past the end)" "$KT runs its original again"
rmmod $KT
for p in $S $M lpshim_example_cmdline; do
	livepatchctl remove $p >/dev/null
done
systemctl stop livepatchd
rmmod lpshim
