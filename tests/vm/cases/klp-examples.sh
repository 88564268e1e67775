#!/bin/bash
# The examples of issue 19, whose replacements reference symbols that are not exported (static
# functions and data of vmlinux and of a module), through livepatch relocations made by
# lpshim-klp-convert: each applies, shows its effect, reverts, and its module unloads; the
# module-object examples are patched whenever their target loads, before or after the patch,
# and again after each reload, and a target that goes leaves nothing of its addresses behind.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

KT=lpshim_klp_target
D=/sys/kernel/debug/$KT
KLP_KMSG="^(lpshim: |$KT: |% )"

# name INDEX: what lpshim_klp_target's "name" shows for INDEX.
name() {
	echo "$1" >$D/name
	cat $D/name
}
# labels: the names of /proc/meminfo's lines (their values change from one read to the next).
labels() {
	cut -d: -f1 /proc/meminfo
}

lpshim_setup
ORIG_LABELS=$(labels)

start_test "lpshim_example_saved_cmdline: cmdline_proc_show() from the non-exported saved_command_line"
load_lp lpshim_example_saved_cmdline
expect_eq "$(cat /proc/cmdline)" "$ORIG_CMDLINE (live patched)" "/proc/cmdline shows saved_command_line and the mark"
disable_lp lpshim_example_saved_cmdline
unload_mod lpshim_example_saved_cmdline
expect_unpatched

start_test "lpshim_example_meminfo: meminfo_proc_show() with the kernel's static functions and data"
load_lp lpshim_example_meminfo
expect_eq "$(labels)" "${ORIG_LABELS/VmallocChunk/VMALLOCCHUNK}" "/proc/meminfo has every line, VmallocChunk renamed"
# These come from functions the kernel does not export (hugetlb_report_meminfo(),
# arch_report_meminfo()) and from total_swap_pages.
expect_match "$(grep -E '^(HugePages_Total|DirectMap4k|SwapTotal):' /proc/meminfo | cut -d: -f1 | tr '\n' ' ')" \
	'^HugePages_Total DirectMap4k $|^SwapTotal HugePages_Total DirectMap4k $' \
	"the lines of hugetlb_report_meminfo() and arch_report_meminfo() are there"
expect_match "$(grep '^SwapTotal:' /proc/meminfo)" '^SwapTotal: +0 kB$' "SwapTotal is total_swap_pages (no swap in the guest)"
expect_match "$(grep '^MemTotal:' /proc/meminfo)" '^MemTotal: +[1-9][0-9]* kB$' "MemTotal is not zero"
disable_lp lpshim_example_meminfo
unload_mod lpshim_example_meminfo
expect_eq "$(labels)" "$ORIG_LABELS" "/proc/meminfo is the original again"

start_test "lpshim_example_klp_compat: a source for upstream livepatch, built with klp-compat.h"
load_lp lpshim_example_klp_compat
expect_eq "$(cat /proc/version)" "$ORIG_VERSION
lpshim_example_klp_compat: read 1 time(s)" "/proc/version shows linux_proc_banner and the count"
expect_eq "$(sed -n 2p /proc/version)" "lpshim_example_klp_compat: read 2 time(s)" "the shadow variable counts the reads"
disable_lp lpshim_example_klp_compat
unload_mod lpshim_example_klp_compat
expect_unpatched

start_test "lpshim_example_klp_module: a module's static function, patched while the module is loaded"
load_mod $KT
expect_eq "$(name 4)" "(past the end)" "unpatched, index 4 passes the bounds check"
expect_eq "$(name 9)" "out of range" "unpatched, index 9 is rejected"
expect_eq "$(cat $D/rejected)" 1 "one rejection counted"
load_lp lpshim_example_klp_module
expect_eq "$(name 4)" "out of range" "patched, index 4 is rejected (klp_target_reject() via a relocation)"
expect_eq "$(name 3)" "three" "patched, index 3 reads klp_target_names[] via a relocation"
expect_eq "$(cat $D/rejected)" 2 "the original's static counter counted the patch's rejection"
for round in 1 2; do
	unload_mod $KT
	load_mod $KT
	expect_eq "$(name 4)" "out of range" "after reload $round, index 4 is rejected again"
	expect_eq "$(name 2)" "two" "after reload $round, the names are the new module's"
	expect_eq "$(cat $D/rejected)" 1 "after reload $round, the new module's counter counted it"
done
disable_lp lpshim_example_klp_module
unload_mod lpshim_example_klp_module
expect_eq "$(name 4)" "(past the end)" "reverted, the bug is back"
unload_mod $KT
expect_kmsg "$KLP_KMSG" <<EOF
% insmod $KT.ko
$KT: loaded
% insmod lpshim_example_klp_module.ko
lpshim: 'lpshim_example_klp_module': applied 3 livepatch relocations for '$KT'
lpshim: enabling patch 'lpshim_example_klp_module'
lpshim: 'lpshim_example_klp_module': starting patching transition
lpshim: 'lpshim_example_klp_module': patching complete
% rmmod $KT
$KT: unloaded
lpshim: reverting patch 'lpshim_example_klp_module' on unloading module '$KT'
lpshim: 'lpshim_example_klp_module': cleared 3 livepatch relocations for '$KT'
% insmod $KT.ko
lpshim: 'lpshim_example_klp_module': applied 3 livepatch relocations for '$KT'
lpshim: applying patch 'lpshim_example_klp_module' to loading module '$KT'
$KT: loaded
% rmmod $KT
$KT: unloaded
lpshim: reverting patch 'lpshim_example_klp_module' on unloading module '$KT'
lpshim: 'lpshim_example_klp_module': cleared 3 livepatch relocations for '$KT'
% insmod $KT.ko
lpshim: 'lpshim_example_klp_module': applied 3 livepatch relocations for '$KT'
lpshim: applying patch 'lpshim_example_klp_module' to loading module '$KT'
$KT: loaded
% echo 0 > $LPSHIM_SYSFS/lpshim_example_klp_module/enabled
lpshim: 'lpshim_example_klp_module': starting unpatching transition
lpshim: 'lpshim_example_klp_module': unpatching complete
% rmmod lpshim_example_klp_module
% rmmod $KT
$KT: unloaded
EOF

start_test "lpshim_example_klp_module: a patch loaded before its target"
load_lp lpshim_example_klp_module
expect_eq "$(cat $LPSHIM_SYSFS/lpshim_example_klp_module/$KT/patched)" 0 "not patched while $KT is not loaded"
load_mod $KT
expect_eq "$(cat $LPSHIM_SYSFS/lpshim_example_klp_module/$KT/patched)" 1 "patched once $KT loads"
expect_eq "$(name 4)" "out of range" "index 4 is rejected from the target's load"
unload_mod $KT
disable_lp lpshim_example_klp_module
unload_mod lpshim_example_klp_module
load_mod $KT
expect_eq "$(name 4)" "(past the end)" "a target loaded after the revert runs the original"
unload_mod $KT

start_test "lpshim_example_klp_static_var: new code reads and writes a module's static variable"
load_mod $KT
load_lp lpshim_example_klp_static_var
expect_eq "$(name 9)" "out of range" "index 9 is rejected"
expect_eq "$(cat $D/rejected)" 1 "reading rejected shows the count"
expect_eq "$(cat $D/rejected)" 0 "and resets it, through the static variable"
unload_mod $KT
load_mod $KT
expect_eq "$(name 9)$(name 9)" "out of rangeout of range" "two rejections in the reloaded module"
expect_eq "$(cat $D/rejected)" 2 "after a reload the count is the new module's"
expect_eq "$(cat $D/rejected)" 0 "and reading resets it"
disable_lp lpshim_example_klp_static_var
unload_mod lpshim_example_klp_static_var
name 9 >/dev/null
expect_eq "$(cat $D/rejected)$(cat $D/rejected)" 11 "reverted, reading no longer resets"
unload_mod $KT

lpshim_teardown
