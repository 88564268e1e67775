// SPDX-License-Identifier: GPL-2.0-only
/*
 * syscall-cost N: the cost of a system call that no patch touches, as seen by a task that has
 * nothing to do with a transition.
 *
 * Makes N getppid() system calls (through syscall(2), so no libc cache answers) and prints
 *
 *   calls=<N> ns_per_call=<x.y>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec a, b;
	long n, i;
	char *end;

	if (argc != 2 || (n = strtol(argv[1], &end, 10)) < 1 || *end) {
		fprintf(stderr, "usage: syscall-cost N (N >= 1 calls)\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("calls=%ld ns_per_call=%.1f\n", n,
	       ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n);
	return 0;
}
