#!/bin/bash
# The example patch modules (examples/, docs/writing-patches.md) do what their comments say,
# and enabling a patch taints the kernel as livepatched (TAINT_LIVEPATCH, bit 15, "K").
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

T=/sys/kernel/debug/lpshim_target
version() { cat $T/version; }

lpshim_setup

start_test "lpshim_example_cmdline"
load_lp lpshim_example_cmdline
expect_eq "$(cat /proc/cmdline)" "lpshim_example_cmdline: this has been live patched" "/proc/cmdline is live patched"
expect_eq "$((($(cat /proc/sys/kernel/tainted) >> 15) & 1))" 1 "the kernel is tainted as livepatched"
disable_lp lpshim_example_cmdline
unload_mod lpshim_example_cmdline
expect_unpatched

start_test "stacked v1 and v2, then a cumulative replace"
load_mod lpshim_target
expect_eq "$(version)" original "lpshim_target runs the original"
load_lp lpshim_example_target_v1
expect_eq "$(version)" v1 "v1 is in effect"
load_lp lpshim_example_target_v2
expect_eq "$(version)" v2 "v2 stacked on v1 wins"
disable_lp lpshim_example_target_v2
unload_mod lpshim_example_target_v2
expect_eq "$(version)" v1 "disabling v2 brings back v1, not the original"
load_lp lpshim_example_target_v2
load_lp lpshim_example_cumulative
expect_eq "$(version)" cumulative "the cumulative patch replaces v1 and v2"
[[ ! -e $LPSHIM_SYSFS/lpshim_example_target_v1 && ! -e $LPSHIM_SYSFS/lpshim_example_target_v2 ]] ||
	fail "replaced patches are still in sysfs"
ok "the replaced patches left sysfs"
echo 1000 >$T/bench
expect_match "$(cat $T/bench)" 'version_delta=1000$' "the cumulative patch's bench_fn runs"
unload_mod lpshim_example_target_v2
unload_mod lpshim_example_target_v1
ok "the replaced patches' modules are removable"
disable_lp lpshim_example_cumulative
unload_mod lpshim_example_cumulative
expect_eq "$(version)" original "the original runs again"

start_test "lpshim_example_callbacks"
load_lp lpshim_example_callbacks
disable_lp lpshim_example_callbacks
unload_mod lpshim_example_callbacks
expect_kmsg '^(lpshim|lpshim_example_callbacks): ' <<EOF
lpshim: enabling patch 'lpshim_example_callbacks'
lpshim_example_callbacks: pre_patch_callback: vmlinux
lpshim_example_callbacks: pre_patch_callback: lpshim_target -> [MODULE_STATE_LIVE] Normal state
lpshim: 'lpshim_example_callbacks': starting patching transition
lpshim_example_callbacks: post_patch_callback: vmlinux
lpshim_example_callbacks: post_patch_callback: lpshim_target -> [MODULE_STATE_LIVE] Normal state
lpshim: 'lpshim_example_callbacks': patching complete
lpshim_example_callbacks: pre_unpatch_callback: vmlinux
lpshim_example_callbacks: pre_unpatch_callback: lpshim_target -> [MODULE_STATE_LIVE] Normal state
lpshim: 'lpshim_example_callbacks': starting unpatching transition
lpshim_example_callbacks: post_unpatch_callback: vmlinux
lpshim_example_callbacks: post_unpatch_callback: lpshim_target -> [MODULE_STATE_LIVE] Normal state
lpshim: 'lpshim_example_callbacks': unpatching complete
EOF

unload_mod lpshim_target
start_test "lpshim_example_late_module: a patch for a module loaded later"
load_lp lpshim_example_late_module
expect_eq "$(cat $LPSHIM_SYSFS/lpshim_example_late_module/lpshim_target/patched)" 0 "not patched while lpshim_target is not loaded"
load_mod lpshim_target
expect_eq "$(cat $LPSHIM_SYSFS/lpshim_example_late_module/lpshim_target/patched)" 1 "patched once lpshim_target loads"
expect_eq "$(version)" late "lpshim_target runs the late patch from its load"
unload_mod lpshim_target
disable_lp lpshim_example_late_module
unload_mod lpshim_example_late_module
expect_kmsg '^(lpshim|lpshim_target): ' <<EOF
lpshim: enabling patch 'lpshim_example_late_module'
lpshim: 'lpshim_example_late_module': starting patching transition
lpshim: 'lpshim_example_late_module': patching complete
lpshim: applying patch 'lpshim_example_late_module' to loading module 'lpshim_target'
lpshim_target: loaded
lpshim_target: unloaded
lpshim: reverting patch 'lpshim_example_late_module' on unloading module 'lpshim_target'
lpshim: 'lpshim_example_late_module': starting unpatching transition
lpshim: 'lpshim_example_late_module': unpatching complete
EOF

lpshim_teardown
