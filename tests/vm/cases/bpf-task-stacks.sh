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
# list: the program writes a marker after every 32 tasks without a record (pending_tasks.h), and
# the kernel's buffer (8 pages) holds 256 of them. With 9,000 threads and none pending, a walk
# takes a read for the first 8,192 tasks, one for the rest and one for the end; without the
# markers, the first read visits every task and returns the end.
out=$(mktemp)
"$BUILD/tests/vm/tools/sleepers" 9000 >"$out" &
threads=$!
wait_until 300 "9,000 threads exist" grep -qx ready "$out"
walk=$("$tool" --reads)
echo "# $walk"
kill $threads
expect_match "$walk" '^reads=[0-9]+ tasks=0$' "a walk with no task pending lists none"
reads=${walk#reads=}
reads=${reads%% *}
((reads >= 3)) || fail "a walk over 9,000 idle threads took $reads reads: a read visited more than 8,192 tasks"
echo "ok - a read of the iterator visits at most 8,192 tasks without a record ($reads reads)"
