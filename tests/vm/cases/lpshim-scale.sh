#!/bin/bash
# lpshim at scale: a patch of 1000 functions (tests/kmod/many) is enabled and disabled as one,
# every function is redirected through lpshim's ftrace handler while it is in force and none
# is afterwards; how long the enable and the disable took is printed, beside the same for a
# patch of 1 function, to compare.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

TRACEFS=/sys/kernel/tracing
ENABLED_FUNCTIONS=$TRACEFS/enabled_functions
# Bound of a timed wait, in seconds.
SCALE_WAIT=120
# "N ms" per size, for the comparison printed at the end.
declare -A ENABLE_MS DISABLE_MS

# now_ns: NOW_NS = the wall clock in ns, like date +%s%N but without a fork, so that the
# timings do not include starting a process (milliseconds under TCG). Microsecond resolution.
now_ns() {
	local t=${EPOCHREALTIME/[.,]/}
	NOW_NS=$((10#$t * 1000))
}

# ms NS: NS as milliseconds with three decimals.
ms() {
	printf '%d.%03d' $(($1 / 1000000)) $(($1 / 1000 % 1000))
}

# wait_ns SECONDS WHAT CMD...: poll CMD without sleeping (the timings should not be rounded up
# to a sleep's length); fail after SECONDS.
wait_ns() {
	local limit=$1 what=$2 start
	shift 2
	now_ns
	start=$NOW_NS
	until "$@"; do
		now_ns
		((NOW_NS - start < limit * 1000000000)) || fail "timed out after ${limit}s waiting until $what"
	done
}

# read_is FILE VALUE: FILE reads VALUE (read is a builtin: no fork in a timed loop).
read_is() {
	local v
	[[ -r $1 ]] && read -r v <"$1" 2>/dev/null && [[ $v == "$2" ]]
}

gone() {
	[[ ! -e $1 ]]
}

# lpshim_many_lines N: the lines of enabled_functions for lpshim_many_fn_*, sorted.
lpshim_many_lines() {
	grep '^lpshim_many_fn_[0-9]* ' $ENABLED_FUNCTIONS | sort || true
}

# expect_redirected N: enabled_functions lists each of lpshim_many_fn_1..N exactly once, each
# with the IPMODIFY flag (I: a callback that may change the ip, i.e. redirect) and with
# lpshim's handler as the only callback (its own trampoline calls lpshim_ftrace_handler).
expect_redirected() {
	local n=$1 lines names bad
	lines=$(lpshim_many_lines "$n")
	expect_eq "$(grep -c . <<<"$lines")" "$n" "enabled_functions lists $n lpshim_many_fn_ lines"
	names=$(awk '{ print $1 }' <<<"$lines" | sort -u)
	expect_eq "$names" "$(seq -f 'lpshim_many_fn_%g' 1 "$n" | sort)" \
		"enabled_functions lists each of lpshim_many_fn_1..$n once"
	bad=$(grep -v "^lpshim_many_fn_[0-9]* \[$TARGET\] (1) .* I .*lpshim_ftrace_handler.*\[lpshim\]" <<<"$lines" || true)
	[[ -z $bad ]] || fail "lines of enabled_functions not redirected by lpshim alone (IPMODIFY, lpshim_ftrace_handler): $(head -n 3 <<<"$bad")"
	ok "each is redirected by lpshim alone: '$(head -n 1 <<<"$lines" | tr '\t' ' ')'"
}

# scale N: enable and disable a patch of N functions; print how long each took.
scale() {
	local n=$1 t0 sum_orig=$(($1 * ($1 + 1) / 2))
	local p=$LPSHIM_SYSFS/lpshim_many_patch_$n
	TARGET=lpshim_many_target_$n
	PATCH=lpshim_many_patch_$n
	local sum=/sys/module/$TARGET/parameters/sum

	start_test "a patch of $n functions"
	log "% insmod lpshim.ko"
	insmod "$(module_path lpshim)" || fail "insmod lpshim.ko failed"
	load_mod "$TARGET"
	expect_eq "$(cat "$sum")" $sum_orig "$TARGET's sum is the original, $sum_orig"
	[[ -z $(lpshim_many_lines) ]] || fail "enabled_functions lists lpshim_many_fn_ before the patch"

	now_ns
	t0=$NOW_NS
	insmod_logged "$PATCH" || fail "insmod $PATCH.ko failed"
	wait_ns $SCALE_WAIT "the patching transition of $PATCH completes" read_is "$p/transition" 0
	now_ns
	ENABLE_MS[$n]=$(ms $((NOW_NS - t0)))

	expect_eq "$(sysfs_value "$p/enabled")" 1 "$PATCH is enabled"
	expect_eq "$(sysfs_value "$p/$TARGET/patched")" 1 "$PATCH/$TARGET/patched reads 1"
	expect_eq "$(find "$p/$TARGET" -mindepth 1 -maxdepth 1 -type d -name 'lpshim_many_fn_*,1' | wc -l)" "$n" \
		"$PATCH/$TARGET has $n function directories"
	expect_eq "$(cat "$sum")" $((sum_orig + n)) "$TARGET's sum is the patched one, $sum_orig + $n"
	expect_redirected "$n"

	log "% echo 0 > $p/enabled"
	now_ns
	t0=$NOW_NS
	{ printf '0\n' >"$p/enabled"; } 2>/dev/null || fail "echo 0 > $p/enabled failed"
	wait_ns $SCALE_WAIT "$p is removed" gone "$p"
	now_ns
	DISABLE_MS[$n]=$(ms $((NOW_NS - t0)))

	expect_eq "$(cat "$sum")" $sum_orig "$TARGET's sum is the original again"
	expect_eq "$(lpshim_many_lines | head -n 3)" "" "enabled_functions lists no lpshim_many_fn_ any more"
	unload_mod "$PATCH"
	unload_mod "$TARGET"
	log "% rmmod lpshim"
	rmmod lpshim || fail "rmmod lpshim failed"
	[[ ! -e $LPSHIM_SYSFS && ! -e /sys/module/lpshim ]] || fail "lpshim is left after rmmod"

	expect_kmsg "^(lpshim: |lpshim_many_|% )" <<EOF
% insmod lpshim.ko
lpshim: loaded (version 0.1.0)
% insmod $TARGET.ko
$TARGET: loaded
% insmod $PATCH.ko
lpshim: enabling patch '$PATCH'
lpshim: '$PATCH': starting patching transition
lpshim: '$PATCH': patching complete
% echo 0 > $p/enabled
lpshim: '$PATCH': starting unpatching transition
lpshim: '$PATCH': unpatching complete
% rmmod $PATCH
% rmmod $TARGET
$TARGET: unloaded
% rmmod lpshim
lpshim: unloaded
EOF
	echo "enable of $n functions: ${ENABLE_MS[$n]} ms"
	echo "disable of $n functions: ${DISABLE_MS[$n]} ms"
}

for m in lpshim lpshim_many_target_1 lpshim_many_target_1000; do
	[[ ! -e /sys/module/$m ]] || fail "$m is already loaded"
done
[[ -r $ENABLED_FUNCTIONS ]] || mount -t tracefs nodev $TRACEFS 2>/dev/null || true
[[ -r $ENABLED_FUNCTIONS ]] || fail "no $ENABLED_FUNCTIONS (tracefs, CONFIG_DYNAMIC_FTRACE)"
expect_eq "$(sysctl -n kernel.ftrace_enabled)" 1 "kernel.ftrace_enabled is 1"
BASELINE=$(cat $ENABLED_FUNCTIONS)

scale 1000
scale 1
expect_eq "$(cat $ENABLED_FUNCTIONS)" "$BASELINE" "enabled_functions is what it was before the case"

echo "# $CASE on $KVER: time from insmod to transition 0, and from echo 0 > enabled until the patch leaves sysfs"
for n in 1 1000; do
	echo "enable of $n functions: ${ENABLE_MS[$n]} ms"
	echo "disable of $n functions: ${DISABLE_MS[$n]} ms"
done
