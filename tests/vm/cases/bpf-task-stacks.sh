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
