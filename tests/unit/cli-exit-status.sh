#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# The executables' contract with scripts and systemd: exit statuses, and which stream carries
# what. Usage: cli-exit-status.sh LIVEPATCHD LIVEPATCHCTL CONFIG_EXAMPLE VERSION
set -u

livepatchd=$1 livepatchctl=$2 example=$3 version=$4
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect STATUS STDOUT_PATTERN STDERR_PATTERN -- COMMAND...: patterns are grep -E regexes
# matched against the whole output ('^$' for "empty").
expect() {
	want=$1 out_re=$2 err_re=$3
	shift 4
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	ok=1
	[ "$got" -eq "$want" ] || ok=0
	if [ "$out_re" = '^$' ]; then [ ! -s "$tmp/out" ] || ok=0
	else grep -Eq -- "$out_re" "$tmp/out" || ok=0; fi
	if [ "$err_re" = '^$' ]; then [ ! -s "$tmp/err" ] || ok=0
	else grep -Eq -- "$err_re" "$tmp/err" || ok=0; fi
	if [ $ok -eq 1 ]; then
		echo "ok: $*"
	else
		echo "FAIL: $* (exit $got, wanted $want)"
		sed 's/^/  stdout: /' "$tmp/out"
		sed 's/^/  stderr: /' "$tmp/err"
		failures=$((failures + 1))
	fi
}

echo '{"log": {"level": "debug"}}' >"$tmp/debug.json"
echo '{"transition": {"on_stall": "retry"}}' >"$tmp/bad.json"
printf '{\n  "log": }\n' >"$tmp/syntax.json"

expect 0 "^livepatchd $version\$" '^$' -- "$livepatchd" --version
expect 0 '^Exit status:' '^$' -- "$livepatchd" --help
expect 0 '"level": "info"' '^$' -- "$livepatchd" --check-config --config "$example"
expect 0 '"level": "debug"' '^$' -- "$livepatchd" --check-config --config "$tmp/debug.json"
expect 1 '^$' "^livepatchd: $tmp/missing.json: cannot open the configuration file: No such file or directory\$" \
	-- "$livepatchd" --check-config --config "$tmp/missing.json"
expect 1 '^$' "^livepatchd: $tmp/bad.json: transition.on_stall: \"retry\" is not one of \"wait\", \"revert\", \"force\"\$" \
	-- "$livepatchd" --check-config --config "$tmp/bad.json"
expect 1 '^$' "^livepatchd: $tmp/syntax.json:2:10: " -- "$livepatchd" --check-config --config "$tmp/syntax.json"
# Starting the service: the config is checked first.
expect 1 '^$' 'transition.on_stall' -- "$livepatchd" --config "$tmp/bad.json"
expect 2 '^$' "^livepatchd: unrecognized option '--frobnicate'\$" -- "$livepatchd" --frobnicate
expect 2 '^$' "^Try 'livepatchd --help'" -- "$livepatchd" --frobnicate

expect 0 "^livepatchctl $version\$" '^$' -- "$livepatchctl" --version
expect 0 '^  blocking ' '^$' -- "$livepatchctl" --help
expect 0 '^  4   check' '^$' -- "$livepatchctl" --help
# Without the service on the bus (no system bus here, or no livepatchd on it): a plain failure.
expect 1 '^$' '^livepatchctl: ' -- "$livepatchctl" --json status
# Issue 18: "cannot connect to the system bus: No such file or directory" named neither the
# socket nor the fix.
expect 1 '^$' "^livepatchctl: cannot connect to the system bus at $tmp/no-bus \(DBUS_SYSTEM_BUS_ADDRESS\): No such file or directory; is D-Bus running\? Start it with: systemctl start dbus" \
	-- env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$tmp/no-bus" "$livepatchctl" status
expect 2 '^$' "^livepatchctl: 'apply' takes one argument: PATCH\$" -- "$livepatchctl" apply
expect 2 '^$' "^livepatchctl: unknown command 'stauts' \(did you mean 'status'\?\)\$" -- "$livepatchctl" stauts
expect 2 '^$' "^Try 'livepatchctl --help'" -- "$livepatchctl" stauts
expect 2 '^$' "^livepatchctl: unrecognized option '--nope'\$" -- "$livepatchctl" --nope

[ $failures -eq 0 ] || { echo "$failures failed"; exit 1; }
