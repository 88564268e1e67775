// SPDX-License-Identifier: GPL-2.0-only
/*
 * sleepers N: start N threads that sleep in the kernel until the process is killed, print
 * "ready" once all of them exist, then wait. For the transition-at-scale test: N tasks whose
 * stacks the consistency model must check.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_attr_t attr;
	pthread_t t;
	long n, i;

	if (argc != 2 || (n = strtol(argv[1], NULL, 10)) < 1 || n > 100000) {
		fprintf(stderr, "usage: sleepers N (1..100000)\n");
		return 2;
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
