#!/bin/bash
# The Debian packages (scripts/package, debian/), installed the way an operator would, in the
# guest (its root is a tmpfs overlay on this machine's, so nothing leaks): `apt install` of the
# three .debs, DKMS builds lpshim.ko for the running kernel, `systemctl enable --now
# livepatchd`, a patch module built against lpshim-dev only (no source tree) is installed,
# applied and reverted; the other Debian kernel's headers arrive after the packages (a kernel
# upgrade: its header package is removed before and installed again after, with apt) and DKMS
# builds lpshim.ko for it too; `apt remove livepatchd` keeps the state and removes the metrics
# textfile, `apt purge` of all three leaves no module loaded, no unit and no state.
#   tests/vm/cases/packages.sh BUILD_DIR   (the .debs in BUILD_DIR/tests/vm: tests/vm/package-case builds them)
. "$(dirname "$0")/../lib.sh"

K=$KVER
REPO=$PWD
ARCH=$(uname -m)
P=my_fix
P_LINE="$P: this has been live patched"
ORIG_CMDLINE=$(cat /proc/cmdline)
SCRATCH=$(mktemp -d /var/tmp/packages.XXXXXX)
DEBS=$BUILD/tests/vm
debs=("$DEBS"/livepatchd_*.deb "$DEBS"/lpshim-dkms_*.deb "$DEBS"/lpshim-dev_*.deb)
for d in "${debs[@]}"; do
	[[ -f $d ]] || fail "no $d: build the packages first (scripts/package --out BUILD/tests/vm; tests/vm/package-case does)"
done
VERSION=$(dpkg-deb -f "$DEBS"/lpshim-dkms_*.deb Version)
dkms_symvers() { echo "/var/lib/dkms/lpshim/kernel-$1-$ARCH/module/Module.symvers"; }
dkms_installed() { dkms status -m lpshim -v "$VERSION" -k "$1" 2>/dev/null | grep ': installed' >/dev/null; }

# The other Debian kernel (not this machine's debug kernel, which is no part of the scenario):
# its headers are installed after the packages, as a kernel upgrade installs them. Its header
# package (and the meta-package that pulls it in) is removed with apt first and installed again
# later from apt's cache, so that dpkg runs its postinst and DKMS's header hook as on an upgrade.
# tests/vm/package-case puts those .debs in the host's cache, which the guest shares.
OTHER=
for d in /usr/src/linux-headers-*-amd64; do
	r=${d#/usr/src/linux-headers-}
	[[ $r != "$K" && -f /boot/vmlinuz-$r && -e /lib/modules/$r/build ]] && OTHER=$r
done
[[ -n $OTHER ]] || fail "no second Debian kernel with headers to upgrade to (scripts/install-deps installs 6.1 and 6.12)"
other_pkgs=("linux-headers-$OTHER")
mapfile -t -O 1 other_pkgs < <(apt-cache rdepends --installed "linux-headers-$OTHER" | sed -n 's/^  \([a-z0-9.+-]*\)$/\1/p')
other_debs=()
for p in "${other_pkgs[@]}"; do
	deb=$(dpkg-query -W -f='/var/cache/apt/archives/${Package}_${Version}_${Architecture}.deb' "$p")
	deb=${deb//:/%3a}
	[[ -f $deb ]] || fail "no $deb in apt's cache to install $p again: run tests/vm/package-case, or apt-get install --reinstall --download-only $p on the host"
	other_debs+=("$deb")
done
DEBIAN_FRONTEND=noninteractive apt-get remove -y "${other_pkgs[@]}" >"$SCRATCH/apt.log" 2>&1 ||
	{ cat "$SCRATCH/apt.log" >&2; fail "apt-get remove ${other_pkgs[*]} failed"; }
[[ ! -e /lib/modules/$OTHER/build ]] || fail "/lib/modules/$OTHER/build is still there after apt-get remove ${other_pkgs[*]}"
# Kernels that no package installed (the debug kernel): out of sight of DKMS.
for b in /lib/modules/*/build; do
	r=$(basename "$(dirname "$b")")
	[[ $r == "$K" ]] || rm "$b"
done
echo "# running $K; $OTHER's headers (${other_pkgs[*]}) come after the packages"

# This machine's root is a container image's: its /usr/sbin/policy-rc.d (exit 101) makes every
# package's start and stop of a service a no-op (deb-systemd-invoke asks it), so apt-get remove
# left livepatchd running. An operator's machine has none: nor has the guest.
rm -f /usr/sbin/policy-rc.d

# node_exporter's textfile directory, as prometheus-node-exporter makes it: livepatchd writes
# its metrics there (docs/metrics.md), and the package's postrm removes them again.
TEXTFILE=/var/lib/prometheus/node-exporter/livepatchd.prom
mkdir -p "${TEXTFILE%/*}"

# --- apt install ------------------------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${debs[@]}" \
	>"$SCRATCH/apt.log" 2>&1 || { cat "$SCRATCH/apt.log" >&2; fail "apt-get install of the packages failed"; }
sed 's/^/# /' "$SCRATCH/apt.log" | grep -iE 'dkms|lpshim|livepatchd' | head -40
ok "apt-get install ${debs[*]##*/}"
dkms_installed "$K" || { dkms status >&2; fail "DKMS did not build and install lpshim.ko for the running kernel $K"; }
# DKMS compresses the module as the kernel's own are (6.12: .ko.xz).
ko=$(modinfo -k "$K" -n lpshim) || fail "modprobe finds no lpshim for $K"
k_re=$(re_quote "$K")
expect_match "$ko" "^/lib/modules/$k_re/updates/dkms/lpshim\.ko(\.xz|\.zst|\.gz)?$" "DKMS installed lpshim.ko for $K, where modprobe finds it"
[[ -f $(dkms_symvers "$K") ]] || fail "no $(dkms_symvers "$K"): DKMS's POST_BUILD kept no Module.symvers for patch builds"
ok "lpshim's Module.symvers for $K is kept in the DKMS tree"
if dkms_installed "$OTHER"; then fail "lpshim.ko was built for $OTHER, whose headers are not installed"; fi

# --- the service ----------------------------------------------------------------------------
# The package enabled and started it (debhelper's postinst; docs/user-guide.md says so).
expect_eq "$(systemctl is-enabled livepatchd)" enabled "apt-get install enabled livepatchd.service"
expect_eq "$(systemctl is-active livepatchd)" active "apt-get install started livepatchd.service"
systemctl enable --now livepatchd || { journalctl -u livepatchd --no-pager | tail -20; fail "systemctl enable --now livepatchd failed"; }
expect_eq "$(systemctl is-enabled livepatchd)" enabled "livepatchd.service is enabled"
expect_eq "$(systemctl is-active livepatchd)" active "livepatchd.service is active"
owner=$(busctl --system status org.livepatchd.LivePatch1 | sed -n 's/^PID=//p')
expect_eq "$owner" "$(systemctl show -P MainPID livepatchd)" "livepatchd owns org.livepatchd.LivePatch1"
[[ -d /sys/kernel/lpshim ]] || fail "lpshim.ko is not loaded"
ok "the service loaded DKMS's lpshim.ko"
wait_until 5 "livepatchd says which configuration it used" sh -c \
	"journalctl -u livepatchd --no-pager -o cat | grep -qxF 'no configuration file /etc/livepatchd/livepatchd.json: the built-in defaults apply'"
ok "livepatchd says it found no /etc/livepatchd/livepatchd.json"
expect_eq "$(command -v livepatchctl)" /usr/bin/livepatchctl "livepatchctl is the package's"
wait_until 5 "livepatchd wrote $TEXTFILE" test -f "$TEXTFILE"
ok "livepatchd writes its metrics to $TEXTFILE"

# --- a patch module against lpshim-dev only -----------------------------------------------------
cp "$REPO/examples/lpshim_example_cmdline.c" "$SCRATCH/$P.c"
cat >"$SCRATCH/Makefile" <<'EOF'
obj-m := my_fix.o
include $(shell pkg-config --variable=makefile lpshim)
EOF
mount -t tmpfs -o ro none "$REPO"
trap 'umount "$REPO" 2>/dev/null || true' EXIT
make -C "$SCRATCH" >"$SCRATCH/make.log" 2>&1 || { cat "$SCRATCH/make.log" >&2; fail "make of a patch module against lpshim-dev failed"; }
umount "$REPO"
trap - EXIT
sed 's/^/# /' "$SCRATCH/make.log"
expect_eq "$(modinfo -F depends "$SCRATCH/$P.ko")" lpshim "$P.ko, built against lpshim-dev, depends on lpshim"
out=$(livepatchctl install "$SCRATCH/$P.ko")
expect_eq "$out" "Installed $P (apply it with: livepatchctl apply $P)" "livepatchctl install"
out=$(livepatchctl apply $P)
expect_eq "$out" "$P: applied" "livepatchctl apply"
expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is live patched"
out=$(livepatchctl revert $P)
expect_eq "$out" "$P: reverted" "livepatchctl revert"
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is back"
wait_until 10 "livepatchd removed the module" test ! -e /sys/module/$P

# --- a kernel upgrade: the other kernel's headers are installed -----------------------------------
# dpkg runs linux-headers-<release>'s postinst, which runs /etc/kernel/header_postinst.d/dkms.
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${other_debs[@]}" >"$SCRATCH/hook.log" 2>&1 ||
	{ cat "$SCRATCH/hook.log" >&2; fail "apt-get install ${other_debs[*]##*/} failed"; }
sed 's/^/# /' "$SCRATCH/hook.log" | grep -iE 'dkms|lpshim|linux-headers' | head -20
dkms_installed "$OTHER" || { cat "$SCRATCH/hook.log" >&2; dkms status >&2; fail "DKMS did not build lpshim.ko for the new kernel $OTHER when its headers were installed"; }
ko=$(modinfo -k "$OTHER" -n lpshim) || fail "modprobe finds no lpshim for $OTHER"
expect_eq "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)" "$OTHER" \
	"DKMS built lpshim.ko for $OTHER once its headers were installed"
make -C "$SCRATCH" clean >/dev/null 2>&1
make -C "$SCRATCH" KDIR="/lib/modules/$OTHER/build" >"$SCRATCH/make.log" 2>&1 ||
	{ cat "$SCRATCH/make.log" >&2; fail "make KDIR=/lib/modules/$OTHER/build failed"; }
expect_eq "$(modinfo -F vermagic "$SCRATCH/$P.ko" | cut -d' ' -f1)" "$OTHER" "a patch builds for $OTHER against lpshim-dev and DKMS's Module.symvers"

# --- remove keeps the state, purge removes everything ---------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get remove -y livepatchd >"$SCRATCH/apt.log" 2>&1 ||
	{ cat "$SCRATCH/apt.log" >&2; fail "apt-get remove livepatchd failed"; }
[[ -d /var/lib/livepatchd/patches && -f /var/lib/livepatchd/patches/$P.ko ]] ||
	fail "apt-get remove livepatchd removed the state in /var/lib/livepatchd"
ok "apt-get remove livepatchd keeps /var/lib/livepatchd"
expect_eq "$(systemctl is-active livepatchd)" inactive "the service is stopped after remove"
# Else node_exporter serves its last patch states (running 0) for as long as the host lives.
[[ ! -e $TEXTFILE ]] || fail "apt-get remove livepatchd left $TEXTFILE: $(grep -E '^livepatchd_(running|patch_state)' "$TEXTFILE" | head -3)"
ok "apt-get remove livepatchd removes its metrics file"

DEBIAN_FRONTEND=noninteractive apt-get purge -y livepatchd lpshim-dkms lpshim-dev >"$SCRATCH/apt.log" 2>&1 ||
	{ cat "$SCRATCH/apt.log" >&2; fail "apt-get purge failed"; }
sed 's/^/# /' "$SCRATCH/apt.log" | grep -iE 'lpshim|livepatchd' | head -20
[[ ! -e /var/lib/livepatchd ]] || fail "apt-get purge livepatchd left /var/lib/livepatchd"
ok "apt-get purge removes /var/lib/livepatchd"
[[ ! -e /sys/module/lpshim ]] || fail "lpshim.ko is still loaded after the purge"
ok "no lpshim.ko loaded after the purge"
systemctl daemon-reload
if systemctl cat livepatchd.service >/dev/null 2>&1; then fail "livepatchd.service is still there after the purge"; fi
[[ -z $(systemctl list-unit-files 'livepatchd*' --no-legend) ]] || fail "unit files left: $(systemctl list-unit-files 'livepatchd*' --no-legend)"
ok "no livepatchd unit after the purge"
left=$(ls -d /lib/modules/*/updates/dkms/lpshim.ko* "/var/lib/dkms/lpshim/$VERSION" /usr/src/lpshim-* 2>/dev/null || true)
[[ -z $left ]] || fail "the purge left: $left"
ok "no lpshim.ko, DKMS tree or source left"
rm -rf "$SCRATCH"
