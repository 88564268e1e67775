#!/usr/bin/env bash
# lpshim-klp-convert's command line on the fixtures: exit status, messages, and files that a
# refusal or a module with nothing to convert leaves exactly as they were.
#   cli.sh CONVERTER FIXTURE_OBJECTS_DIR FIXTURE_SOURCE_DIR
set -euo pipefail

convert=$1 objs=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() { echo "not ok - $*"; failures=$((failures + 1)); }
ok() { echo "ok - $*"; }

# The fixture kernel's build directory.
kdir=$tmp/kdir
mkdir -p "$kdir/include/generated"
cp "$src/Module.symvers" "$kdir/"
echo '#define UTS_RELEASE "6.1.0-test"' >"$kdir/include/generated/utsrelease.h"
echo '#define UTS_VERSION "#1 SMP fixture"' >"$kdir/include/generated/utsversion.h"
common=(--kdir "$kdir" --kallsyms "$src/kallsyms")

# expect STATUS NAME CMD...: CMD exits with STATUS; its stderr is in $tmp/err.
expect() {
	local want=$1 name=$2 rc=0
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if ((rc == want)); then ok "$name (exit $rc)"; else fail "$name: exit $rc, expected $want: $(cat "$tmp/err")"; fi
}
expect_err() { # REGEX NAME: stderr of the last expect matches
	if grep -qE -- "$1" "$tmp/err"; then ok "$2"; else fail "$2: stderr lacks /$1/: $(cat "$tmp/err")"; fi
}

cp "$objs/exported.o" "$tmp/exported.o"
expect 0 "a module with only exported symbols" "$convert" "${common[@]}" "$tmp/exported.o"
cmp -s "$objs/exported.o" "$tmp/exported.o" && ok "... is left byte for byte" || fail "exported.o was changed"
expect 0 "... also with -o" "$convert" "${common[@]}" -o "$tmp/exported-out.o" "$tmp/exported.o"
cmp -s "$objs/exported.o" "$tmp/exported-out.o" && ok "... which writes the same bytes" || fail "-o wrote something else"

cp "$objs/convert.o" "$tmp/convert.o"
expect 0 "a module with unexported symbols" "$convert" "${common[@]}" -v "$tmp/convert.o"
expect_err 'static_fn -> \.klp\.sym\.vmlinux\.static_fn,0 \(2 relocations\)$' "-v says what was converted"
readelf -SW "$tmp/convert.o" | grep -qE '\.klp\.rela\.vmlinux\.text +RELA .* AIo ' &&
	ok "readelf sees an SHF_ALLOC|SHF_RELA_LIVEPATCH section" || fail "no .klp.rela.vmlinux.text AIo in readelf -S"
readelf -sW "$tmp/convert.o" | grep -qE 'NOTYPE +GLOBAL +DEFAULT +OS \[0xff20\] \.klp\.sym\.vmlinux\.static_var,0$' &&
	ok "readelf sees SHN_LIVEPATCH symbols" || fail "no SHN_LIVEPATCH .klp.sym.vmlinux.static_var,0 in readelf -s"
expect 0 "converting it again" "$convert" "${common[@]}" -o "$tmp/convert-again.o" "$tmp/convert.o"
cmp -s "$tmp/convert.o" "$tmp/convert-again.o" && ok "... changes nothing" || fail "a second conversion changed the module"

cp "$objs/ambiguous.o" "$tmp/ambiguous.o"
expect 1 "an ambiguous symbol" "$convert" "${common[@]}" -o "$tmp/ambiguous-out.o" "$tmp/ambiguous.o"
expect_err "symbol 'dup_fn' is ambiguous in vmlinux" "... is named"
expect_err 'refused \(1 error\); nothing was written$' "... and nothing was written"
[[ ! -e $tmp/ambiguous-out.o ]] && cmp -s "$objs/ambiguous.o" "$tmp/ambiguous.o" &&
	ok "... indeed" || fail "a refused conversion wrote a file"

cp "$objs/convert.o" "$tmp/signed.o"
printf 'SIGNATURE~Module signature appended~\n' >>"$tmp/signed.o"
expect 1 "a signed module" "$convert" "${common[@]}" "$tmp/signed.o"
expect_err 'convert it before signing it' "... must be converted before signing"

xz -c "$objs/target.o" >"$tmp/mytarget.ko.xz"
cp "$objs/modpatch.o" "$tmp/modpatch.o"
expect 0 "a module object given as a .ko.xz" "$convert" "${common[@]}" -v --module "$tmp/mytarget.ko.xz" "$tmp/modpatch.o"
expect_err 'target_static -> \.klp\.sym\.mytarget\.target_static,0' "... is named by its modinfo and read"
mkdir -p "$tmp/modules/kernel/test"
cp "$tmp/mytarget.ko.xz" "$tmp/modules/kernel/test/"
echo "kernel/test/mytarget.ko.xz:" >"$tmp/modules/modules.dep"
cp "$objs/modpatch.o" "$tmp/modpatch2.o"
expect 0 "a module object found through modules.dep" "$convert" "${common[@]}" --modules-dir "$tmp/modules" --module mytarget "$tmp/modpatch2.o"
expect 1 "a module object that is nowhere" "$convert" "${common[@]}" --modules-dir "$tmp/modules" --module nosuch "$tmp/modpatch2.o"
expect_err "no such module in $tmp/modules/modules.dep" "... is named"

sed 's/^# release: .*/# release: 6.1.0-other/' "$src/kallsyms" >"$tmp/kallsyms-other"
cp "$objs/convert.o" "$tmp/c2.o"
expect 1 "symbols of another release" "$convert" --kdir "$kdir" --kallsyms "$tmp/kallsyms-other" "$tmp/c2.o"
expect_err 'holds the symbols of 6\.1\.0-other' "... are refused"
sed 's/^# version: .*/# version: #2 SMP another build/' "$src/kallsyms" >"$tmp/kallsyms-rebuilt"
expect 1 "symbols of another build of the release" "$convert" --kdir "$kdir" --kallsyms "$tmp/kallsyms-rebuilt" "$tmp/c2.o"
expect_err 'holds the symbols of another build of 6\.1\.0-test' "... are refused"
grep -v '^#' "$src/kallsyms" >"$tmp/kallsyms-plain"
expect 0 "plain /proc/kallsyms lines, without the header" "$convert" --kdir "$kdir" --kallsyms "$tmp/kallsyms-plain" "$tmp/c2.o"

mkdir -p "$tmp/kdir2/include/generated"
cp "$src/Module.symvers" "$tmp/kdir2/"
echo '#define UTS_RELEASE "6.12.0-test"' >"$tmp/kdir2/include/generated/utsrelease.h"
cp "$objs/convert.o" "$tmp/c3.o"
expect 1 "a build directory of another release" "$convert" --kdir "$tmp/kdir2" --kallsyms "$src/kallsyms" "$tmp/c3.o"
expect_err 'is the build directory of 6\.12\.0-test' "... is refused"

head -c 200 /dev/urandom >"$tmp/garbage.ko"
expect 1 "a file that is not ELF" "$convert" "${common[@]}" "$tmp/garbage.ko"
expect_err 'not an ELF file' "... is named so"
head -c 1000 "$objs/convert.o" >"$tmp/truncated.ko"
expect 1 "a truncated module" "$convert" "${common[@]}" "$tmp/truncated.ko"
expect_err 'malformed ELF file' "... is named so"

expect 2 "no module" "$convert" "${common[@]}"
expect 2 "an unknown option" "$convert" --frobnicate x.ko
expect 0 "--help" "$convert" --help

if [[ -r /proc/kallsyms ]] && [[ -n $(head -c 1 /proc/kallsyms) ]]; then
	expect 0 "--dump-symbols" "$convert" --dump-symbols "$tmp/dump"
	head -n 1 "$tmp/dump" | grep -q '^# lpshim-klp-convert --dump-symbols' &&
		grep -qx "# release: $(uname -r)" "$tmp/dump" && ok "... writes the header" ||
		fail "--dump-symbols wrote no header"
else
	ok "# SKIP --dump-symbols: no /proc/kallsyms here"
fi

((failures == 0)) || { echo "$failures failure(s)"; exit 1; }
