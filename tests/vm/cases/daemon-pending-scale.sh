#!/bin/bash
# issue 18's acceptance, measured (suite vm-slow: tens of minutes under TCG). With N tasks
# asleep in a patched function (N = 10,000, then 30,000; PENDING_SCALE="N ..." to choose):
# - `livepatchctl blocking --json` lists every one of them, as many as lpshim's own debugfs
#   list, and each sleeper's tid (the BPF map neither evicts nor misses any);
# - the SIGSTOP/SIGCONT rung holds the process hold_ms (50 ms) +- 50 ms (the sched trace);
# - no dispatch of livepatchd's event loop takes longer than 100 ms (its DISPATCH_USEC journal
#   field, logged at debug level for every dispatch of 20 ms or more and every new longest).
# Then, past the map's bound (1,500 tasks, a map of 1,024 entries): the list is lpshim's own,
# complete, and the journal says so. Each figure is printed as "# measure: ..." for
# docs/benchmarks.md.
. "$(dirname "$0")/../lib.sh"

C=test_lpshim_consistency
T=/sys/kernel/debug/lpshim_target
CONF=/etc/livepatchd/livepatchd.json
TOOLS=$BUILD/tests/vm/tools
MANAGER=(org.livepatchd.LivePatch1 /org/livepatchd/LivePatch1 org.livepatchd.LivePatch1.Manager)
HOLD_MS=50

state_is() { [[ $(busctl get-property "${MANAGER[@]}" State) == "s \"$1\"" ]]; }
proc_state() { awk '{ sub(/.*\) /, ""); print substr($0, 1, 1) }' /proc/$1/stat; }
debugfs_count() { wc -l </sys/kernel/debug/lpshim/tasks; }
# lpshim's transition passes' walks of the task list under tasklist_lock, preemption off, since
# it was loaded (debugfs stats); "?" when unreadable.
tasklist_walks() { awk '$1 == "tasklist_walks" { print $2; found = 1 } END { if (!found) print "?" }' /sys/kernel/debug/lpshim/stats 2>/dev/null || echo "?"; }
sleepers_checked() { (($(grep -c ' sleeping-in-function lpshim_target_sleep' /sys/kernel/debug/lpshim/tasks) >= $1)); }
# How long a stop held the process, in the kernel's words: its leader thread (asleep in
# pause()) goes off the CPU in state T at the SIGSTOP and is woken by the SIGCONT, each stamped
# by the sched tracepoints. (Polling /proc from the case misses holds: the case's shell shares
# the CPU with the 10,000 threads the SIGSTOP wakes, and /proc/PID/stat sums over all of them.)
# trace_stops PID: from now on, trace PID's leader going off the CPU and being woken. On the
# "mono" clock: the default one stands still on a CPU with interrupts off when the TSC is
# unstable (as under TCG), and a SIGSTOP of thousands of threads keeps them off for a while.
TRACEFS=/sys/kernel/tracing
trace_stops() {
	[[ -d $TRACEFS/events/sched ]] || mount -t tracefs nodev $TRACEFS
	echo 0 >$TRACEFS/tracing_on
	[[ -n ${trace_clock:-} ]] || trace_clock=$(sed 's/.*\[\(.*\)\].*/\1/' $TRACEFS/trace_clock)
	echo mono >$TRACEFS/trace_clock
	echo >$TRACEFS/trace
	echo "prev_pid == $1" >$TRACEFS/events/sched/sched_switch/filter
	echo "pid == $1" >$TRACEFS/events/sched/sched_wakeup/filter
	echo "pid == $1 && (sig == 19 || sig == 18)" >$TRACEFS/events/signal/signal_generate/filter
	echo 1 >$TRACEFS/events/sched/sched_switch/enable
	echo 1 >$TRACEFS/events/sched/sched_wakeup/enable
	echo 1 >$TRACEFS/events/signal/signal_generate/enable
	echo 1 >$TRACEFS/tracing_on
}
untrace_stops() {
	local event
	for event in sched/sched_switch sched/sched_wakeup signal/signal_generate; do
		echo 0 >$TRACEFS/events/$event/enable
		echo 0 >$TRACEFS/events/$event/filter
	done
	[[ -z ${trace_clock:-} ]] || echo $trace_clock >$TRACEFS/trace_clock
}
# held_ms: from the trace, the first hold (the leader off the CPU in state T until its next
# wakeup) in ms, as "MS stopped"; "0 continued-first" when a SIGSTOP and then a SIGCONT were
# sent to the process but the leader never stopped (the SIGCONT came first: the SIGSTOP's first
# phase takes ~190 ms at 30,000 threads); nothing while neither happened.
held_ms() {
	awk 'function ts(line) { match(line, / [0-9]+\.[0-9]+: /); return substr(line, RSTART + 1, RLENGTH - 3) + 0 }
	     /signal_generate:.* sig=19 / { stop = 1 }
	     /signal_generate:.* sig=18 / && stop { cont = 1 }
	     /sched_switch:.*prev_state=T / && !t0 { t0 = ts($0); next }
	     /sched_wakeup:/ && t0 { printf "%d stopped\n", (ts($0) - t0) * 1000; held = 1; exit }
	     END { if (!held && cont) print "0 continued-first" }' $TRACEFS/trace
}
stop_traced() { [[ -n $(held_ms) ]]; }
# Where the loop's waits for a CPU go (issue 18: a tick waited 141 ms at 30,000, s82; a dispatch
# 180 ms at 10,000, s89): a trace instance of its own records livepatchd's threads going on and
# off the CPUs, and another every switch of every CPU, to say who had them meanwhile.
LOOPTRACE=$TRACEFS/instances/lpvm-loop
CPUTRACE=$TRACEFS/instances/lpvm-cpus
# trace_instance DIR: a trace instance of sched_switch, on the mono clock, 64 MB a CPU, off.
trace_instance() {
	{ [[ -d $1 ]] || mkdir $1; } && echo 0 >$1/tracing_on && echo mono >$1/trace_clock &&
		echo 65536 >$1/buffer_size_kb && echo >$1/trace &&
		echo 1 >$1/events/sched/sched_switch/enable
}
trace_loop() {
	trace_instance $LOOPTRACE
	echo 'prev_comm == "livepatchd" || next_comm == "livepatchd"' >$LOOPTRACE/events/sched/sched_switch/filter
	echo 'comm == "livepatchd"' >$LOOPTRACE/events/sched/sched_wakeup/filter
	echo 1 >$LOOPTRACE/events/sched/sched_wakeup/enable
	# Every CPU's switches only if the guest can spare the buffers: loop_wait then says less.
	if trace_instance $CPUTRACE 2>/dev/null; then
		# Which work a kworker that keeps a CPU runs (s92, s93: 345 and 294 ms).
		echo 1 >$CPUTRACE/events/workqueue/workqueue_execute_start/enable 2>/dev/null || true
		echo 1 >$CPUTRACE/tracing_on
	else
		echo "# no trace of every CPU's switches: the loop's waits are told without who had the CPUs"
		CPUTRACE=
	fi
	echo 1 >$LOOPTRACE/tracing_on
}
# stop_loop_trace: both instances stop recording (each CPU's buffer overwrites its oldest).
stop_loop_trace() { echo 0 >$LOOPTRACE/tracing_on; [[ -z $CPUTRACE ]] || echo 0 >$CPUTRACE/tracing_on; }
untrace_loop() {
	local instance
	for instance in $LOOPTRACE $CPUTRACE; do
		[[ ! -d $instance ]] || { echo 0 >$instance/tracing_on; rmdir $instance || true; }
	done
}
# loop_wait LOOP_TID: the loop thread's longest wait for a CPU in the trace, as "MS ms at T: how": from
# its wake-up or its preemption (by whom, on which CPU) until it ran again, with the time
# livepatchd's other threads were on a CPU meanwhile, the three commands each CPU ran longest
# then (CPUTRACE), and whether the traces lost events.
loop_wait() {
	local lost rows
	rows=$(mktemp)
	lost=$(for t in $LOOPTRACE/trace ${CPUTRACE:+$CPUTRACE/trace}; do
		grep -m1 -o 'entries-in-buffer/entries-written: [0-9]*/[0-9]*' $t
	done | paste -sd' ')
	awk -v L="$1" -v cpus="${CPUTRACE:+$CPUTRACE/trace}" '
	function ts(line) { match(line, / [0-9]+\.[0-9]+: /); return substr(line, RSTART + 1, RLENGTH - 3) + 0 }
	function cpu(line) { match(line, /\[[0-9]+\]/); return substr(line, RSTART + 1, RLENGTH - 2) + 0 }
	function field(line, name) {
		if (!match(line, " " name "=[^ ]+")) return ""
		return substr(line, RSTART + length(name) + 2, RLENGTH - length(name) - 2)
	}
	/sched_wakeup:/ {
		if (field($0, "pid") == L) woken = 1
		if (field($0, "pid") == L && !running && !waiting) {
			waiting = 1; since = ts($0); ours = 0
			how = "woken for CPU " (field($0, "target_cpu") + 0)
		}
		next
	}
	/sched_switch:/ {
		t = ts($0); c = cpu($0); prev = field($0, "prev_pid"); nxt = field($0, "next_pid")
		if (prev != L && (prev in on)) { if (waiting) ours += t - on[prev]; delete on[prev] }
		if (nxt != L && field($0, "next_comm") == "livepatchd") on[nxt] = t
		if (prev == L) {
			running = 0
			if (field($0, "prev_state") ~ /^R/) {
				waiting = 1; since = t; ours = 0
				how = "preempted on CPU " c " by " field($0, "next_comm") ":" nxt
			}
		}
		if (nxt == L) {
			if (waiting && t - since > worst) { worst = t - since; at = since; worst_how = how " until CPU " c; worst_ours = ours }
			waiting = 0; running = 1
		}
	}
	END {
		if (!woken) { print "no wake-up of the loop in the trace"; exit }
		printf "%d ms at %.3f: %s; livepatchd'"'"'s other threads were on a CPU %d ms meanwhile\n",
			worst * 1000, at, worst_how, worst_ours * 1000
		# Each CPU within [at, at + worst]: the time from each switch to the next goes to the
		# command switched away from; as rows "CPU MS COMMAND".
		end = at + worst
		while ((getline line < cpus) > 0) {
			if (line ~ /workqueue_execute_start:/) {
				if (ts(line) > end) break
				# By the kworker that started it (its comm, before "-PID [CPU]").
				who = line; sub(/^ +/, "", who); sub(/-[0-9]+ +\[.*/, "", who)
				work[who] = substr(line, index(line, "function ") + 9)
				continue
			}
			if (line !~ /sched_switch:/) continue
			t = ts(line); c = cpu(line)
			if (t > end) break
			if (t > at) ran[c, field(line, "prev_comm")] += t - ((c in last) && last[c] > at ? last[c] : at)
			last[c] = t; after[c] = field(line, "next_comm")
		}
		for (c in after) ran[c, after[c]] += end - (last[c] > at ? last[c] : at)
		for (key in ran) {
			split(key, k, SUBSEP)
			# A kworker: the last work it started before the wait ended.
			w = (k[2] ~ /^kworker/ && (k[2] in work)) ? "(" work[k[2]] ")" : ""
			gsub(/ /, "_", w)
			printf "%d %d %s%s\n", k[1], ran[key] * 1000, k[2], w
		}
	}' $LOOPTRACE/trace >$rows
	echo "$(head -1 $rows)$(tail -n +2 $rows | sort -k1,1n -k2,2nr |
		awk '$2 > 0 { if (n[$1]++ < 3) s[$1] = s[$1] (n[$1] > 1 ? ", " : "") $3 " " $2 " ms" }
		     END { for (c in s) printf "; CPU %s ran %s", c, s[c] }') ($lost)"
	rm -f $rows
}
# sleepers_ready OUT PID: the sleepers tool said "ready", or it is gone (then the wait ends at
# once and the check after it fails, rather than waiting out the limit).
sleepers_ready() { grep -qx ready "$1" || ! kill -0 "$2" 2>/dev/null; }
# start_sleepers N: N threads asleep in lpshim_target_sleep; their pid in $pid.
start_sleepers() {
	out=$(mktemp)
	"$TOOLS/sleepers" "$1" /dev/lpshim_target_sleep >"$out" &
	pid=$!
	wait_until 900 "$1 threads exist" sleepers_ready "$out" $pid
	grep -qx ready "$out" || fail "the sleepers tool could not start $1 threads (see its message above)"
	wait_until 900 "$1 threads sleep in lpshim_target_sleep" sh -c "[ \$(cat $T/sleepers) -ge $1 ]"
}
# config STOP [STALL_MS]: livepatchd's configuration, the stop rung on (true) or off, a stall
# after STALL_MS (default an hour) with on_stall revert; never the kick (it would move the
# sleepers on its own).
config() {
	echo "{\"log\": {\"level\": \"debug\"}, \"transition\": {\"stall_timeout_ms\": ${2:-3600000}, \"on_stall\": \"revert\"},
	       \"remediation\": {\"kick\": {\"enabled\": false},
	                         \"stop_continue\": {\"enabled\": $1, \"hold_ms\": $HOLD_MS}}}" >$CONF
}
# failed_with_journal WHAT: fail, after livepatchd's journal since $cursor (its last lines).
failed_with_journal() {
	journalctl -u livepatchd --no-pager -o short-monotonic --after-cursor="$cursor" | tail -60 | sed 's/^/# /'
	fail "$1 with $n tasks asleep in a patched function"
}
# The longest DISPATCH_USEC livepatchd logged since CURSOR, and the longest of the dispatches'
# times not counting the part of each the loop waited, runnable, for a CPU
# (DISPATCH_RUN_DELAY_USEC; maybe another dispatch's): "WALL OWN".
longest_dispatch() {
	journalctl -u livepatchd --no-pager --after-cursor="$1" -o json \
		--output-fields=DISPATCH_USEC,DISPATCH_RUN_DELAY_USEC |
		python3 -c '
import json, sys
wall = own = 0
for line in sys.stdin:
    entry = json.loads(line)
    took = int(entry.get("DISPATCH_USEC") or 0)
    wall = max(wall, took)
    own = max(own, took - int(entry.get("DISPATCH_RUN_DELAY_USEC") or 0))
print(wall, own)'
}

"$(dirname "$0")/../install-livepatchd" "$BUILD"
mkdir -p "$(dirname $CONF)"
insmod "$(module_path lpshim_target)"
threads_max=$(cat /proc/sys/kernel/threads-max)
pid_max=$(cat /proc/sys/kernel/pid_max)
# What this case changes goes back as it was, for the cases after it in the same boot.
restore() {
	rm -f $CONF
	untrace_stops 2>/dev/null || true
	untrace_loop 2>/dev/null || true
	sysctl -qw kernel.threads-max=$threads_max kernel.pid_max=$pid_max
}
trap restore EXIT
# The kernel says this once per boot when real-time threads took a CPU's whole budget (95%):
# s99's real-time loop did, listing 10,000 tasks, before it was real-time only for a busy
# stretch's first 20 ms. Checked at the end when not said before the case.
rt_throttled() { (($(dmesg | grep -c "sched: RT throttling activated") > 0)); }
throttled_before=false
! rt_throttled || throttled_before=true

for n in ${PENDING_SCALE:-10000 30000}; do
	echo "# $n tasks asleep in a patched function"
	# Room for them: the map is sized from threads-max when livepatchd starts.
	sysctl -qw kernel.pid_max=4194304
	(($(cat /proc/sys/kernel/threads-max) > n + 2000)) || sysctl -qw kernel.threads-max=$((n + 2000))
	# The stop rung off while the lists are compared.
	config false
	systemctl restart livepatchd
	cursor=$(journalctl -u livepatchd -n 1 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
	livepatchctl install "$(module_path $C)" >/dev/null

	start_sleepers $n

	livepatchctl apply --no-block $C || failed_with_journal "livepatchctl apply --no-block $C failed"
	wait_until 60 "State is transitioning" state_is transitioning
	# lpshim's first pass has seen every sleeper once its debugfs list has them all asleep in
	# the function (before the pass, from lpshim's transition work, each is not-checked-yet).
	wait_until 300 "lpshim found the $n sleepers blocked" sleepers_checked $n
	start=$(date +%s%N)
	json=$(livepatchctl blocking --json) || failed_with_journal "livepatchctl blocking --json failed"
	end=$(date +%s%N)
	listed=$(python3 -c 'import json, sys; print(len(json.load(sys.stdin)))' <<<"$json")
	lpshim=$(debugfs_count)
	echo "# measure: $n pending: livepatchctl blocking --json listed $listed, lpshim's debugfs $lpshim, in $(((end - start) / 1000000)) ms"
	expect_eq "$listed" "$lpshim" "livepatchctl blocking --json lists as many tasks as lpshim's debugfs list"
	missing=$(python3 -c '
import json, os, sys
listed = {t["Tid"] for t in json.load(sys.stdin)}
tids = {int(t) for t in os.listdir("/proc/%s/task" % sys.argv[1])} - {int(sys.argv[1])}
print(len(tids - listed))' "$pid" <<<"$json")
	expect_eq "$missing" 0 "every sleeper's tid is listed"
	# The map is sized from threads-max (raised above before the restart): exact, never the
	# debugfs fallback, which would make the comparison above hold whatever the map held.
	if journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor" |
		grep "listing the pending tasks from lpshim's debugfs list instead"; then
		fail "with $n pending the BPF map overflowed or failed: the list came from lpshim's debugfs list"
	fi
	ok "the BPF map held all $n pending tasks (no debugfs fallback)"

	# A stall: livepatchd restarted follows the transition from its start, finds it stalled
	# at once and reads who blocks it (all root's, asleep: on_stall revert reverts), a slice
	# per tick, each task's facts kept 30 s: it reverts, or, with more blockers than it can
	# read in 30 s, says so and waits.
	config false 1000
	systemctl restart livepatchd
	too_many="$C: the stalled transition to patched is not reverted: more tasks block it than can be looked at within 30 s"
	stall_outcome() {
		[ ! -e /sys/kernel/lpshim/$C ] ||
			journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor" | grep -Eq "$too_many"
	}
	wait_until 600 "the stalled transition is reverted, or the journal says why not" stall_outcome
	journal=$(journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor")
	expect_match "$journal" "$C: the transition to patched has not completed after 1000 ms; on_stall is revert" \
		"the journal says the transition stalled"
	if [ -e /sys/kernel/lpshim/$C ]; then
		expect_match "$journal" "$too_many" "the journal says why it is not reverted"
		echo "# measure: $n pending: on_stall revert waited: more blockers than can be looked at within 30 s"
		reapply=false
	else
		wait_until 60 "State is idle" state_is idle
		echo "# measure: $n pending: on_stall revert reverted the stalled transition"
		reapply=true
	fi

	# Then the stop rung stops the sleepers, for hold_ms (applied again if it was reverted).
	config true
	walks_before=$(tasklist_walks)
	trace_stops $pid
	trace_loop
	systemctl restart livepatchd
	! $reapply || livepatchctl apply --no-block $C || failed_with_journal "livepatchctl apply --no-block $C failed"
	wait_until 600 "the transition completed" state_is idle
	stop_traced || failed_with_journal "the process was not stopped and continued (no hold in the sched trace)"
	read -r held how < <(held_ms)
	untrace_stops
	stop_loop_trace
	waited=$(loop_wait "$(systemctl show -p MainPID --value livepatchd)")
	echo "# measure: $n pending: in the stop phase, the loop's longest wait for a CPU: $waited"
	untrace_loop
	# An unbound kworker kept a CPU 345 ms in s92's stop phase: lpshim's pass, under the lock?
	echo "# measure: $n pending: lpshim's walks under tasklist_lock in the stop phase: $walks_before -> $(tasklist_walks)"
	if [[ $how == stopped ]]; then
		echo "# measure: $n pending: the process was stopped for $held ms (hold_ms $HOLD_MS; sched trace)"
	else
		echo "# measure: $n pending: the process was not stopped: the SIGCONT came before the SIGSTOP completed (sched trace)"
	fi

	read -r longest own < <(longest_dispatch "$cursor")
	echo "# measure: $n pending: longest event loop dispatch $((longest / 1000)) ms"
	echo "# measure: $n pending: longest event loop dispatch not counting waits for a CPU $((own / 1000)) ms"
	if ((longest > 100000)); then
		# What ran in the long dispatches: the lines logged just before each.
		journalctl -u livepatchd --no-pager -o short-monotonic --after-cursor="$cursor" |
			grep -B4 "dispatch took [0-9]\{6,\} us" | tail -80 | sed 's/^/# /'
	fi
	# Both figures printed before either check fails.
	if [[ $how == stopped ]]; then
		((held <= HOLD_MS + 50)) || fail "the hold lasted $held ms, more than hold_ms + 50 ms"
		ok "the hold lasted hold_ms +- 50 ms"
	else
		ok "the SIGCONT came before the SIGSTOP completed: no hold"
	fi
	((longest <= 100000)) || fail "an event loop dispatch took $((longest / 1000)) ms, more than 100 ms"
	ok "no event loop dispatch took longer than 100 ms with $n pending tasks"
	# Nor did it wait that long between two (no dispatch counts a wait before it starts): s92
	# waited 350 ms while the storm and a kworker had both CPUs.
	# Measured only from a trace of the whole phase that saw the loop woken: lost events
	# (entries written past those in the buffer) could hide the longest wait.
	[[ $waited =~ ^([0-9]+)\ ms\ at\ .*\(entries-in-buffer/entries-written:\ ([0-9]+)/([0-9]+) ]] ||
		fail "no wait of the loop for a CPU in the stop phase's trace: $waited"
	((BASH_REMATCH[2] == BASH_REMATCH[3])) ||
		fail "the trace of the loop's thread lost events in the stop phase: $waited"
	((BASH_REMATCH[1] <= 100)) || fail "in the stop phase the loop waited ${BASH_REMATCH[1]} ms for a CPU, more than 100 ms"
	ok "in the stop phase the loop never waited longer than 100 ms for a CPU with $n pending tasks"

	kill -KILL $pid
	wait $pid 2>/dev/null || true
	livepatchctl revert $C >/dev/null
	livepatchctl remove $C >/dev/null
done

# Last (its failure must not hide the figures above): past the map's bound, the view says it is not exact and lists lpshim's own list: livepatchd
# started while threads-max is 1,024 sizes its map at 1,024 entries (the least), then 1,500
# tasks block the transition.
echo "# the map overflows: 1,500 tasks pending, a map of 1,024 entries"
config false
sysctl -qw kernel.threads-max=1024
systemctl restart livepatchd
sysctl -qw kernel.threads-max=$threads_max
cursor=$(journalctl -u livepatchd -n 1 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
livepatchctl install "$(module_path $C)" >/dev/null
start_sleepers 1500
livepatchctl apply --no-block $C
wait_until 60 "State is transitioning" state_is transitioning
wait_until 300 "lpshim found the 1500 sleepers blocked" sleepers_checked 1500
listed=$(livepatchctl blocking --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
expect_eq "$listed" "$(debugfs_count)" "past the map's bound, livepatchctl blocking --json lists as many tasks as lpshim's debugfs list"
journal=$(journalctl -u livepatchd --no-pager -o cat --after-cursor="$cursor")
expect_match "$journal" "the BPF map of pending tasks \(1024 entries\) had no room for [0-9]+ of them; listing the pending tasks from lpshim's debugfs list instead" \
	"the journal says the map overflowed and where the list comes from"
# The kernel walks every task to print that list (100-140 ms under emulation): read off the
# loop, which still never waits 100 ms.
read -r longest own < <(longest_dispatch "$cursor")
echo "# measure: the map overflowed: longest event loop dispatch $((longest / 1000)) ms"
if ((longest > 100000)); then
	journalctl -u livepatchd --no-pager -o short-monotonic --after-cursor="$cursor" |
		grep -B4 "dispatch took [0-9]\{6,\} us" | tail -40 | sed 's/^/# /'
	fail "past the map's bound, an event loop dispatch took $((longest / 1000)) ms, more than 100 ms"
fi
ok "past the map's bound, no event loop dispatch took longer than 100 ms"
kill -KILL $pid
wait $pid 2>/dev/null || true
livepatchctl revert $C >/dev/null
livepatchctl remove $C >/dev/null

if $throttled_before; then
	echo "# the kernel throttled real-time threads before the case: whether livepatchd did is not known"
else
	! rt_throttled || fail "the kernel throttled real-time threads (dmesg: sched: RT throttling activated)"
	ok "no real-time thread took a CPU's whole budget (no RT throttling)"
fi

systemctl stop livepatchd
rmmod lpshim_target
wait_until 10 "nothing holds lpshim" grep -sqx 0 /sys/module/lpshim/refcnt
rmmod lpshim
