#!/bin/bash
# What the kernel and lpshim refuse in a patch module's livepatch relocations, and that a refusal
# changes nothing (issue 19). The modules are copies of two converted patches damaged by
# klp-mangle (tests/kmod/klp/meson.build), one damage each; the originals load, so each refusal
# is the damage's.
#
# vmlinux's relocations (.klp.rela.vmlinux.*) are applied by the kernel's module loader before
# the module's init runs, so lpshim never sees them: the loader refuses with upstream
# livepatch's own messages (kernel/livepatch/core.c, "livepatch: ..."), or the architecture's
# for a relocation type. A module object's relocations are lpshim's: it refuses the patch at
# enable (the object is loaded) or the object's module as it loads (the patch came first), with
# one "lpshim: " line naming the symbol or section and why.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

T=test_lpshim_twins
TWINS=/sys/module/$T/parameters/twins
KMSG='^(lpshim: |livepatch: |module: |% |insmod: )'

# nothing_changed: no patch in sysfs, /proc/cmdline and the twins are the originals.
nothing_changed() {
	expect_eq "$(ls $LPSHIM_SYSFS | tr '\n' ' ')" "" "$LPSHIM_SYSFS is empty"
	expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE" "/proc/cmdline is the original"
	[[ ! -e $TWINS ]] || expect_eq "$(cat $TWINS)" "a b" "both twins are unpatched"
}

# refused_by_loader NAME ERROR MESSAGE: insmod NAME fails with ERROR (insmod's words) and the
# kernel logs MESSAGE alone.
refused_by_loader() {
	local name=$1 error=$2 message=$3
	start_test "refused by the module loader: $message"
	load_failing_mod "$name" "$error"
	expect_kmsg "$KMSG" <<-EOF
	% insmod $name.ko
	$message
	insmod: ERROR: could not insert module $name.ko: $error
	EOF
	nothing_changed
}

# kernel_bytes ADDR N: N bytes of the kernel's memory at ADDR (hex), read in /proc/kcore.
kernel_bytes() {
	python3 - "$1" "$2" <<-'PY'
	import struct, sys
	addr, n = int(sys.argv[1], 16), int(sys.argv[2])
	with open("/proc/kcore", "rb") as kcore:
	    ehdr = kcore.read(64)
	    phoff, = struct.unpack_from("<Q", ehdr, 0x20)
	    phentsize, phnum = struct.unpack_from("<HH", ehdr, 0x36)
	    kcore.seek(phoff)
	    phdrs = kcore.read(phentsize * phnum)
	    for i in range(phnum):
	        p_type, _, offset, vaddr, _, size = struct.unpack_from("<IIQQQQ", phdrs, i * phentsize)
	        if p_type == 1 and vaddr <= addr and addr + n <= vaddr + size:
	            kcore.seek(offset + addr - vaddr)
	            print(kcore.read(n).hex())
	            break
	    else:
	        sys.exit("%#x is not in /proc/kcore" % addr)
	PY
}

# refused NAME MESSAGE: with $T loaded, insmod NAME fails with EINVAL and lpshim says MESSAGE.
refused() {
	local name=$1 message=$2
	start_test "refused by lpshim: $message"
	load_failing_mod "$name" "Invalid parameters"
	expect_kmsg "$KMSG" <<-EOF
	% insmod $name.ko
	lpshim: $message
	lpshim: failed to enable patch '$name' (-22)
	insmod: ERROR: could not insert module $name.ko: Invalid parameters
	EOF
	nothing_changed
}

lpshim_setup

start_test "the originals apply"
load_lp test_lpshim_klp_vmlinux
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE test_lpshim_klp_vmlinux" "/proc/cmdline shows saved_command_line"
disable_lp test_lpshim_klp_vmlinux
unload_mod test_lpshim_klp_vmlinux
load_mod $T
expect_eq "$(cat $TWINS)" "a b" "the twins return a and b"
load_lp test_lpshim_klp_twins
expect_eq "$(cat $TWINS)" "a a" "call_b calls twin 1 through a relocation"
disable_lp test_lpshim_klp_twins
unload_mod test_lpshim_klp_twins
expect_eq "$(cat $TWINS)" "a b" "the twins are unpatched again"
unload_mod $T

refused_by_loader test_klp_vml_unknown "Invalid parameters" \
	"livepatch: symbol 'lpshim_no_such_symbol' not found in symbol table"
# klp_find_object_symbol() prints vmlinux's NULL object name as it is, on 6.1 and 6.12.
refused_by_loader test_klp_vml_ambiguous "Invalid parameters" \
	"livepatch: unresolvable ambiguity for symbol 'brightness_show' in object '(null)'"
refused_by_loader test_klp_vml_badpos "Invalid parameters" \
	"livepatch: symbol position 2 for symbol 'saved_command_line' in object 'vmlinux' not found"
refused_by_loader test_klp_vml_badname "Invalid parameters" \
	"livepatch: symbol .klp.sym.vmlinux.saved_command_line has an incorrectly formatted name"
refused_by_loader test_klp_vml_badsection "Invalid parameters" \
	"livepatch: section .klp.rela..text has an incorrectly formatted name"
refused_by_loader test_klp_vml_reltype "Invalid module format" \
	"module: test_klp_vml_reltype: Unknown rela relocation: 9"

load_mod $T
refused test_klp_mod_unknown \
	"patch 'test_klp_mod_unknown': symbol 'no_such_twin' not found in '$T'"
refused test_klp_mod_ambig \
	"patch 'test_klp_mod_ambig': symbol 'twin' is ambiguous in '$T' (2 matches): its livepatch symbol must give its position"
refused test_klp_mod_badpos \
	"patch 'test_klp_mod_badpos': symbol 'twin' in '$T' has no position 3 (2 matches)"
refused test_klp_mod_badname \
	"patch 'test_klp_mod_badname': symbol '.klp.sym.$T.twin' is malformed (.klp.sym.<object>.<name>,<position>)"
refused test_klp_mod_badsec \
	"patch 'test_klp_mod_badsec': relocation section '.klp.rela.$T' is malformed (.klp.rela.<object>.<section>)"
refused test_klp_mod_nokeep \
	"patch 'test_klp_mod_nokeep' has livepatch symbols but the kernel kept no ELF information for it: build it with LPSHIM_PATCH_MODULE() (modinfo livepatch=Y)"
refused test_klp_mod_otherobj \
	"patch 'test_klp_mod_otherobj': relocation section '.klp.rela.lpshim_klp_target.text' is for 'lpshim_klp_target', which the patch does not patch"
refused test_klp_mod_vmlinux \
	"patch 'test_klp_mod_vmlinux': symbol '.klp.sym.vmlinux.saved_command_line,0' is not in '$T', the object of relocation section '.klp.rela.$T.text'"
refused test_klp_mod_reltype \
	"patch 'test_klp_mod_reltype': relocation type 9 in '.klp.rela.$T.text' is not one lpshim applies"
# Checked before anything is written: the value must fit the place, and the place be zero.
refused test_klp_mod_overflow \
	"patch 'test_klp_mod_overflow': relocation 0 of '.klp.rela.$T.text' (type 10, symbol '.klp.sym.$T.twin,1') cannot be written"
refused test_klp_mod_nonzero \
	"patch 'test_klp_mod_nonzero': relocation 0 of '.klp.rela.$T.text' (type 4, symbol '.klp.sym.$T.twin,1') cannot be written"
unload_mod $T

# The patch first: its relocations are checked as the object loads, and the object is refused.
start_test "a module object whose relocations fail is refused as it loads"
load_lp test_klp_mod_unknown
load_failing_mod $T "Invalid parameters"
expect_kmsg "$KMSG" <<EOF
% insmod test_klp_mod_unknown.ko
lpshim: enabling patch 'test_klp_mod_unknown'
lpshim: 'test_klp_mod_unknown': starting patching transition
lpshim: 'test_klp_mod_unknown': patching complete
% insmod $T.ko
lpshim: patch 'test_klp_mod_unknown': symbol 'no_such_twin' not found in '$T'
lpshim: patch 'test_klp_mod_unknown' failed for module '$T', refusing to load module '$T'
insmod: ERROR: could not insert module $T.ko: Invalid parameters
EOF
expect_eq "$(cat $LPSHIM_SYSFS/test_klp_mod_unknown/$T/patched)" 0 "the object is not patched"
[[ ! -e /sys/module/$T ]] || fail "$T is loaded"
disable_lp test_klp_mod_unknown
unload_mod test_klp_mod_unknown
load_mod $T
expect_eq "$(cat $TWINS)" "a b" "$T loads, unpatched, once the patch is gone"
unload_mod $T

# A refusal as the object loads writes nothing either: not zeros over the patch's own code
# where a relocation it refused points.
start_test "a module object refused as it loads leaves the patch's code as it was"
load_lp test_klp_mod_nonzero
text=$(cat /sys/module/test_klp_mod_nonzero/sections/.text)
code=$(kernel_bytes "$text" 8)
load_failing_mod $T "Invalid parameters"
expect_kmsg "$KMSG" <<EOF
% insmod test_klp_mod_nonzero.ko
lpshim: enabling patch 'test_klp_mod_nonzero'
lpshim: 'test_klp_mod_nonzero': starting patching transition
lpshim: 'test_klp_mod_nonzero': patching complete
% insmod $T.ko
lpshim: patch 'test_klp_mod_nonzero': relocation 0 of '.klp.rela.$T.text' (type 4, symbol '.klp.sym.$T.twin,1') cannot be written
lpshim: patch 'test_klp_mod_nonzero' failed for module '$T', refusing to load module '$T'
insmod: ERROR: could not insert module $T.ko: Invalid parameters
EOF
expect_eq "$(kernel_bytes "$text" 8)" "$code" "the first bytes of the patch's code are unchanged"
disable_lp test_klp_mod_nonzero
unload_mod test_klp_mod_nonzero

# The place must be inside its section: an offset whose end wraps around 2^64 is not. (Last:
# an lpshim that wrote there oopsed.)
load_mod $T
refused test_klp_mod_offwrap \
	"patch 'test_klp_mod_offwrap': relocation 0 of '.klp.rela.$T.text' is out of bounds"
unload_mod $T

lpshim_teardown
