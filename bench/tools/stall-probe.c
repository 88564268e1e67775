// SPDX-License-Identifier: GPL-2.0-only
/*
 * stall-probe: the longest scheduling stall any CPU sees, cyclictest-style.
 *
 *   stall-probe [INTERVAL_US]
 *
 * One SCHED_FIFO thread pinned to each online CPU wakes every INTERVAL_US (default 500) at an
 * absolute time and records how late it woke. A real-time thread preempts every ordinary task
 * at once, so lateness beyond the timer's own jitter is time the CPU could not schedule: with
 * interrupts or preemption off, or held in stop_machine. It runs until SIGINT or SIGTERM, then
 * prints one line:
 *
 *   max_latency_us=<x> cpu=<n> wakeups=<total>
 *
 * and exits 0. Needs root (SCHED_FIFO); exits 1 with a message when a thread cannot be set up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 256

static atomic_bool stopping;
static long interval_ns = 500 * 1000;

struct probe {
	pthread_t thread;
	int cpu;
	long long max_late_ns;
	long long wakeups;
};

static long long ns_of(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static void *probe_cpu(void *arg)
{
	struct probe *p = arg;
	struct timespec next, now;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		next.tv_nsec += interval_ns;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long late = ns_of(&now) - ns_of(&next);
		if (late > p->max_late_ns)
			p->max_late_ns = late;
		p->wakeups++;
		/* Far behind (the whole guest was descheduled): start again from now, do not
		 * count every missed period as another late wake-up. */
		if (late > interval_ns)
			next = now;
	}
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stopping, true);
}

int main(int argc, char **argv)
{
	static struct probe probes[MAX_CPUS];
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), i, worst = 0;
	long long wakeups = 0;
	sigset_t all, old;

	if (argc > 1) {
		char *end;
		long us = strtol(argv[1], &end, 10);
		if (*end || us < 50 || us > 1000000) {
			fprintf(stderr, "stall-probe: interval '%s' is not 50..1000000 microseconds\n",
				argv[1]);
			return 2;
		}
		interval_ns = us * 1000;
	}
	if (ncpu > MAX_CPUS)
		ncpu = MAX_CPUS;

	/* Threads start with every signal blocked: only the main thread takes SIGINT/SIGTERM. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < ncpu; i++) {
		pthread_attr_t attr;
		struct sched_param sp = { .sched_priority = 90 };
		cpu_set_t set;
		int err;

		probes[i].cpu = i;
		CPU_ZERO(&set);
		CPU_SET(i, &set);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
		pthread_attr_setschedparam(&attr, &sp);
		err = pthread_create(&probes[i].thread, &attr, probe_cpu, &probes[i]);
		pthread_attr_destroy(&attr);
		if (err) {
			fprintf(stderr, "stall-probe: cannot start a SCHED_FIFO thread on CPU %d: %s "
				"(needs root)\n", i, strerror(err));
			return 1;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* Ready: the caller may start what it measures. */
	printf("ready cpus=%d interval_us=%ld\n", ncpu, interval_ns / 1000);
	fflush(stdout);
	while (!atomic_load(&stopping))
		pause();
	for (i = 0; i < ncpu; i++) {
		pthread_join(probes[i].thread, NULL);
		wakeups += probes[i].wakeups;
		if (probes[i].max_late_ns > probes[worst].max_late_ns)
			worst = i;
	}
	printf("max_latency_us=%.1f cpu=%d wakeups=%lld\n", probes[worst].max_late_ns / 1000.0,
	       worst, wakeups);
	return 0;
}
