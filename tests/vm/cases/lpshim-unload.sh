#!/bin/bash
# Unloading lpshim with no patches leaves nothing behind: no ftrace callback on any function,
# no ftrace trampoline, no kprobe, no tracepoint probe, no sysfs or debugfs, no trace events,
# no symbols; ftrace can be turned off again; and lpshim loads and unloads again, several
# times in a row.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lpshim-lib.sh"

P=test_lpshim_livepatch
P_LINE="$P: this has been live patched"
TRACEFS=/sys/kernel/tracing
DEBUGFS=/sys/kernel/debug
KPROBES_LIST=$DEBUGFS/kprobes/list
SNAP=$(mktemp -d)
# The modules of this case.
OURS="lpshim|$P"
# What the case compares before and after: each a file of $SNAP/<state>/.
SNAPSHOTS='enabled_functions touched_functions_active ftrace_trampolines kprobes
	kprobes_enabled tracepoint_probes lpshim_sysfs lpshim_module livepatch_sysfs trace_events
	available_filter_functions kallsyms_modules proc_modules ftrace_enabled'
# The core-kernel tracepoints lpshim attaches probes to (its per-task consistency model).
TRACEPOINTS='task_newtask sched_process_exit sched_process_free sched_switch cpu_idle'

# btf_struct STRUCT: the raw BTF dump of the kernel's struct STRUCT: its header line, then
# one line per member ("'name' type_id=N bits_offset=B").
btf_struct() {
	bpftool btf dump file /sys/kernel/btf/vmlinux format raw |
		awk -v s="'$1'" '$2 == "STRUCT" && $3 == s { found = 1; print; next }
			found && /^\[/ { exit }
			found { print }'
}

# btf_offset STRUCT MEMBER: the byte offset of MEMBER in struct STRUCT.
btf_offset() {
	btf_struct "$1" | awk -v m="'$2'" '$1 == m { for (i = 2; i <= NF; i++)
		if ($i ~ /^bits_offset=/) { print substr($i, 13) / 8; exit } }'
}

# kernel_layout: the offsets kernel_read needs, from the kernel's BTF: KERNEL_LAYOUT.
KERNEL_LAYOUT=''
kernel_layout() {
	local funcs func_size trampoline
	funcs=$(btf_offset tracepoint funcs)
	func_size=$(btf_struct tracepoint_func | sed -n '1s/.* size=\([0-9]*\) .*/\1/p')
	trampoline=$(btf_offset ftrace_ops trampoline)
	[[ -n $funcs && -n $func_size && -n $trampoline && $(btf_offset tracepoint_func func) == 0 ]] ||
		fail "no struct tracepoint, tracepoint_func or ftrace_ops in /sys/kernel/btf/vmlinux (bpftool)"
	KERNEL_LAYOUT="$funcs $func_size $trampoline"
}

# kernel_read tracepoints TRACEPOINT...: "TRACEPOINT: PROBE..." per tracepoint, each probe the
# symbol of its function: the tracepoint's funcs array (struct tracepoint_func, ended by a
# NULL func). Tracefs shows only the probes of trace events.
# kernel_read trampolines: the ftrace trampolines (ftrace_trampoline [__builtin__ftrace] in
# kallsyms, one per ftrace_ops that has its own), but for those of kprobes' own ftrace_ops
# (kprobe_ftrace_ops, kprobe_ipmodify_ops): static ops, whose trampoline the kernel keeps for
# the next kprobe once the first one on an ftrace location is gone (lpshim's load registers
# one, on kallsyms_lookup_name). A dynamic ftrace_ops (lpshim's) loses its trampoline when it
# is unregistered.
# Both read the kernel's memory in /proc/kcore at the offsets of kernel_layout.
kernel_read() {
	# shellcheck disable=SC2086 # KERNEL_LAYOUT is three numbers
	python3 - $KERNEL_LAYOUT "$@" <<'PY'
import bisect, os, pickle, struct, subprocess, sys

funcs_offset, func_size, trampoline_offset = (int(a) for a in sys.argv[1:4])
query, names = sys.argv[4], sys.argv[5:]
syms, symbol_addr, trampolines = [], {}, []

def add(lines):
    for line in lines:
        addr, _, name, *mod = line.split()
        addr = int(addr, 16)
        syms.append((addr, name + (" " + mod[0] if mod else "")))
        symbol_addr.setdefault(name, addr)
        if mod == ["[__builtin__ftrace]"]:
            trampolines.append(addr)

# vmlinux's symbols do not change while the guest runs: parsed once per boot (under TCG a full
# parse of /proc/kallsyms takes seconds). Modules' symbols are read fresh every time.
cache = "/run/lpvm-kallsyms-vmlinux.pickle"
if os.path.exists(cache):
    with open(cache, "rb") as f:
        syms, symbol_addr = pickle.load(f)
else:
    with open("/proc/kallsyms") as f:
        add(l for l in f if "[" not in l)
    with open(cache, "wb") as f:
        pickle.dump((syms, symbol_addr), f)
add(subprocess.run(["grep", "-F", "[", "/proc/kallsyms"], capture_output=True, text=True,
                   check=False).stdout.splitlines())
syms.sort()
addrs = [a for a, _ in syms]
if not addrs or addrs[-1] == 0:
    sys.exit("/proc/kallsyms shows no addresses (kernel.kptr_restrict)")

kcore = open("/proc/kcore", "rb")
ehdr = kcore.read(64)
phoff, = struct.unpack_from("<Q", ehdr, 0x20)
phentsize, phnum = struct.unpack_from("<HH", ehdr, 0x36)
kcore.seek(phoff)
phdrs = kcore.read(phentsize * phnum)
segments = []
for i in range(phnum):
    p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", phdrs, i * phentsize)
    if p_type == 1:  # PT_LOAD
        segments.append((p_vaddr, p_filesz, p_offset))

def u64(addr):
    for vaddr, size, offset in segments:
        if vaddr <= addr and addr + 8 <= vaddr + size:
            kcore.seek(offset + addr - vaddr)
            return struct.unpack("<Q", kcore.read(8))[0]
    sys.exit("address %#x is not in /proc/kcore" % addr)

def symbol(addr):
    i = bisect.bisect_right(addrs, addr) - 1
    return syms[i][1] if i >= 0 else hex(addr)

if query == "tracepoints":
    for name in names:
        if "__tracepoint_" + name not in symbol_addr:
            print("%s: <no __tracepoint_%s>" % (name, name))
            continue
        probes, funcs = [], u64(symbol_addr["__tracepoint_" + name] + funcs_offset)
        while funcs:
            func = u64(funcs)
            if not func:
                break
            probes.append(symbol(func))
            funcs += func_size
        print("%s: %s" % (name, " ".join(probes) if probes else "<no probe>"))
elif query == "trampolines":
    kept = {u64(symbol_addr[ops] + trampoline_offset)
            for ops in ("kprobe_ftrace_ops", "kprobe_ipmodify_ops") if ops in symbol_addr}
    others = [a for a in trampolines if a not in kept]
    print("%d ftrace trampolines but kprobes' own" % len(others))
PY
}

# expect_tracepoint_probes_seen: kernel_read tracepoints sees a probe come and go: the
# sched_switch trace event's, enabled and disabled again.
expect_tracepoint_probes_seen() {
	local ev=$TRACEFS/events/sched/sched_switch/enable before during after
	before=$(kernel_read tracepoints sched_switch) || fail "cannot read the probes of sched_switch"
	echo 1 >$ev
	during=$(kernel_read tracepoints sched_switch) || fail "cannot read the probes of sched_switch"
	echo 0 >$ev
	after=$(kernel_read tracepoints sched_switch) || fail "cannot read the probes of sched_switch"
	[[ $during == *trace_event_raw_event_sched_switch* && $before != "$during" ]] ||
		fail "the sched_switch trace event's probe is not seen: '$before' / '$during'"
	expect_eq "$after" "$before" "tracepoint probes are readable: the sched_switch event's came and went"
}

# snapshot DIR: what lpshim could leave behind, one file per kind.
snapshot() {
	local d=$SNAP/$1
	mkdir -p "$d"
	# Functions with an ftrace callback attached now, with their flags and callbacks.
	cat $TRACEFS/enabled_functions >"$d/enabled_functions"
	# touched_functions (6.4 and later) lists every function that ever had a callback since
	# boot, by design: a function that lpshim redirected stays listed. What must not stay is a
	# callback: the lines whose count (the "(N)" after the name) is not 0.
	if [[ -r $TRACEFS/touched_functions ]]; then
		grep -v ' (0) ' $TRACEFS/touched_functions >"$d/touched_functions_active" || true
	else
		echo "<no touched_functions on $KVER>" >"$d/touched_functions_active"
	fi
	# shellcheck disable=SC2086 # a list
	kernel_read tracepoints $TRACEPOINTS >"$d/tracepoint_probes" || fail "cannot read tracepoint probes"
	# ftrace_ops have no list in tracefs: count their trampolines.
	kernel_read trampolines >"$d/ftrace_trampolines" || fail "cannot count ftrace trampolines"
	if [[ -r $KPROBES_LIST ]]; then
		cat $KPROBES_LIST >"$d/kprobes"
		cat $DEBUGFS/kprobes/enabled >"$d/kprobes_enabled"
	else
		echo "<no $KPROBES_LIST>" >"$d/kprobes"
		echo "<no $DEBUGFS/kprobes/enabled>" >"$d/kprobes_enabled"
	fi
	{
		ls -la $LPSHIM_SYSFS
		ls -la $DEBUGFS/lpshim
	} >"$d/lpshim_sysfs" 2>&1 || true
	ls -la /sys/module/lpshim >"$d/lpshim_module" 2>&1 || true
	ls -la $KLP_SYSFS >"$d/livepatch_sysfs" 2>&1 || true
	# Trace events: lpshim's (events/lpshim, lpshim:*) go with it.
	{
		ls $TRACEFS/events
		cat $TRACEFS/available_events
	} >"$d/trace_events" 2>&1
	# Traceable functions, symbols and modules of lpshim and the patch. (Only theirs: the
	# guest's systemd may load other modules and BPF programs meanwhile.)
	grep -E "\[($OURS)\]\$" $TRACEFS/available_filter_functions >"$d/available_filter_functions" || true
	grep -oE "\[($OURS)\]\$" /proc/kallsyms | sort | uniq -c >"$d/kallsyms_modules" || true
	cut -d ' ' -f 1 /proc/modules | grep -xE "$OURS" >"$d/proc_modules" || true
	sysctl -n kernel.ftrace_enabled >"$d/ftrace_enabled"
}

# expect_same_snapshot BEFORE AFTER WHEN: every state of AFTER is BEFORE's.
expect_same_snapshot() {
	local s diffs=0
	for s in $SNAPSHOTS; do
		if ! cmp -s "$SNAP/$1/$s" "$SNAP/$2/$s"; then
			echo "--- $s differs $3 (- before, + after):" >&2
			diff -u "$SNAP/$1/$s" "$SNAP/$2/$s" | tail -n +3 | head -n 40 >&2
			diffs=$((diffs + 1))
		fi
	done
	((diffs == 0)) || fail "$diffs kinds of state differ $3"
	ok "$3: $(echo $SNAPSHOTS | wc -w) kinds of state are as before lpshim was loaded"
}

# set_ftrace_enabled VALUE: sysctl kernel.ftrace_enabled=VALUE, logged; must succeed.
set_ftrace_enabled() {
	local err
	log "% sysctl kernel.ftrace_enabled=$1"
	err=$(sysctl -q kernel.ftrace_enabled="$1" 2>&1) || fail "sysctl kernel.ftrace_enabled=$1 failed: $err"
	expect_eq "$(sysctl -n kernel.ftrace_enabled)" "$1" "kernel.ftrace_enabled can be set to $1"
}

load_lpshim() {
	log "% insmod lpshim.ko"
	insmod "$(module_path lpshim)" || fail "insmod lpshim.ko failed"
	[[ -d $LPSHIM_SYSFS ]] || fail "$LPSHIM_SYSFS is missing after insmod lpshim.ko"
}

unload_lpshim() {
	log "% rmmod lpshim"
	rmmod lpshim || fail "rmmod lpshim failed"
	[[ ! -e $LPSHIM_SYSFS && ! -e /sys/module/lpshim ]] || fail "lpshim is left after rmmod"
}

# One patch enabled and disabled in between: lpshim registered its ftrace_ops and removed it.
unload_after_a_patch() {
	start_test "unloading lpshim after a patch leaves nothing behind"
	snapshot before
	load_lpshim
	expect_eq "$(sysfs_value /sys/module/lpshim/refcnt)" 0 "lpshim's refcount is 0 once loaded"
	expect_eq "$(ls -A $LPSHIM_SYSFS)" "" "$LPSHIM_SYSFS is empty"
	# No patch: lpshim's PERMANENT ftrace_ops is not registered, so ftrace may be turned off.
	set_ftrace_enabled 0
	set_ftrace_enabled 1

	load_lp $P
	expect_eq "$(cat /proc/cmdline)" "$P_LINE" "/proc/cmdline is live patched"
	expect_eq "$(sysfs_value /sys/module/lpshim/refcnt)" 1 "lpshim's refcount is 1 while $P is loaded"
	expect_eq "$(ls /sys/module/lpshim/holders)" "$P" "$P holds lpshim"
	expect_match "$(grep '^cmdline_proc_show ' $TRACEFS/enabled_functions)" \
		'^cmdline_proc_show \(1\) .* I .*lpshim_ftrace_handler' "cmdline_proc_show is redirected by lpshim"
	# What the snapshots compare sees lpshim: its ftrace_ops has a trampoline of its own now.
	expect_eq "$(kernel_read trampolines)" "$(($(cut -d ' ' -f 1 "$SNAP/before/ftrace_trampolines") + 1)) ftrace trampolines but kprobes' own" \
		"lpshim's ftrace_ops has its trampoline while $P is enabled"
	# The scheduler probes stay while lpshim is loaded (registering them per transition rewrote
	# hot kernel code every time); they must all go with lpshim, which the snapshots check.
	# shellcheck disable=SC2086 # a list
	expect_match "$(kernel_read tracepoints task_newtask sched_process_exit sched_process_free sched_switch)" \
		'task_newtask: .*lpshim_newtask_probe.*sched_process_exit: .*lpshim_exit_probe.*sched_process_free: .*lpshim_free_probe.*sched_switch: .*lpshim_sched_switch_probe' \
		"lpshim's scheduler probes are registered while it is loaded"
	disable_lp $P
	expect_eq "$(grep -c '^cmdline_proc_show ' $TRACEFS/enabled_functions)" 0 \
		"cmdline_proc_show has no ftrace callback once $P is disabled"
	set_ftrace_enabled 0
	set_ftrace_enabled 1
	unload_mod $P
	expect_unpatched
	expect_eq "$(sysfs_value /sys/module/lpshim/refcnt)" 0 "lpshim's refcount is 0 again"
	unload_lpshim
	snapshot after
	expect_same_snapshot before after "after lpshim was unloaded"
	set_ftrace_enabled 0
	set_ftrace_enabled 1

	expect_kmsg "$LP_KMSG" <<EOF
% insmod lpshim.ko
lpshim: loaded (version 0.1.0)
% sysctl kernel.ftrace_enabled=0
% sysctl kernel.ftrace_enabled=1
% insmod $P.ko
lpshim: enabling patch '$P'
lpshim: '$P': starting patching transition
lpshim: '$P': patching complete
% echo 0 > $LPSHIM_SYSFS/$P/enabled
lpshim: '$P': starting unpatching transition
lpshim: '$P': unpatching complete
% sysctl kernel.ftrace_enabled=0
% sysctl kernel.ftrace_enabled=1
% rmmod $P
% rmmod lpshim
lpshim: unloaded
% sysctl kernel.ftrace_enabled=0
% sysctl kernel.ftrace_enabled=1
EOF
}

# lpshim alone, three times in a row: each unload leaves what was there before the first load.
load_and_unload_three_times() {
	local i
	start_test "lpshim loads and unloads 3 times in a row"
	for i in 1 2 3; do
		load_lpshim
		expect_eq "$(sysfs_value /sys/module/lpshim/refcnt)" 0 "load $i: lpshim's refcount is 0"
		unload_lpshim
		snapshot "again-$i"
		expect_same_snapshot before "again-$i" "after unload $i of 3"
	done

	expect_kmsg "$LP_KMSG" <<EOF
% insmod lpshim.ko
lpshim: loaded (version 0.1.0)
% rmmod lpshim
lpshim: unloaded
% insmod lpshim.ko
lpshim: loaded (version 0.1.0)
% rmmod lpshim
lpshim: unloaded
% insmod lpshim.ko
lpshim: loaded (version 0.1.0)
% rmmod lpshim
lpshim: unloaded
EOF
}

# A module loaded after lpshim, and still loaded when lpshim goes: lpshim forgets it without a
# warning (it used to keep every module it saw coming until that module went, and warned at
# unload about those still there: udev loads modules at any time).
unload_with_a_later_module_loaded() {
	start_test "lpshim unloads while a module loaded after it stays"
	load_lpshim
	load_mod lpshim_target
	unload_lpshim
	unload_mod lpshim_target
	expect_kmsg "$LP_KMSG|^lpshim_target: " <<EOF
% insmod lpshim.ko
lpshim: loaded (version 0.1.0)
% insmod lpshim_target.ko
lpshim_target: loaded
% rmmod lpshim
lpshim: unloaded
% rmmod lpshim_target
lpshim_target: unloaded
EOF
	expect_eq "$(kmsg_since_mark | grep -cE 'WARNING|Call Trace')" 0 "no warning at lpshim's unload"
}

for m in lpshim lpshim_target $LP_TEST_MODULES; do
	[[ ! -e /sys/module/$m ]] || fail "$m is already loaded"
done
[[ -r $TRACEFS/enabled_functions ]] || mount -t tracefs nodev $TRACEFS 2>/dev/null || true
[[ -r $TRACEFS/enabled_functions ]] || fail "no $TRACEFS/enabled_functions (tracefs, CONFIG_DYNAMIC_FTRACE)"
[[ -d $DEBUGFS/kprobes ]] || mount -t debugfs nodev $DEBUGFS 2>/dev/null || true
expect_eq "$(sysctl -n kernel.ftrace_enabled)" 1 "kernel.ftrace_enabled is 1"
kernel_layout
expect_tracepoint_probes_seen
# shellcheck disable=SC2034 # read by expect_unpatched (lpshim-lib.sh)
ORIG_CMDLINE=$(cat /proc/cmdline) ORIG_VERSION=$(cat /proc/version) ORIG_MEMINFO=$(head -n 1 /proc/meminfo)

unload_after_a_patch
load_and_unload_three_times
unload_with_a_later_module_loaded
rm -rf "$SNAP"
