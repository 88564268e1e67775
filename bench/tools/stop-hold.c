// SPDX-License-Identifier: GPL-2.0-only
/*
 * stop-hold: one hold of the stop rung, sent the way livepatchd could send it.
 *
 *   stop-hold PID fifo|other HOLD_MS
 *
 * SIGSTOP to process PID, a sleep until HOLD_MS after it (an absolute CLOCK_MONOTONIC time),
 * SIGCONT, from a thread of SCHED_FIFO priority 1 (fifo) or of the default policy (other);
 * then it waits, as that default policy, until a 1 ms sleep ends on time (a CPU is free
 * again). Prints one line, times in µs from the SIGSTOP's kill():
 *
 *   policy=fifo stop_kill_us=<x> woke_us=<x> cont_kill_us=<x> cpu_free_us=<x>
 *
 * For bench/stop-storm: what a process of many threads does to the sender of these signals.
 * Needs root for fifo; exits 1 with a message on any failure. SIGINT, SIGTERM and SIGHUP wait
 * until the SIGCONT is sent: it never leaves the process stopped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

/* TEXT as a number from MIN to MAX, or -1. */
static long long parse(const char *text, long long min, long long max)
{
	char *end;
	long long value;

	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno || end == text || *end || value < min || value > max)
		return -1;
	return value;
}

static int set_policy(int policy, int priority)
{
	struct sched_param param = { .sched_priority = priority };

	if (sched_setscheduler(0, policy, &param) == 0)
		return 0;
	fprintf(stderr, "stop-hold: cannot set the scheduling policy: %s\n", strerror(errno));
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[2], "fifo") && strcmp(argv[2], "other"))) {
		fprintf(stderr, "usage: stop-hold PID fifo|other HOLD_MS\n");
		return 1;
	}
	const long long pid = parse(argv[1], 2, 1 << 22);
	const int fifo = !strcmp(argv[2], "fifo");
	const long long hold_ms = parse(argv[3], 1, 10000);
	if (pid < 0 || hold_ms < 0) {
		fprintf(stderr, "stop-hold: PID must be a process's (not 1), HOLD_MS 1 to 10000\n");
		return 1;
	}
	const long long hold_us = hold_ms * 1000;
	if (fifo && set_policy(SCHED_FIFO, 1))
		return 1;
	sigset_t held;
	sigemptyset(&held);
	sigaddset(&held, SIGINT);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGHUP);
	sigprocmask(SIG_BLOCK, &held, NULL);

	const long long start = now_us();
	if (kill((pid_t)pid, SIGSTOP)) {
		fprintf(stderr, "stop-hold: SIGSTOP to %lld: %s\n", pid, strerror(errno));
		return 1;
	}
	const long long stopped = now_us();
	const long long due = start + hold_us;
	const struct timespec at = { due / 1000000, (due % 1000000) * 1000 };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
		;
	const long long woke = now_us();
	/* Continued whatever happened before: never leave the process stopped. */
	const int cont_error = kill((pid_t)pid, SIGCONT) ? errno : 0;
	const long long continued = now_us();
	sigprocmask(SIG_UNBLOCK, &held, NULL);
	if (cont_error) {
		fprintf(stderr, "stop-hold: SIGCONT to %lld: %s\n", pid, strerror(cont_error));
		return 1;
	}
	if (fifo && set_policy(SCHED_OTHER, 0))
		return 1;
	const struct timespec one_ms = { 0, 1000000 };
	for (int i = 0; i < 10000; i++) {
		const long long before = now_us();
		nanosleep(&one_ms, NULL);
		if (now_us() - before < 3000)
			break;
	}
	const long long free_cpu = now_us();
	printf("policy=%s stop_kill_us=%lld woke_us=%lld cont_kill_us=%lld cpu_free_us=%lld\n",
	       argv[2], stopped - start, woke - start, continued - start, free_cpu - start);
	return 0;
}
