// SPDX-License-Identifier: GPL-2.0-only
/*
 * fork-storm N [PARALLEL]: fork N children that exit at once, at most PARALLEL (default 16)
 * alive at a time, and reap them all; print the number forked and the time taken.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n, parallel = 16, forked = 0, alive = 0;
	struct timespec a, b;
	pid_t pid;

	if (argc < 2 || argc > 3 || (n = strtol(argv[1], NULL, 10)) <= 0 ||
	    (argc == 3 && (parallel = strtol(argv[2], NULL, 10)) <= 0)) {
		fprintf(stderr, "usage: fork-storm N [PARALLEL]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
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
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("forked=%ld seconds=%.1f\n", forked,
	       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
