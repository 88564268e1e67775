// SPDX-License-Identifier: GPL-2.0-only
/*
 * uring-read [--sqpoll] [--hold] FILE: read FILE through io_uring in a kernel worker, and print
 * what the read returned.
 *
 * The read is queued with IOSQE_ASYNC, so an io-wq worker thread ("iou-wrk-<pid>") does it;
 * with --sqpoll the ring also has a submission thread ("iou-sqp-<pid>"). io_uring creates both
 * with copy_process() but not kernel_clone(), which is what the task-tracking cases need.
 * --hold: set the ring up, print "ready", and wait for SIGTERM without reading (the SQPOLL
 * thread stays).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct io_uring_params params = { 0 };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	int sqpoll = 0, hold = 0, fd, ret, i;
	char buf[256];

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--sqpoll"))
			sqpoll = 1;
		else if (!strcmp(argv[i], "--hold"))
			hold = 1;
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: uring-read [--sqpoll] [--hold] FILE\n");
		return 2;
	}
	fd = open(argv[i], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "uring-read: cannot open %s: %s\n", argv[i], strerror(errno));
		return 1;
	}
	if (sqpoll) {
		params.flags = IORING_SETUP_SQPOLL;
		params.sq_thread_idle = 60000;	/* ms: the thread stays while the case looks at it */
	}
	ret = io_uring_queue_init_params(4, &ring, &params);
	if (ret < 0) {
		fprintf(stderr, "uring-read: io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	if (hold) {
		sigset_t set;
		int sig;

		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		printf("ready\n");
		fflush(stdout);
		sigwait(&set, &sig);
		io_uring_queue_exit(&ring);
		return 0;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, fd, buf, sizeof(buf) - 1, 0);
	sqe->flags |= IOSQE_ASYNC;
	ret = io_uring_submit(&ring);
	if (ret != 1) {
		fprintf(stderr, "uring-read: io_uring_submit: %s\n", strerror(-ret));
		return 1;
	}
	ret = io_uring_wait_cqe(&ring, &cqe);
	if (ret < 0) {
		fprintf(stderr, "uring-read: io_uring_wait_cqe: %s\n", strerror(-ret));
		return 1;
	}
	if (cqe->res < 0) {
		fprintf(stderr, "uring-read: read: %s\n", strerror(-cqe->res));
		return 1;
	}
	buf[cqe->res] = '\0';
	fputs(buf, stdout);
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	return 0;
}
