#!/bin/bash
# The pending_tasks BPF skeleton loads and attaches in the guest kernel, and its task iterator
# reports the kernel stack of a sleeping task.
. "$(dirname "$0")/../lib.sh"

tool=$BUILD/tests/vm/tools/task-stacks
sleep 100 &
sleeper=$!
wait_until 10 "sleep is asleep" grep -q '^State:.*S' /proc/$sleeper/status
out=$("$tool" $sleeper)
echo "$out"
expect_match "$(head -n 1 <<<"$out")" "^tid=$sleeper comm=sleep frames=[1-9]" "the iterator found the sleeping task"
expect_match "$out" 'hrtimer_nanosleep\+0x' "its stack is symbolised and shows hrtimer_nanosleep"
kill $sleeper

rc=0
"$tool" 999999 >/dev/null 2>&1 || rc=$?
expect_eq $rc 3 "a tid with no task is reported with exit status 3"

# A read of the iterator returns after a bounded number of tasks, not at the end of the task
# list: the program writes a marker (128 bytes) after every 32 tasks without a record
# (pending_tasks.h), and the daemon asks for one page per read, which the kernel fills and no
# more: 32 markers, 1,024 tasks. With 8,600 threads and none pending, a walk takes at least 9
# reads (checked: 8, a margin); with reads of 64 KB, the kernel's buffer (8 pages, 255 markers)
# took 3, the first visiting 8,160 tasks; without the markers, 1.
n=8600
threads_max=$(cat /proc/sys/kernel/threads-max)
threads=
restore() {
	# Gone, every thread, before the limit goes back and the next case starts.
	if [ -n "$threads" ]; then
		kill -KILL $threads 2>/dev/null || true
		wait $threads 2>/dev/null || true
	fi
	sysctl -qw kernel.threads-max=$threads_max
}
trap restore EXIT
# (The debug kernel's larger stacks make its default limit smaller than that.)
((threads_max > n + 2000)) || sysctl -qw kernel.threads-max=$((n + 2000))
out=$(mktemp)
"$BUILD/tests/vm/tools/sleepers" $n >"$out" &
threads=$!
wait_until 150 "$n threads exist" sh -c "grep -qx ready $out || ! kill -0 $threads 2>/dev/null"
grep -qx ready "$out" || fail "the sleepers tool could not start $n threads (see its message above)"
walk=$("$tool" --reads) || fail "task-stacks --reads failed"
echo "# $walk"
expect_match "$walk" '^reads=[0-9]+ tasks=0$' "a walk with no task pending lists none"
reads=${walk#reads=}
reads=${reads%% *}
((reads >= 8)) || fail "a walk over $n idle threads took $reads reads: a read visited more than 1,024 tasks"
echo "ok - a read of the iterator visits at most 1,024 tasks without a record ($reads reads)"
