# Sourced by the lpshim-*.sh guest cases after lib.sh: upstream livepatch's selftest harness
# (tools/testing/selftests/livepatch/functions.sh), for lpshim. Like upstream's, the helpers log
# what they do to /dev/kmsg ("% insmod P.ko", "% echo 0 > .../enabled", "% rmmod P"), so that
# a case's expected kernel messages read as the story of the case.

LPSHIM_SYSFS=/sys/kernel/lpshim
KLP_SYSFS=/sys/kernel/livepatch
# Seconds to wait for lpshim: its transitions in these cases have nothing to wait for.
LP_WAIT=15
# Seconds to wait for upstream livepatch, as its own harness does: it signals the tasks that
# keep a transition open only after 15 s.
KLP_WAIT=60
# The kernel messages a case compares: lpshim's, upstream livepatch's, the test modules', and
# what the helpers log. (expect_kmsg drops the tainting lines of module loading.)
# shellcheck disable=SC2034 # used by the cases
LP_KMSG='^(lpshim: |livepatch: |test_lpshim_|test_klp_|test_kprobe_|% |insmod: |sysctl: )'
# The modules of tests/kmod/patches.
LP_TEST_MODULES='test_lpshim_livepatch test_lpshim_atomic_replace test_lpshim_callbacks_demo
	test_lpshim_callbacks_demo2 test_lpshim_callbacks_mod test_lpshim_callbacks_busy
	test_klp_conflict test_klp_other test_kprobe_post test_lpshim_twins test_lpshim_refused
	test_lpshim_unmarked'
# lpshim_target's debugfs directory (tests/kmod/lpshim_target.c): a read() of
# /dev/lpshim_target_sleep sleeps in lpshim_target_sleep until a write to its sleep_release.
LP_TARGET_DEBUGFS=/sys/kernel/debug/lpshim_target

log() {
	echo "$*" >/dev/kmsg
}

# start_test DESCRIPTION: a new case; its kernel messages are compared from here.
start_test() {
	echo "# $CASE: $1"
	kmsg_mark
}

# try_write VALUE FILE: write VALUE to FILE in one write; on failure print why (strerror).
try_write() {
	local err
	err=$({ printf '%s\n' "$1" >"$2"; } 2>&1) && return 0
	echo "${err##*: }"
	return 1
}

# expect_write_error VALUE FILE ERROR WHAT: writing VALUE to FILE fails with ERROR (strerror).
expect_write_error() {
	local err
	if err=$(try_write "$1" "$2"); then
		fail "$4: writing '$1' to $2 succeeded"
	fi
	expect_eq "$err" "$3" "$4"
}

# sysfs_value FILE: its contents, or <missing>.
sysfs_value() {
	cat "$1" 2>/dev/null || echo "<missing>"
}

# expect_attr PATH MODE [VALUE]: PATH has the permissions MODE (ls -l style) and reads VALUE.
expect_attr() {
	expect_eq "$(stat -c %A "$1" 2>/dev/null || echo '<missing>')" "$2" "${1#"$LPSHIM_SYSFS"/} is $2"
	(($# < 3)) || expect_eq "$(sysfs_value "$1")" "$3" "${1#"$LPSHIM_SYSFS"/} reads $3"
}

# insmod_logged NAME [PARAM=VALUE...]: log and run "insmod NAME.ko ..." from the modules
# directory, so that insmod's messages name NAME.ko alone; insmod's own status.
insmod_logged() {
	local name=$1 ko
	shift
	ko=$(module_path "$name") || exit 1
	log "% insmod $name.ko${*:+ $*}"
	(cd "$(dirname "$ko")" && insmod "$name.ko" "$@")
}

# load_mod NAME [PARAM=VALUE...]: insmod a module that must load.
load_mod() {
	insmod_logged "$@" || fail "insmod $1.ko failed (arguments: ${*:2})"
	wait_until $LP_WAIT "/sys/module/$1 exists" test -d "/sys/module/$1"
}

# load_lp_nowait NAME [PARAM=VALUE...]: insmod an lpshim patch module; wait for its directory.
load_lp_nowait() {
	load_mod "$@"
	wait_until $LP_WAIT "$LPSHIM_SYSFS/$1 exists" test -d "$LPSHIM_SYSFS/$1"
}

# load_lp NAME [PARAM=VALUE...]: insmod an lpshim patch module; wait until it is in effect.
load_lp() {
	load_lp_nowait "$@"
	wait_until $LP_WAIT "the patching transition of $1 completes" grep -sqx 0 "$LPSHIM_SYSFS/$1/transition"
}

# load_klp NAME [PARAM=VALUE...]: insmod an upstream livepatch module; wait until it is in effect.
load_klp() {
	load_mod "$@"
	wait_until $LP_WAIT "$KLP_SYSFS/$1 exists" test -d "$KLP_SYSFS/$1"
	wait_until $KLP_WAIT "the patching transition of $1 completes" grep -sqx 0 "$KLP_SYSFS/$1/transition"
}

# load_failing_mod NAME ERROR [PARAM=VALUE...]: insmod must fail with ERROR (insmod's words,
# e.g. "Device or resource busy"); insmod's message is logged, as upstream's harness does.
load_failing_mod() {
	local name=$1 want=$2 err
	shift 2
	if err=$(insmod_logged "$name" "$@" 2>&1); then
		fail "insmod $name.ko succeeded; expected it to fail with '$want'"
	fi
	log "$err"
	expect_eq "$err" "insmod: ERROR: could not insert module $name.ko: $want" "insmod $name.ko fails: $want"
	[[ ! -e /sys/module/$name ]] || fail "$name is loaded after its insmod failed"
}

# disable_lp NAME: start the unpatching transition; wait until the patch has left sysfs.
disable_lp() {
	local p=$LPSHIM_SYSFS/$1 err
	log "% echo 0 > $p/enabled"
	err=$(try_write 0 "$p/enabled") || fail "echo 0 > $p/enabled: $err"
	wait_until $LP_WAIT "$p is removed" test ! -e "$p"
}

# disable_klp NAME: the same for an upstream livepatch.
disable_klp() {
	local p=$KLP_SYSFS/$1 err
	log "% echo 0 > $p/enabled"
	err=$(try_write 0 "$p/enabled") || fail "echo 0 > $p/enabled: $err"
	wait_until $KLP_WAIT "$p is removed" test ! -e "$p"
}

# unload_mod NAME: wait until nothing holds the module, rmmod it, wait until it is gone.
unload_mod() {
	wait_until $LP_WAIT "nothing holds $1" grep -sqx 0 "/sys/module/$1/refcnt"
	log "% rmmod $1"
	rmmod "$1" || fail "rmmod $1 failed"
	wait_until $LP_WAIT "$1 is unloaded" test ! -e "/sys/module/$1"
}

# log_patched FILE...: log the "live patched" line each FILE shows, as upstream's cases do.
log_patched() {
	local f line
	for f in "$@"; do
		line=$(grep 'live patched' "$f") || continue
		log "$line"
	done
}

# What /proc shows unpatched, read by lpshim_setup.
ORIG_CMDLINE='' ORIG_VERSION='' ORIG_MEMINFO=''

# lpshim_setup: the state every case starts from: lpshim.ko loaded, nothing patched, ftrace on.
lpshim_setup() {
	local m
	for m in lpshim $LP_TEST_MODULES; do
		[[ ! -e /sys/module/$m ]] || fail "$m is already loaded"
	done
	[[ -z $(ls -A $KLP_SYSFS 2>/dev/null) ]] || fail "an upstream livepatch is already loaded: $(ls $KLP_SYSFS)"
	expect_eq "$(sysctl -n kernel.ftrace_enabled)" 1 "kernel.ftrace_enabled is 1"
	ORIG_CMDLINE=$(cat /proc/cmdline)
	ORIG_VERSION=$(cat /proc/version)
	ORIG_MEMINFO=$(head -n 1 /proc/meminfo)
	insmod "$(module_path lpshim)" || fail "insmod lpshim.ko failed"
	[[ -d $LPSHIM_SYSFS ]] || fail "$LPSHIM_SYSFS is missing after insmod lpshim.ko"
	ok "lpshim.ko is loaded"
}

# expect_unpatched: /proc shows what it showed before the case.
expect_unpatched() {
	expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is the original"
	expect_eq "$(cat /proc/version)" "$ORIG_VERSION" "/proc/version is the original"
	expect_eq "$(head -n 1 /proc/meminfo)" "$ORIG_MEMINFO" "/proc/meminfo is the original"
}

# lpshim_teardown: every patch and test module is gone, /proc is unpatched, and lpshim.ko
# unloads leaving nothing.
lpshim_teardown() {
	local m
	[[ -z $(ls -A $LPSHIM_SYSFS) ]] || fail "patches are left in $LPSHIM_SYSFS: $(ls $LPSHIM_SYSFS)"
	[[ -z $(ls -A $KLP_SYSFS 2>/dev/null) ]] || fail "patches are left in $KLP_SYSFS: $(ls $KLP_SYSFS)"
	for m in $LP_TEST_MODULES; do
		[[ ! -e /sys/module/$m ]] || fail "$m is still loaded"
	done
	expect_unpatched
	expect_eq "$(sysctl -n kernel.ftrace_enabled)" 1 "kernel.ftrace_enabled is 1 again"
	rmmod lpshim || fail "rmmod lpshim failed"
	[[ ! -e $LPSHIM_SYSFS && ! -e /sys/module/lpshim ]] || fail "lpshim is left after rmmod"
	ok "every patch and test module is unloaded, and lpshim.ko with them"
}

sleepers_are() { grep -qx "$1" $LP_TARGET_DEBUGFS/sleepers; }

# start_sleeper NAME [CMD...]: run CMD (default: cat the sleep device) in the background with
# its output in $OUT/NAME (OUT: the case's directory), and wait until one more task sleeps in
# lpshim_target_sleep; the pid is in $SLEEPER.
start_sleeper() {
	local name=$1 before
	shift
	(($#)) || set -- cat /dev/lpshim_target_sleep
	before=$(cat $LP_TARGET_DEBUGFS/sleepers)
	"$@" >"$OUT/$name" &
	SLEEPER=$!
	wait_until 10 "$name sleeps in lpshim_target_sleep" sleepers_are $((before + 1))
}

# release_sleepers: wake every task asleep in lpshim_target_sleep and wait for this shell's
# background jobs.
release_sleepers() {
	echo 1 >$LP_TARGET_DEBUGFS/sleep_release
	wait
}
