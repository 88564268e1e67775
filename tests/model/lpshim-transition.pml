/*
 * lpshim-transition.pml - a Promela model of lpshim's transition protocol (issue 16)
 *
 * What the model is, what it leaves out and why, and how each step maps to shim-kmod/ are in
 * tests/model/README.md; tests/model/check-model runs it. Compile-time switches:
 *
 *   HOLE1          the design of 72331d8: a task with no entry follows the target, creation seen
 *                  only by sched_process_fork (io_uring-style workers never), the table filled
 *                  before it is published, no exit probe and no exiting list
 *   HOLE2          the cancel path clears the marks right after the pop, with no synchronize
 *   HOLE_D6        the stack check does not see a task in the trampoline window (between the
 *                  handler's pick and the jump into the picked code)
 *   HOLE_D3        an immediate function is pushed with its object (before a later object can
 *                  fail) and does not pin the module (implies ANY_ORDER: the task must sleep in g)
 *   GAP_EXITLIST   an entry that the fill or a pass gives to a task already past its exit probe
 *                  does not go on the exiting list (d1-design.md says nothing about it)
 *   GAP_PRETABLE   the pass may set orphan_state = T while a task that passed its exit probe
 *                  before the table was published is still running its tail
 *   GAP_LOST       a pass completes from its walk under RCU even when a creation was lost
 *                  (no entry) since the walk began
 *   GAP_COUNT      a pass completes from its walk under RCU without the table's count of
 *                  entries in the other state
 *   LOCKED_ONLY    every pass walks under tasklist_lock (lpshim before the counts)
 *
 *   NINIT, NCHILD  tasks at the start, tasks that may be created (default 2 and 1)
 *   NOEXIT         tasks 0 .. NOEXIT-1 never exit (default 2: only created tasks exit)
 *   ANY_ORDER      a task may call f or g first, and the other from inside it (default: f, then
 *                  g from inside f)
 *   INNER_WINDOW   a call from inside f has a trampoline window too
 *   MAXREV         reversals of one transition (default 1)
 *   UMAX           slots of the array of untracked exiting orphans (default 1)
 *   PROPS          which properties are checked: 1 = P1, 2 = P2, 3 = both (default)
 *   SCENARIO       0 = any (default), 1 = enable only, 2 = disable only
 *   NO_CANCEL      the enable never fails
 *   NO_IMM         leave out the patch whose g is immediate; IMM=1: only that patch
 */

#ifndef NINIT
#define NINIT 2
#endif
#ifndef NCHILD
#define NCHILD 1
#endif
#define NT (NINIT + NCHILD)
#ifndef MAXREV
#define MAXREV 1
#endif
#ifndef NOEXIT
#define NOEXIT 2
#endif
#ifdef HOLE_D3
#define ANY_ORDER
#endif
#ifndef UMAX
#define UMAX 1
#endif
#ifndef PROPS
#define PROPS 3
#endif
#ifndef SCENARIO
#define SCENARIO 0
#endif

/* task states, and code versions: a task in state s runs version s */
#define UNPATCHED 0
#define PATCHED 1
#define OLD 0		/* the code the patch replaces: an older patch's, or the original */
#define NEW 1		/* the patch module's code */

/* the two patched functions: F is stacked on an older patch P0, G is patched by P1 alone */
#define F 0
#define G 1

/* a frame or a pick: 0 = none, else 1 + 2 * function + version */
#define CODE(fn, v)	(1 + 2 * (fn) + (v))
#define CFN(c)		(((c) - 1) / 2)
#define CVER(c)		(((c) - 1) % 2)

/* the top of a function's func_stack (lpshim_top[] slot / ops->func_stack) */
#define TOP_NONE 0	/* not in ftrace: the call runs the original */
#define TOP_P0 1	/* the older patch's entry, settled: OLD */
#define TOP_P1 2	/* the patch's entry */

/* a task's life */
#define S_NONE 0	/* slot of a task not created yet */
#define S_NEW 1		/* in the task list, creation probe not run yet, has never run */
#define S_LIVE 2
#define S_EXITING 3	/* past sched_process_exit, still in the task list */
#define S_RELEASED 4	/* release_task() done: out of the task list, still runs its tail */
#define S_FREED 5	/* final schedule and sched_process_free done */

/* where a task is in the ftrace handler */
#define H_NONE 0
#define H_TOP 1		/* read the top of the func_stack */
#define H_MARK 2	/* read the mark: in transition */
#define H_ORPHAN 3	/* looked the task up in the table: no entry */

/* --- shared state ---------------------------------------------------------------------- */

bit T;			/* lpshim_target_state */
bit table;		/* lpshim_tasks published */
bit orphan;		/* table->orphan_state: the state of a task without an entry */
byte ranges;		/* lpshim_ranges: 0 = none, else 1 + the target it was computed for */
byte top[2];		/* the top of f's and g's func_stacks */
bit mark[2];		/* P1's func->redirect == LPSHIM_REDIRECT_TRANSITION */
bit imm;		/* P1's g is an immediate function */
bit freed;		/* the patch module's code is freed */
bit pinned;		/* the patch module can never be freed (force, immediate) */
bit halted;		/* forced: nothing more can be violated, stop exploring */
bit tl;			/* the pass holds tasklist_lock: no task enters or leaves the list */
bit walking;		/* a pass walks the task list under RCU: tasks may be created behind it */
byte born;		/* tasks created during that walk (bit mask): it may not see them */
byte nr_lost;		/* table->nr_lost: creations and exits that got no entry */
byte sync_wait;		/* tasks a lpshim_synchronize() still waits for (bit mask) */
byte nchild;		/* tasks created so far */
byte nuntracked;	/* untracked exiting orphans in the table's fixed array */
bit overflow;		/* that array overflowed: orphan_state can no longer be flipped */

byte status[NT];
bit has_entry[NT];	/* an entry in the table */
bit st[NT];		/* the entry's state */
bit on_exiting[NT];	/* the entry is on the table's exiting list */
bit untracked[NT];	/* in the array of untracked exiting orphans */
bit missed_exit[NT];	/* passed sched_process_exit while no table was published */
byte npretable;		/* tasks with missed_exit, not freed yet */
byte fr0[NT];		/* the task's outermost frame of f or g (see README: one is enough) */
byte pick[NT];		/* picked by the handler, not entered yet (the trampoline window) */
byte hph[NT];		/* where the task is in the handler */

/* the properties, as ghosts that the step breaking one clears */
bool P1_never_mixed = true;
bool P2_no_use_after_free = true;

/* the names of frames and picks in the trails (printf's %e): mtype values count from the last */
mtype = { g_new, g_old, f_new, f_old };

/* --- properties -------------------------------------------------------------------------- */

/* a frame of the patch other than version v (immediate functions are outside the model) */
#define OTHER(fr, v)	((fr) != 0 && !(imm && CFN(fr) == G) && CVER(fr) != (v))

inline check_p1(t, c)
{
#if PROPS & 1
	if
	:: !(imm && CFN(c) == G) && OTHER(fr0[t], CVER(c)) ->
		printf("P1 violated: task %d picks %e with a frame of %e on its stack\n", t, c, fr0[t]);
		P1_never_mixed = false
	:: else -> skip
	fi;
	assert(P1_never_mixed)
#else
	skip
#endif
}

inline check_p2_code(t, c)
{
#if PROPS & 2
	if
	:: freed && CVER(c) == NEW ->
		printf("P2 violated: task %d runs freed code: %e\n", t, c);
		P2_no_use_after_free = false
	:: else -> skip
	fi;
	assert(P2_no_use_after_free)
#else
	skip
#endif
}

/* the module's code is freed: no task may have a frame in it or be about to enter it */
inline free_module()
{
	d_step {
		printf("W frees the patch module\n");
#if PROPS & 2
		for (i : 0 .. NT - 1) {
			if
			:: (fr0[i] != 0 && CVER(fr0[i]) == NEW) || (pick[i] != 0 && CVER(pick[i]) == NEW) ->
				printf("P2 violated: task %d still has the module's code: frame %e, picked %e\n",
				       i, fr0[i], pick[i]);
				P2_no_use_after_free = false
			:: else -> skip
			fi
		}
		assert(P2_no_use_after_free);
#endif
		freed = 1;
		i = 0
	}
}

/* --- the handler ------------------------------------------------------------------------- */

/*
 * The trampoline jumps to the picked code. An outermost call leaves its frame on the stack; a
 * call made from inside it runs and returns (README: while P1 holds, its frame would add nothing).
 */
inline ENTER(t)
{
	printf("task %d enters %e\n", t, pick[t]);
	check_p2_code(t, pick[t]);
	if
	:: fr0[t] == 0 -> fr0[t] = pick[t]
	:: else -> skip
	fi;
	pick[t] = 0
}

/* The handler picks version v of fn for task t and returns (end of its read side). */
inline PICK(t, fn, v)
{
	pick[t] = CODE(fn, v);
	printf("task %d picks %e\n", t, pick[t]);
	check_p1(t, pick[t]);
	check_p2_code(t, pick[t]);
	hph[t] = H_NONE;
	sync_wait = sync_wait & ~(1 << t);
	fn = 0;
#ifndef INNER_WINDOW
	/*
	 * A call from inside f: no trampoline window of its own in the model (README: while P1
	 * holds, its pending pick changes no stack check), it enters, runs and returns at once.
	 */
	if
	:: fr0[t] != 0 -> ENTER(t)
	:: else -> skip
	fi
#endif
}



/* --- the stack check ---------------------------------------------------------------------- */

/*
 * What a task in the state opposite to R may be running (lpshim_update_ranges()): patching, the
 * implementation each function replaces (OLD); unpatching, the patch's own (NEW). Immediate
 * functions are not in the ranges.
 */
#define BAD(fr, R)	((fr) != 0 && !(imm && CFN(fr) == G) && CVER(fr) != (R))
#ifdef HOLE_D6
/*
 * A task in the trampoline window shows the return address of the fentry call, ip+5, in the
 * original function: covered only by the range of an unstacked function being patched.
 */
#define TRAMP_BAD(c, R)	((c) != 0 && CFN(c) == G && !imm && (R) == PATCHED)
#else
/* the fix: ip+5 of every function in transition is in the ranges */
#define TRAMP_BAD(c, R)	((c) != 0 && !(imm && CFN(c) == G))
#endif
#define CLEAN(t, R)	(!BAD(fr0[t], R) && !TRAMP_BAD(pick[t], R))

/* --- tasks ------------------------------------------------------------------------------- */

#define RUNS(t)		(status[t] == S_LIVE || status[t] == S_EXITING || status[t] == S_RELEASED)
/* at the task's own code: not in the handler, not in the trampoline window, not creating */
#define AT_CODE(t)	(!halted && RUNS(t) && hph[t] == H_NONE && pick[t] == 0 && child == 0)

proctype Task(byte t)
{
	byte fn;	/* the function the handler runs for */
	byte child;	/* the task being created, between its two steps */
	bit worker;	/* HOLE1: it is an io_uring-style worker (copy_process without kernel_clone) */
	byte i;

end:	do
	/* -- a call of f or g: the handler, one step per read -- */
	:: atomic { AT_CODE(t) ->
#ifdef ANY_ORDER
		if
		:: fr0[t] == 0 -> if :: fn = F :: fn = G fi
		:: else -> fn = 1 - CFN(fr0[t])
		fi;
#else
		fn = (fr0[t] == 0 -> F : G);	/* f, and g from inside f */
#endif
		if		/* read the top of the func_stack */
		:: top[fn] == TOP_P1 -> hph[t] = H_TOP;
			printf("task %d calls %c: the patch's entry is on top\n", t, (fn == F -> 'f' : 'g'))
		:: top[fn] == TOP_P0 -> PICK(t, fn, OLD)	/* the older patch's: settled */
		:: top[fn] == TOP_NONE ->			/* not in ftrace: no handler */
			PICK(t, fn, OLD);
			if :: pick[t] != 0 -> ENTER(t) :: else -> skip fi
		fi }
	:: atomic { !halted && hph[t] == H_TOP ->
		if		/* read its mark (->redirect) */
		:: mark[fn] -> hph[t] = H_MARK; printf("task %d: it is in transition\n", t)
		:: else -> PICK(t, fn, NEW)	/* settled: ->redirect is the new code */
		fi }
	:: atomic { !halted && hph[t] == H_MARK ->
		if		/* read the task's state; PATCHED picks the top, UNPATCHED the entry below */
		:: !table -> PICK(t, fn, T)
		:: table && has_entry[t] -> PICK(t, fn, st[t])
		:: table && !has_entry[t] ->
#ifdef HOLE1
			PICK(t, fn, T)		/* no entry: follows the target */
#else
			hph[t] = H_ORPHAN;	/* no entry: then read orphan_state */
			printf("task %d: no entry\n", t)	/* cover */
#endif
		fi }
	:: atomic { !halted && hph[t] == H_ORPHAN -> PICK(t, fn, orphan) }
	/* -- the trampoline jumps to the picked code -- */
	:: atomic { !halted && pick[t] != 0 -> ENTER(t) }
	/* -- the return of the outermost call -- */
	:: atomic { AT_CODE(t) && fr0[t] != 0 -> fr0[t] = 0; printf("task %d returns\n", t) }

	/*
	 * -- switch points of the task itself: sched_switch (also when preempted in the trampoline
	 * window) and return to user (an empty stack: a special case). An orphan has no entry to
	 * switch; lpshim_switch_task_locked() then does nothing.
	 */
	:: atomic { !halted && RUNS(t) && hph[t] == H_NONE && child == 0 && table && ranges != 0 &&
		    has_entry[t] && st[t] != ranges - 1 && CLEAN(t, ranges - 1) ->
		st[t] = ranges - 1;
		printf("task %d switches itself to %d\n", t, st[t]) }	/* cover */

	/* -- creation: the child enters the task list (copy_process, under tasklist_lock) -- */
	:: atomic { AT_CODE(t) && status[t] == S_LIVE && nchild < NCHILD && !tl ->
		child = NINIT + nchild;
		nchild++;
		status[child] = S_NEW;
		if :: walking -> born = born | (1 << child) :: else -> skip fi;
#ifdef HOLE1
		if :: worker = 1 :: worker = 0 fi;
		printf("task %d creates task %d (%d: 1 = an io_uring-style worker)\n", t, child, worker) }
#else
		printf("task %d creates task %d\n", t, child) }
#endif
	/* ... then the creation probe, then wake_up_new_task() */
	:: atomic { !halted && child != 0 ->
#ifdef HOLE1
		/* sched_process_fork, from kernel_clone() only: never for a worker */
		if
		:: table && !worker ->
			if
			:: has_entry[child] -> st[child] = (has_entry[t] -> st[t] : T)
			:: !has_entry[child] ->
				if	/* GFP_ATOMIC */
				:: has_entry[child] = 1; st[child] = (has_entry[t] -> st[t] : T)
				:: skip
				fi
			fi
		:: else -> skip
		fi;
		worker = 0;
#else
		/* task_newtask, for every creator: the creator's state, or lost */
		if
		:: table ->
			if
			:: has_entry[child] -> st[child] = (has_entry[t] -> st[t] : orphan);
				printf("task %d: the pass gave task %d an entry first\n", t, child)	/* cover */
			:: !has_entry[child] ->
				if	/* the pool, else GFP_ATOMIC */
				:: has_entry[child] = 1; st[child] = (has_entry[t] -> st[t] : orphan)
				:: nr_lost++; printf("task %d is lost (no entry)\n", child)	/* cover */
				fi
			fi
		:: else -> skip
		fi;
#endif
		status[child] = S_LIVE;
		printf("task %d: creation done, task %d has ", t, child);
		if :: has_entry[child] -> printf("an entry in state %d\n", st[child])
		   :: else -> printf("no entry\n") fi;
		child = 0 }

	/* -- exit: sched_process_exit (current, still in the task list) -- */
	:: atomic { AT_CODE(t) && status[t] == S_LIVE && t >= NOEXIT ->
		status[t] = S_EXITING;
		/*
		 * do_exit() does not return: a frame it was called from is dead, no code of it runs
		 * again. Dropped here: stack checks may then switch the task where the real one
		 * would block, more behaviours, not fewer. The tail's own calls have frames again.
		 */
		fr0[t] = 0;
#ifndef HOLE1
		if
		:: table && has_entry[t] -> on_exiting[t] = 1
		:: table && !has_entry[t] ->
			if
			:: has_entry[t] = 1; st[t] = orphan; on_exiting[t] = 1
			:: nuntracked < UMAX -> untracked[t] = 1; nuntracked++; nr_lost++;
				printf("task %d: exit probe found no memory\n", t)	/* cover */
			:: overflow = 1; nr_lost++;	/* or tasks not modelled filled the array */
				printf("task %d: exit probe overflows the array\n", t)	/* cover */
			fi
		:: !table -> missed_exit[t] = 1; npretable++;
			printf("task %d: exit probe before the table\n", t)	/* cover */
		fi;
#endif
		printf("task %d exits: ", t);
		if :: has_entry[t] -> printf("entry in state %d\n", st[t])
		   :: untracked[t] -> printf("untracked\n")
		   :: else -> printf("no entry\n") fi }
	/* release_task() (by the task itself or its reaper: at any point of its tail) */
	:: atomic { !halted && status[t] == S_EXITING && !tl -> status[t] = S_RELEASED;
		printf("task %d is released (leaves the task list)\n", t) }	/* cover */
	/* the final schedule, then sched_process_free */
	:: atomic { AT_CODE(t) && status[t] == S_RELEASED && fr0[t] == 0 ->
		status[t] = S_FREED;
		printf("task %d is freed\n", t);	/* cover */
		if
		:: table -> has_entry[t] = 0; st[t] = 0; on_exiting[t] = 0;
			if :: untracked[t] -> untracked[t] = 0; nuntracked-- :: else -> skip fi
		:: else -> skip
		fi;
		if :: missed_exit[t] -> missed_exit[t] = 0; npretable-- :: else -> skip fi }
	od
}

/* --- the writer (lpshim_mutex) ----------------------------------------------------------- */

/* lpshim_synchronize(): waits out every handler that started before it */
inline SYNC()
{
	atomic {
		sync_wait = 0;
		for (i : 0 .. NT - 1) {
			if :: hph[i] != H_NONE -> sync_wait = sync_wait | (1 << i) :: else -> skip fi
		}
		i = 0;
		printf("W: synchronize waits for %d\n", sync_wait);
		if
		:: sync_wait != 0 -> printf("W: synchronize waits for a handler\n")	/* cover */
		:: else -> skip
		fi
	};
	sync_wait == 0
}

/* Unpublish the table and the ranges (lpshim_end_transition_tracking()). */
inline end_tracking()
{
	d_step {
		table = 0; ranges = 0; orphan = 0; nuntracked = 0; overflow = 0; nr_lost = 0;
		for (i : 0 .. NT - 1) {
			has_entry[i] = 0; st[i] = 0; on_exiting[i] = 0; untracked[i] = 0
		}
		i = 0
	}
}

#define LISTED(i)	(status[i] == S_NEW || status[i] == S_LIVE || status[i] == S_EXITING)
#define PAST_EXIT(i)	(status[i] == S_EXITING || status[i] == S_RELEASED)

/* Give task i an entry in orphan_state (the table fill, a pass). */
inline materialise(i)
{
	has_entry[i] = 1;
	st[i] = orphan;
#ifndef GAP_EXITLIST
	if
	:: PAST_EXIT(i) ->
		on_exiting[i] = 1;
		if :: untracked[i] -> untracked[i] = 0; nuntracked-- :: else -> skip fi
	:: else -> skip
	fi
#endif
}

/*
 * One step of a pass for task i: in the task list, or (not HOLE1) on the exiting list. Pinned
 * (task_call_func()) or current: atomic with respect to the task. A switch attempt may always
 * fail (running on another CPU, unreliable stack); a task in the handler is running.
 */
inline visit(i)
{
#ifdef HOLE1
	if
	:: LISTED(i) && has_entry[i] && st[i] != T ->
		if
		:: hph[i] == H_NONE && CLEAN(i, T) -> st[i] = T;
			printf("W: pass switches task %d to %d\n", i, T)
		:: pending = 1
		fi
	:: else -> skip
	fi
#else
	if
	:: LISTED(i) || (status[i] == S_RELEASED && on_exiting[i]) ->
		if
		:: !has_entry[i] && orphan != T ->
			if
			:: LISTED(i) -> materialise(i);
				printf("W: pass gives task %d an entry in state %d\n", i, st[i])	/* cover */
			:: pending = 1		/* the pool is empty */
			fi
		:: else -> skip
		fi;
		if
		:: has_entry[i] && st[i] != T ->
			if
			:: hph[i] == H_NONE && CLEAN(i, T) -> st[i] = T;
				printf("W: pass switches task %d to %d\n", i, T);	/* cover */
				if
				:: status[i] == S_RELEASED ->
					printf("W: pass switches released task %d\n", i)	/* cover */
				:: else -> skip
				fi
			:: hph[i] == H_NONE && !CLEAN(i, T) && !BAD(fr0[i], T) ->
				printf("W: task %d in the trampoline window blocks\n", i);	/* cover */
				pending = 1
			:: pending = 1
			fi
		:: else -> skip
		fi
	:: else -> skip
	fi
#endif
}

/*
 * Skip to the next task a pass walks. What is skipped stays so while tasklist_lock is held: a
 * slot becomes a task only in the list (copy_process), an exiting list gains a released task
 * only from a walk.
 */
#ifdef HOLE1
#define WALKED(i)	LISTED(i)
#else
#define WALKED(i)	(LISTED(i) || (status[i] == S_RELEASED && on_exiting[i]))
#endif
inline NEXT_WALKED()
{
	do
	:: i < NT && !WALKED(i) -> i++
	:: else -> break
	od
}

#ifdef GAP_PRETABLE
#define PRETABLE_GONE	1
#else
/* every task that passed its exit probe before the table was published is gone */
#define PRETABLE_GONE	(npretable == 0)
#endif

/*
 * The walk under tasklist_lock (lpshim_switch_tasks() after a lost creation, and every pass
 * before the table counted its entries per state): walk the tasks, then the exiting list; if
 * every walked task is in T, flip orphan_state (still under tasklist_lock). Leaves pending = 0
 * when it may complete.
 */
inline locked_walk()
{
	atomic { tl = 1; pending = 0; i = 0; NEXT_WALKED() };
	do
	:: atomic { i < NT -> visit(i); i++; NEXT_WALKED() }
	:: atomic { i >= NT ->
#ifndef HOLE1
		if
		:: pending == 0 && orphan != T ->
			if
			:: nuntracked == 0 && !overflow && PRETABLE_GONE ->
				orphan = T;
				printf("W flips orphan_state to %d\n", T)	/* cover */
			:: else -> pending = 1
			fi
		:: else -> skip
		fi;
#endif
		tl = 0;
		i = 0;
		break }
	od
}

#ifdef GAP_LOST
#define LOST_SINCE(n)	0
#else
#define LOST_SINCE(n)	(nr_lost != (n))
#endif

/*
 * The walk under RCU (lpshim_switch_tasks_preemptible()): tasks are created and released
 * meanwhile, and it may miss any task created behind it (born); it sees every other. When it
 * found every task it saw in T, the table decides in one section of its lock
 * (lpshim_task_table_settle()): a creation lost since the walk began leaves it to the locked
 * walk (stale); an entry in the other state keeps the transition open; else orphan_state
 * becomes T.
 */
inline rcu_walk()
{
	atomic { walking = 1; born = 0; pending = 0; stale = 0; lost0 = nr_lost; i = 0; NEXT_WALKED() };
	do
	:: atomic { i < NT ->
		if
		:: (born >> i) & 1 -> printf("W: the walk misses task %d, created behind it\n", i)	/* cover */
		:: visit(i)
		fi;
		i++;
		NEXT_WALKED() }
	:: atomic { i >= NT ->
		walking = 0;
		born = 0;
		other = 0;
		for (i : 0 .. NT - 1) {
			if :: has_entry[i] && st[i] != T -> other = 1 :: else -> skip fi
		}
		i = 0;
		if
		:: pending == 0 && LOST_SINCE(lost0) ->
			stale = 1;
			printf("W: a creation was lost during the walk: the locked walk decides\n")	/* cover */
#ifndef GAP_COUNT
		:: pending == 0 && !LOST_SINCE(lost0) && other ->
			pending = 1;
			printf("W: an entry is counted in the other state\n")	/* cover */
#endif
		:: pending == 0 && !LOST_SINCE(lost0) && orphan != T &&
#ifndef GAP_COUNT
		   !other &&
#endif
		   nuntracked == 0 && !overflow && PRETABLE_GONE ->
			orphan = T;
			printf("W flips orphan_state to %d from the counts\n", T)	/* cover */
		:: pending == 0 && !LOST_SINCE(lost0) && orphan != T &&
#ifndef GAP_COUNT
		   !other &&
#endif
		   !(nuntracked == 0 && !overflow && PRETABLE_GONE) ->
			pending = 1
		:: else -> skip
		fi;
		other = 0;
		lost0 = 0;
		break }
	od
}

/* A pass (lpshim_try_complete_transition()). Leaves done = 1 when complete. */
inline pass()
{
#if defined(HOLE1) || defined(LOCKED_ONLY)
	locked_walk();
#else
	rcu_walk();
	if :: stale -> locked_walk() :: else -> skip fi;
#endif
	done = (pending == 0);
	printf("W: pass done: %d\n", done);
	pending = 0;
	stale = 0
}

/* lpshim_complete_transition() */
inline complete()
{
	printf("W completes the transition to %d\n", T);
	if
	:: T == UNPATCHED ->
		printf("W: unpatching completes\n");	/* cover */
		atomic { top[F] = TOP_P0; printf("W pops f\n") };	/* stacked: list_del_rcu() */
		atomic { top[G] = TOP_NONE; printf("W pops g\n") };	/* the last: leaves ftrace */
		SYNC()
	:: else -> printf("W: patching completes\n")	/* cover */
	fi;
	mark[F] = 0;
	mark[G] = 0;
	printf("W clears the marks\n");
	SYNC();
	end_tracking();
	if
	:: T == UNPATCHED && !pinned ->
		printf("W: the module goes after unpatching\n");	/* cover */
		free_module()
	:: else -> skip
	fi
}

/* lpshim_cancel_transition() after a failed enable: the module's init fails, its code goes */
inline cancel()
{
	printf("W cancels the enable\n");
	atomic { top[F] = TOP_P0; printf("W pops f\n") };	/* stacked: list_del_rcu() */
	if
	:: top[G] == TOP_P1 ->	/* HOLE_D3's immediate g: the last, leaves ftrace, then a wait */
		atomic { top[G] = TOP_NONE; printf("W pops g\n") };
		SYNC()
	:: else -> skip
	fi;
#ifndef HOLE2
	SYNC();
#endif
	mark[F] = 0;
	mark[G] = 0;
	printf("W clears the marks\n");
	SYNC();
	end_tracking();
	free_module()
}

/* publish the table, set the marks (lpshim_init_transition()) */
inline init_transition()
{
#ifdef HOLE1
	d_step {	/* fill, then publish */
		for (i : 0 .. NT - 1) {
			if :: LISTED(i) -> has_entry[i] = 1; st[i] = 1 - T :: else -> skip fi
		}
		i = 0;
		printf("W fills the table\n")
	};
	atomic { table = 1; printf("W publishes the table\n") };
#else
	atomic { table = 1; orphan = 1 - T; printf("W publishes the table\n") };
#endif
	mark[F] = 1;
	if :: !imm -> mark[G] = 1 :: else -> skip fi;
	printf("W marks the functions\n")
}

/* the fill of the fixed design: entries for the tasks in the list that have none */
inline fill()
{
#ifdef HOLE1
	skip	/* filled before the publication */
#else
	d_step {
		for (i : 0 .. NT - 1) {
			if :: LISTED(i) && !has_entry[i] -> materialise(i) :: else -> skip fi
		}
		i = 0;
		printf("W fills the table\n")
	}
#endif
}

proctype Writer(bit enable)
{
	byte i;
	bit pending, done, stale, other;
	byte nrev, lost0;

	if
	:: enable ->
		T = PATCHED;
		init_transition();
#ifdef HOLE_D3
		if	/* an immediate g is pushed with its object, first, and pins nothing */
		:: imm -> atomic { top[G] = TOP_P1; printf("W pushes g (immediate)\n") }
		:: else -> skip
		fi;
#endif
		atomic { top[F] = TOP_P1; printf("W pushes f\n") };
		if	/* the next object's pre_patch callback or ftrace registration fails */
#ifndef NO_CANCEL
		:: printf("W: the next object fails\n");	/* cover */
			cancel(); goto finished
#endif
		:: skip
		fi;
		if
		:: !imm ->
			atomic { top[G] = TOP_P1; printf("W pushes g\n") };
			if	/* lpshim_patch_funcs() fails after the push, and undoes it */
#ifndef NO_CANCEL
			:: atomic { top[G] = TOP_NONE; printf("W unpushes g\n") };	/* cover */
				SYNC(); cancel(); goto finished
#endif
			:: skip
			fi
		:: else -> skip
		fi;
#ifndef HOLE_D3
		if	/* immediate functions: after every fallible step; they pin the module */
		:: imm -> atomic { top[G] = TOP_P1; pinned = 1; printf("W pushes g (immediate)\n") }	/* cover */
		:: else -> skip
		fi;
#endif
		fill()
	:: else ->
		T = UNPATCHED;
		init_transition();
		fill()
	fi;

	/* lpshim_start_transition(): the ranges, then the first pass */
	ranges = T + 1;
	printf("W starts the transition to %d\n", T);
	do
	:: pass();
		if
		:: done -> break
		:: else -> skip
		fi
	:: nrev < MAXREV ->	/* lpshim_reverse_transition(), then a pass */
		atomic { nrev++; T = 1 - T; ranges = T + 1; printf("W reverses to %d\n", T) }	/* cover */
	:: atomic {		/* lpshim_force_transition(): breaks the model, pins the module */
		for (i : 0 .. NT - 1) {
			if :: has_entry[i] -> st[i] = T :: else -> skip fi
		}
		orphan = T; pinned = 1; halted = 1; i = 0;
		printf("W forces the transition\n") };	/* cover */
		goto finished
	od;
	complete();
finished:
	skip
}

init {
	byte i;
	bit enable;

	atomic {
		for (i : 0 .. NINIT - 1) {
			status[i] = S_LIVE
		}
		i = 0;
#if SCENARIO == 1
		enable = 1;
#elif SCENARIO == 2
		enable = 0;
#else
		if :: enable = 1 :: enable = 0 fi;
#endif
		printf("scenario: %d (1 = enable, 0 = disable)\n", enable);
#if defined(IMM)
		imm = IMM;
#elif defined(NO_IMM) && !defined(HOLE_D3)
		imm = 0;
#else
		if :: imm = 0 :: imm = 1 fi;
#endif
		printf("g is immediate: %d\n", imm);
		if
		:: enable -> top[F] = TOP_P0; top[G] = TOP_NONE		/* P1 not enabled yet */
		:: else -> top[F] = TOP_P1; top[G] = TOP_P1; pinned = imm	/* P1 enabled, settled */
		fi;
		for (i : 0 .. NT - 1) {
			run Task(i)
		}
		i = 0;
		run Writer(enable)
	}
}
