#!/bin/bash
# systemd runs the guest and its system bus answers: what the daemon's tests build on.
. "$(dirname "$0")/../lib.sh"

expect_eq "$(systemctl is-system-running --wait)" running "systemd reports the system running"
on_bus() { busctl list --no-pager --acquired | awk 'NR > 1 {print $1}' | grep -qx "$1"; }
for n in org.freedesktop.DBus org.freedesktop.systemd1; do
	wait_until 10 "$n is on the system bus" on_bus $n
done
ok "the bus lists org.freedesktop.DBus and org.freedesktop.systemd1"
id=$(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId)
expect_match "$id" '^s "[0-9a-f]{32}"$' "the bus daemon answers a method call"
