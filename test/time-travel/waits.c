/*
 * waits.c
 *	  Preloaded ahead of libfaketime by test/programs/time-travel: select,
 *	  poll, epoll_wait, epoll_pwait and nanosleep go straight to the kernel.
 *
 * libfaketime wraps these waits and reports the REAL time to anything that
 * runs while a process is inside one: signal handlers.  PostgreSQL 15's
 * postmaster starts background workers (and the checkpointer, the
 * autovacuum launcher, ...) from its signal handlers while it sits in
 * select(), so those children would inherit "report the real time" for good,
 * and a backend's timeout handlers (statement_timeout, lock_timeout,
 * deadlock_timeout) would compare the real time with a fake deadline and
 * never fire.  Bypassing the wrappers keeps every process on the fake clock
 * (the waits themselves use real durations, which is what we want: the test
 * never changes the clock's speed).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int
select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	struct timespec ts, *tsp = NULL;

	if (tv)
	{
		ts.tv_sec = tv->tv_sec;
		ts.tv_nsec = tv->tv_usec * 1000;
		tsp = &ts;
	}
	return (int) syscall(SYS_pselect6, nfds, r, w, e, tsp, NULL);
}

int
epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	return (int) syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, NULL, (size_t) 8);
}

int
epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *sigmask)
{
	return (int) syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, sigmask, (size_t) 8);
}

int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct timespec ts, *tsp = NULL;

	if (timeout >= 0)
	{
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long) (timeout % 1000) * 1000000;
		tsp = &ts;
	}
	return (int) syscall(SYS_ppoll, fds, nfds, tsp, NULL, (size_t) 8);
}

int
nanosleep(const struct timespec *req, struct timespec *rem)
{
	return (int) syscall(SYS_nanosleep, req, rem);
}
