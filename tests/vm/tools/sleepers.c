// SPDX-License-Identifier: GPL-2.0-only
/*
 * sleepers N [FILE]: start N threads that sleep in the kernel until the process is killed,
 * print "ready" once all of them exist, then wait. For the transition-at-scale test: N tasks
 * whose stacks the consistency model must check. With FILE, each thread reads FILE instead
 * (/dev/lpshim_target_sleep: N tasks asleep in a patched function, the pending-view test).
 */
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* FILE opened once for all of them: one descriptor per thread would stop at RLIMIT_NOFILE
 * (1,024 by default) long before 10,000 threads. -1: no FILE. */
static int fd = -1;

static void *sleeper(void *arg)
{
	char c;

	(void)arg;
	if (fd >= 0)
		for (;;) /* a read that returns (released, or restarted after a stop) reads again */
			if (read(fd, &c, 1) < 0)
				usleep(1000);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_attr_t attr;
	pthread_t t;
	long n, i;

	if (argc < 2 || argc > 3 || (n = strtol(argv[1], NULL, 10)) < 1 || n > 100000) {
		fprintf(stderr, "usage: sleepers N [FILE] (N: 1..100000)\n");
		return 2;
	}
	if (argc == 3) {
		fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			perror(argv[2]);
			return 1;
		}
	}
	pthread_attr_init(&attr);
	/* Small stacks: 10,000 threads fit in a small guest. */
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (i = 0; i < n; i++) {
		if (pthread_create(&t, &attr, sleeper, NULL)) {
			fprintf(stderr, "sleepers: thread %ld of %ld could not be created\n", i + 1, n);
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
