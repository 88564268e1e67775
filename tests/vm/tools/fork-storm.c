// SPDX-License-Identifier: GPL-2.0-only
/*
 * fork-storm [--threads] N [PARALLEL]: create N short-lived tasks, at most PARALLEL (default 16)
 * alive at a time, and reap them all; print how many were created and the time taken. Tasks are
 * processes that exit at once, or with --threads threads (cheaper to create: no address space
 * to copy), which is what a transition held open sees from a busy server.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *thread_fn(void *arg)
{
	return arg;
}

static int storm_processes(long n, long parallel)
{
	long forked = 0, alive = 0;
	pid_t pid;

	while (forked < n || alive) {
		if (forked < n && alive < parallel) {
			pid = fork();
			if (pid == 0)
				_exit(0);
			if (pid < 0) {
				fprintf(stderr, "fork-storm: fork: %s\n", strerror(errno));
				return 1;
			}
			forked++;
			alive++;
			continue;
		}
		if (wait(NULL) > 0)
			alive--;
	}
	return 0;
}

static int storm_threads(long n, long parallel)
{
	pthread_t *threads = calloc(parallel, sizeof(*threads));
	long created = 0, i, batch;
	int err;

	if (!threads)
		return 1;
	while (created < n) {
		batch = n - created < parallel ? n - created : parallel;
		for (i = 0; i < batch; i++) {
			err = pthread_create(&threads[i], NULL, thread_fn, NULL);
			if (err) {
				fprintf(stderr, "fork-storm: pthread_create: %s\n", strerror(err));
				return 1;
			}
		}
		for (i = 0; i < batch; i++)
			pthread_join(threads[i], NULL);
		created += batch;
	}
	free(threads);
	return 0;
}

int main(int argc, char **argv)
{
	long n, parallel = 16;
	int threads = 0, arg = 1, ret;
	struct timespec a, b;

	if (argc > 1 && !strcmp(argv[1], "--threads")) {
		threads = 1;
		arg++;
	}
	if (argc - arg < 1 || argc - arg > 2 || (n = strtol(argv[arg], NULL, 10)) <= 0 ||
	    (argc - arg == 2 && (parallel = strtol(argv[arg + 1], NULL, 10)) <= 0)) {
		fprintf(stderr, "usage: fork-storm [--threads] N [PARALLEL]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	ret = threads ? storm_threads(n, parallel) : storm_processes(n, parallel);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (!ret)
		printf("created=%ld %s seconds=%.1f\n", n, threads ? "threads" : "processes",
		       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return ret;
}
