#!/bin/bash
# A source install, as README.md and docs/user-guide.md tell a new user to do it: `meson
# install` of the build (default prefix /usr/local) into the guest, whose root is a tmpfs
# overlay, then `systemctl start livepatchd` with nothing else done by hand. The service owns
# its bus name (the D-Bus policy is where dbus reads it), says which configuration file it read
# (/etc/livepatchd/livepatchd.json, not /usr/local/etc), keeps its state in
# /var/lib/livepatchd, modprobe finds the installed lpshim.ko; and a patch module is built with
# the Makefile of docs/writing-patches.md against the installed files only (no source or build
# tree), then installed, applied and reverted through livepatchctl.
. "$(dirname "$0")/../lib.sh"

K=$KVER
REPO=$PWD
P=my_fix
P_LINE="$P: this has been live patched"
ORIG_CMDLINE=$(cat /proc/cmdline)
SCRATCH=$(mktemp -d /var/tmp/patch.XXXXXX)

# --- meson install, then nothing by hand ----------------------------------------------------
meson install -C "$BUILD" --no-rebuild --quiet >"$SCRATCH/install.log" 2>&1 ||
	{ cat "$SCRATCH/install.log" >&2; fail "meson install -C $BUILD failed"; }
ok "meson install -C BUILD"

for f in /usr/share/dbus-1/system.d/org.livepatchd.LivePatch1.conf \
	/usr/share/dbus-1/system-services/org.livepatchd.LivePatch1.service \
	/usr/share/polkit-1/actions/org.livepatchd.LivePatch1.policy; do
	[[ -f $f ]] || fail "meson install did not install $f, where Debian's dbus and polkitd read it"
done
ok "the D-Bus policy, activation file and polkit actions are under /usr/share"

ko=$(modinfo -k "$K" -n lpshim 2>&1) || fail "modinfo -n lpshim: $ko (meson install did not install lpshim.ko for $K, or no depmod)"
[[ $ko == /lib/modules/$K/updates/lpshim.ko ]] || fail "modprobe would load $ko, not the installed /lib/modules/$K/updates/lpshim.ko"
expect_eq "$(modinfo -F version "$ko")" "$(modinfo -F version "$(module_path lpshim)")" "modprobe finds the installed lpshim.ko"

# The same build installed again (every daemon case does): lpshim.ko is indexed already,
# and depmod, which reads every module of a release, is not run again (meson keeps an install
# script's words to itself: the index's and the module's times say it).
indexed=$(stat -c %y "/lib/modules/$K/modules.dep" "/lib/modules/$K/updates/lpshim.ko")
meson install -C "$BUILD" --no-rebuild --quiet >"$SCRATCH/install2.log" 2>&1 ||
	{ cat "$SCRATCH/install2.log" >&2; fail "a second meson install -C $BUILD failed"; }
expect_eq "$(stat -c %y "/lib/modules/$K/modules.dep" "/lib/modules/$K/updates/lpshim.ko")" "$indexed" \
	"a second install of the same lpshim.ko leaves it and modules.dep for $K as they were"
ko=$(modinfo -k "$K" -n lpshim 2>&1) || fail "modinfo -n lpshim after a second install: $ko"
ok "modprobe still finds lpshim.ko after the second install"

help=$(livepatchd --help)
[[ $help == */var/lib/livepatchd/* ]] || fail "livepatchd --help names no /var/lib/livepatchd/ state directory: $help"
[[ $help == */etc/livepatchd/livepatchd.json* && $help != */usr/local/etc/* ]] ||
	fail "livepatchd --help does not name /etc/livepatchd/livepatchd.json: $help"
ok "livepatchd reads /etc/livepatchd/livepatchd.json and keeps its state in /var/lib/livepatchd"

# --- the service ----------------------------------------------------------------------------
systemctl daemon-reload
rm -rf /etc/livepatchd
systemctl start livepatchd || { journalctl -u livepatchd --no-pager | tail -20; fail "systemctl start livepatchd failed"; }
expect_eq "$(systemctl is-active livepatchd)" active "livepatchd.service is active"
owner=$(busctl --system status org.livepatchd.LivePatch1 | sed -n 's/^PID=//p')
expect_eq "$owner" "$(systemctl show -P MainPID livepatchd)" "livepatchd owns org.livepatchd.LivePatch1"
# At shutdown it stops before the bus: its stop asks systemd over the bus whether the system
# is stopping (the crash-loop guard's record of a clean shutdown), and a bus stopped first
# leaves the shutdown recorded as a crash.
systemctl show -P After livepatchd | tr ' ' '\n' | grep -qx dbus.service ||
	fail "livepatchd.service is not ordered after dbus.service: at shutdown the bus may stop first"
ok "livepatchd.service is ordered after dbus.service (stopped before it)"
[[ -d /sys/kernel/lpshim ]] || fail "lpshim.ko is not loaded after the start"
ok "the service loaded lpshim.ko (by name: the installed file)"
# What this start of the service logged (its invocation's entries).
journal_has() {
	journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$(systemctl show -P InvocationID livepatchd)" |
		grep -qxF "$1"
}
wait_until 5 "livepatchd says at start that no configuration file exists" \
	journal_has "no configuration file /etc/livepatchd/livepatchd.json: the built-in defaults apply"
ok "at start, livepatchd says that /etc/livepatchd/livepatchd.json does not exist"
[[ -d /var/lib/livepatchd/patches ]] || fail "no /var/lib/livepatchd/patches after the start"
ok "the state is in /var/lib/livepatchd"

mkdir -p /etc/livepatchd
echo '{"transition": {"stall_timeout_ms": 60000}}' >/etc/livepatchd/livepatchd.json
systemctl restart livepatchd
wait_until 5 "livepatchd says at start that it read /etc/livepatchd/livepatchd.json" \
	journal_has "read the configuration from /etc/livepatchd/livepatchd.json"
ok "at start, livepatchd says it read /etc/livepatchd/livepatchd.json"

# --- a patch module against the installed files only ----------------------------------------
for h in lpshim.h klp-compat.h klp-convert.h; do
	[[ -f /usr/local/include/lpshim/$h ]] || fail "meson install did not install /usr/local/include/lpshim/$h"
done
ok "lpshim/lpshim.h, klp-compat.h and klp-convert.h are installed"
mk=$(pkg-config --variable=makefile lpshim) || fail "pkg-config finds no lpshim.pc"
[[ $mk == /usr/local/* && -f $mk ]] || fail "lpshim.pc names the Makefile fragment '$mk', which is not installed"
ok "pkg-config --variable=makefile lpshim: $mk"

# The Makefile of docs/writing-patches.md, word for word.
cp "$REPO/examples/lpshim_example_cmdline.c" "$SCRATCH/$P.c"
cat >"$SCRATCH/Makefile" <<'EOF'
obj-m := my_fix.o
include $(shell pkg-config --variable=makefile lpshim)
EOF
while IFS= read -r line; do
	grep -qxF -- "$line" "$REPO/docs/writing-patches.md" ||
		fail "docs/writing-patches.md's Makefile has no line '$line'"
done <"$SCRATCH/Makefile"
# Nothing of the source or build tree may be used: hide both while it builds.
mount -t tmpfs -o ro none "$REPO"
trap 'umount "$REPO" 2>/dev/null || true' EXIT
make -C "$SCRATCH" >"$SCRATCH/make.log" 2>&1 || { cat "$SCRATCH/make.log" >&2; fail "make of a patch module against the installed files failed"; }
umount "$REPO"
trap - EXIT
cat "$SCRATCH/make.log" | sed 's/^/# /'
expect_eq "$(modinfo -F lpshim_patch "$SCRATCH/$P.ko")" Y "$P.ko is an lpshim patch module"
expect_eq "$(modinfo -F depends "$SCRATCH/$P.ko")" lpshim "$P.ko depends on lpshim"
expect_eq "$(modinfo -F vermagic "$SCRATCH/$P.ko" | cut -d' ' -f1)" "$K" "$P.ko is built for the running kernel"

out=$(livepatchctl install "$SCRATCH/$P.ko")
expect_eq "$out" "Installed $P (apply it with: livepatchctl apply $P)" "livepatchctl install"
out=$(livepatchctl apply $P)
expect_eq "$out" "$P: applied" "livepatchctl apply"
expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is live patched"
out=$(livepatchctl revert $P)
expect_eq "$out" "$P: reverted" "livepatchctl revert"
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is back"
wait_until 10 "livepatchd removed the module" test ! -e /sys/module/$P
livepatchctl remove $P >/dev/null

systemctl stop livepatchd
wait_until 10 "nothing holds lpshim" grep -sqx 0 /sys/module/lpshim/refcnt
rmmod lpshim
# The next cases write their own configuration.
rm -rf "$SCRATCH" /etc/livepatchd
