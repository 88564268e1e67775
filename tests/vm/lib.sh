# Sourced by the guest test cases in tests/vm/cases: small assertions that say what failed.
# A case runs inside the guest (tests/vm/run) as root in the repository root and gets the meson
# build directory as its first argument.
set -euo pipefail

BUILD=${1:?usage: $0 BUILD_DIR}
KVER=$(uname -r)
CASE=$(basename "$0" .sh)

# A case may define on_fail to print what explains a failure (a daemon's journal): a failure
# in CI is read from the log alone.
fail() {
	echo "FAIL [$CASE on $KVER]: $*" >&2
	if declare -F on_fail >/dev/null; then
		on_fail >&2 || true
	fi
	exit 1
}

ok() {
	echo "ok - $*"
}

expect_eq() { # ACTUAL EXPECTED WHAT
	[[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
	ok "$3"
}

expect_match() { # TEXT REGEX WHAT
	[[ $1 =~ $2 ]] || fail "$3: '$1' does not match /$2/"
	ok "$3"
}

# TEXT as an extended regex that matches it literally (6.12's release has a '+').
re_quote() {
	printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'
}

# The .ko of NAME built for the running kernel (scripts/kbuild links them all here). With
# LPSHIM_FLAVOUR=F (e.g. debug, which vm-debug can pass), lpshim itself is the build linked as
# modules/<release>/F/lpshim.ko; the other modules are the same for every flavour.
module_path() {
	local ko=$BUILD/modules/$KVER/$1.ko
	if [[ $1 == lpshim && -n ${LPSHIM_FLAVOUR:-} ]]; then
		ko=$BUILD/modules/$KVER/$LPSHIM_FLAVOUR/$1.ko
		[[ -f $ko ]] || fail "no $ko (LPSHIM_FLAVOUR=$LPSHIM_FLAVOUR): build lpshim's $LPSHIM_FLAVOUR flavour for kernel $KVER, or unset LPSHIM_FLAVOUR"
	fi
	[[ -f $ko ]] || fail "no $ko: build with 'meson compile -C $BUILD' for kernel $KVER"
	echo "$ko"
}

# The rest of the case loads the debug build of lpshim.ko: it needs its test hooks.
use_debug_lpshim() {
	LPSHIM_FLAVOUR=debug
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.1 s, fail after SECONDS.
wait_until() {
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	fail "timed out after ${limit}s waiting until $what"
}

# Kernel messages since the last kmsg_mark, without timestamps: what the tests compare exactly,
# as upstream's livepatch selftests do.
kmsg_mark() {
	LPVM_MARK="lpvm-mark-$CASE-$RANDOM$RANDOM"
	echo "$LPVM_MARK" >/dev/kmsg
}

kmsg_since_mark() {
	dmesg | sed -n "/$LPVM_MARK/,\$p" | tail -n +2 | sed 's/^\[ *[0-9.]*\] //'
}

# expect_kmsg FILTER_REGEX <<EXPECTED: the filtered messages since the mark are exactly these.
expect_kmsg() {
	local actual expected
	actual=$(kmsg_since_mark | grep -E "$1" | grep -vE 'taint|module verification failed' || true)
	expected=$(cat)
	if [[ $actual != "$expected" ]]; then
		echo "--- expected kernel messages:" >&2
		echo "$expected" >&2
		echo "--- actual kernel messages:" >&2
		echo "$actual" >&2
		fail "kernel messages differ"
	fi
	ok "kernel messages: $(echo "$expected" | head -n 1)$( (($(echo "$expected" | wc -l) > 1)) && echo ' ...')"
}
