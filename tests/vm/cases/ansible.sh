#!/bin/bash
# The Ansible collection (ansible/, docs/fleet.md) against the real livepatchd, with Debian's
# ansible-playbook inside the guest and a local connection:
#   - the livepatch module applies the cmdline example (changed), a second run changes nothing,
#     check mode with diff shows the revert and does nothing, a revert restores /proc/cmdline;
#   - livepatch_info reads the kernel, lpshim's version and the patches;
#   - the rollout playbook over two inventory hosts of this one guest (h1 and h2, both
#     ansible_connection=local, each rolling out its own patch, stacked on the one kernel): the
#     canary h1 passes its gate and keeps its patch; h2's gate fails (its check command), so its
#     batch is reverted and the play stops;
#   - fake-livepatchctl, which the unit suite's tests/ansible uses, prints the keys the real
#     livepatchctl prints (status, and a refused call's named error).
# Two inventory hosts on one kernel show the batches, the gate and the revert of a failed batch,
# not isolation between machines: both patches stack on the same kernel (docs/testing.md).
. "$(dirname "$0")/../lib.sh"

E1=lpshim_example_cmdline
E2=lpshim_example_saved_cmdline
ORIG_CMDLINE=$(cat /proc/cmdline)
E1_LINE="$E1: this has been live patched"
SRC=$PWD
WORK=$(mktemp -d)
command -v ansible-playbook >/dev/null || fail "no ansible-playbook on the host root: scripts/install-deps installs ansible-core"
export ANSIBLE_CONFIG=$WORK/none.cfg ANSIBLE_COLLECTIONS_PATH=$SRC/ansible \
	ANSIBLE_LOCAL_TEMP=$WORK/ansible-local ANSIBLE_REMOTE_TEMP=$WORK/ansible-remote \
	ANSIBLE_NOCOLOR=1 ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 \
	ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_LOCALHOST_WARNING=0 HOME=$WORK

# play OUT ARGS...: ansible-playbook ARGS with its output in $WORK/OUT (shown on failure).
play() {
	local out=$WORK/$1 rc=0
	shift
	ansible-playbook "$@" >"$out" 2>&1 || rc=$?
	sed 's/^/# /' "$out" | grep -E '^# (TASK|changed|ok|fatal|failed|skipping|[a-z0-9]+ +: ok=)|"msg"|--- before|\+\+\+ after|^# [-+] ' || true
	return $rc
}
recap() { grep -E "^$1 +: " "$WORK/$2"; }

"$(dirname "$0")/../install-livepatchd" "$BUILD"
systemctl start livepatchd || { journalctl -u livepatchd --no-pager | tail -20; fail "systemctl start livepatchd failed"; }
cp "$(module_path $E1)" "$(module_path $E2)" "$WORK/"

cat >"$WORK/patch.yml" <<EOF
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: The cmdline example, state {{ state }}
      livepatchd.livepatch.livepatch:
        name: $E1
        src: $WORK/$E1.ko
        state: "{{ state }}"
        timeout: 60
        poll_interval: 0.2
      register: r
    - name: What the module said
      ansible.builtin.debug:
        msg: "{{ r.previous_state }} -> {{ r.state }} ({{ r.actions | join(', ') }})"
EOF

# --- apply, again, check mode, revert --------------------------------------------------------
play apply.out -i localhost, "$WORK/patch.yml" -e state=applied || fail "the apply playbook failed"
expect_match "$(recap localhost apply.out)" "ok=2 +changed=1 .*failed=0" "the first apply reports changed"
expect_eq "$(cat /proc/cmdline)" "$E1_LINE" "/proc/cmdline is live patched by the playbook"
play again.out -i localhost, "$WORK/patch.yml" -e state=applied || fail "the second apply failed"
expect_match "$(recap localhost again.out)" "ok=2 +changed=0 .*failed=0" "the second apply changes nothing"
grep -q '"msg": "applied -> applied ()"' "$WORK/again.out" || fail "the second run did not find the patch applied"
play check.out -i localhost, "$WORK/patch.yml" -e state=reverted --check --diff || fail "check mode failed"
expect_match "$(recap localhost check.out)" "changed=1 .*failed=0" "check mode reports the revert as a change"
grep -Eq '^-? *"?state"?: "?applied' "$WORK/check.out" && grep -Eq '^\+? *"?state"?: "?installed' "$WORK/check.out" ||
	fail "check mode's diff does not show applied -> installed: $(cat "$WORK/check.out")"
ok "check mode's diff shows applied -> installed"
expect_eq "$(cat /proc/cmdline)" "$E1_LINE" "check mode left the patch applied"
play revert.out -i localhost, "$WORK/patch.yml" -e state=reverted || fail "the revert playbook failed"
expect_match "$(recap localhost revert.out)" "changed=1 .*failed=0" "the revert reports changed"
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is the original again"
wait_until 10 "the module of $E1 is removed" test ! -e /sys/module/$E1

# --- the fake livepatchctl against the real one ---------------------------------------------
keys() { python3 -c 'import json, sys
j = json.load(sys.stdin)
print(" ".join(sorted(k for k in j if k != "Patches")), "|", " ".join(sorted(j["Patches"][0])) if j.get("Patches") else "")'; }
mkdir "$WORK/fake"
ln -s "$SRC/tests/ansible/fake-livepatchctl" "$WORK/fake/livepatchctl"
printf 'name=%s\n' $E1 >"$WORK/fake/$E1.ko"
"$WORK/fake/livepatchctl" --json install "$WORK/fake/$E1.ko" >/dev/null
expect_eq "$("$WORK/fake/livepatchctl" --json status | keys)" "$(livepatchctl --json status | keys)" \
	"fake-livepatchctl's status has the real one's keys"
real_err=$(livepatchctl --json apply lp_no_such_patch 2>/dev/null) && fail "applying an unknown patch succeeded"
fake_err=$("$WORK/fake/livepatchctl" --json apply lp_no_such_patch 2>/dev/null) && fail "the fake applied an unknown patch"
expect_eq "$fake_err" "$real_err" "fake-livepatchctl's refusal is the real one's, named error and message"

# --- facts -------------------------------------------------------------------------------------
cat >"$WORK/info.yml" <<EOF
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - livepatchd.livepatch.livepatch_info:
      register: lp
    - ansible.builtin.assert:
        that:
          - lp.kernel == '$KVER'
          - lp.shim_version | length > 0
          - lp.service_state == 'idle'
          - lp.patches | selectattr('name', 'equalto', '$E1') | map(attribute='state') | list == ['installed']
          - lp.check.rc == 0
EOF
play info.out -i localhost, "$WORK/info.yml" || fail "livepatch_info's playbook failed"
ok "livepatch_info reads the kernel, lpshim's version and the patches"

# --- the rollout over two inventory hosts: a canary, then a batch that fails its gate ---------
cat >"$WORK/inventory.yml" <<EOF
all:
  children:
    livepatch:
      hosts:
        h1:
          livepatch_rollout_patches: [{name: $E1, src: $WORK/$E1.ko}]
          livepatch_rollout_check_command: "grep -qx '$E1_LINE' /proc/cmdline"
        h2:
          livepatch_rollout_patches: [{name: $E2, src: $WORK/$E2.ko}]
          # The application's health check fails once h2's patch is in.
          livepatch_rollout_check_command: "! grep -q 'live patched)' /proc/cmdline"
  vars:
    ansible_connection: local
EOF
rc=0
play rollout.out -i "$WORK/inventory.yml" livepatchd.livepatch.rollout \
	-e '{"livepatch_batches": [1], "livepatch_rollout_timeout": 60, "livepatch_rollout_poll_interval": 0.2}' || rc=$?
expect_eq "$rc" 2 "the rollout playbook fails (a batch failed its gate)"
expect_match "$(recap h1 rollout.out)" "changed=[1-9][0-9]* .*failed=0" "the canary h1 passed its gate"
expect_match "$(recap h2 rollout.out)" "failed=1" "h2 failed"
grep -q "the batch h2 failed its health gate on h2 (Health gate - the operator's check command: non-zero return code); its patches were reverted" \
	"$WORK/rollout.out" || fail "the rollout's failure does not say which batch, host and gate"
ok "the failure names the batch, the host and the gate"
grep -q "changed: \[h2\] => (item=$E2)" "$WORK/rollout.out" || fail "h2 did not apply then revert $E2"
expect_eq "$(cat /proc/cmdline)" "$E1_LINE" "h2's batch is reverted, h1's patch stays"
expect_eq "$(livepatchctl --json list | python3 -c '
import json, sys
print(" ".join(p["Name"] + "=" + p["State"] for p in json.load(sys.stdin)))')" "$E1=applied $E2=installed" \
	"livepatchd: the canary's patch applied, the failed batch's reverted"

# --- clean up: the same module takes both out --------------------------------------------------
for name in $E2 $E1; do
	ansible -i localhost, -c local localhost -m livepatchd.livepatch.livepatch \
		-a "name=$name state=absent timeout=60 poll_interval=0.2" >"$WORK/absent.out" 2>&1 ||
		fail "state=absent of $name failed: $(cat "$WORK/absent.out")"
done
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is the original after state=absent"
expect_eq "$(livepatchctl --json list)" "[]" "the store is empty"
wait_until 10 "the module of $E1 is removed" test ! -e /sys/module/$E1
systemctl stop livepatchd
rmmod lpshim
rm -rf "$WORK"
