/* helperproc.h: a process nspawn-cage leaves beside a cage (the ssh-agent
 * relay of forward.c, the egress process of egress.c). It keeps only the
 * descriptors it is given, runs as the cage's user with no new privileges,
 * watches the cage's leader (a pidfd) to end with it, and does nothing until
 * nspawn-cage has put it into its scope and released it. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "user.h"

/* Fork it. In the parent: 1, with the child's pid and the write end of its
 * go pipe. In the child, once released: 0, with fds[i] at descriptor 3 + i
 * (/dev/null where fds[i] is -1), the leader's pidfd at 3 + n, nothing
 * else open but standard input, output and error on /dev/null; in a
 * session of its own, signals as a new program has them (SIGPIPE ignored),
 * named comm, running as u. What fails in the child ends it (exit 1). */
int helper_proc_fork(const HostUser *u, pid_t leader, const int *fds, size_t n, const char *comm, pid_t *ret_pid, int *ret_go_fd);

/* Let it run: it is in its scope now. */
int helper_proc_release(int *go_fd);

/* Forked, never released (a start that failed): end it, so that it does
 * not outlive the start. Nothing if it was released (*go_fd < 0). */
void helper_proc_abandon(pid_t pid, int *go_fd);
