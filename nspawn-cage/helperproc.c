/* helperproc.c: a process beside a cage, forked as root, run as the user
 * (helperproc.h). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helperproc.h"
#include "util.h"

/* The child: its descriptors in place, then the user, then the go byte. */
static int child_setup(const HostUser *u, int pidfd, int go, const int *fds, size_t n, const char *comm) {
        int null = open("/dev/null", O_RDWR);
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                return -1;
        /* Above every target first, so that no dup2() below overwrites a
         * descriptor still to be moved. */
        int src[n + 2];
        for (size_t i = 0; i < n; i++)
                src[i] = fds[i] >= 0 ? fds[i] : null;
        src[n] = pidfd;
        src[n + 1] = go;
        for (size_t i = 0; i < n + 2; i++)
                if ((src[i] = fcntl(src[i], F_DUPFD, (int) (n + 100))) < 0)
                        return -1;
        for (size_t i = 0; i < n + 2; i++)
                if (dup2(src[i], (int) (3 + i)) < 0)
                        return -1;
        if (syscall(SYS_close_range, (unsigned) (3 + n + 2), ~0U, 0U) < 0)
                return -1;
        (void) setsid();
        /* systemd stops the scope with SIGTERM: nothing nspawn-cage blocked
         * or ignored is inherited. */
        sigset_t none;
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGTERM, SIG_DFL);
        (void) signal(SIGALRM, SIG_DFL);
        (void) signal(SIGCHLD, SIG_DFL);
        (void) signal(SIGPIPE, SIG_IGN);
        (void) prctl(PR_SET_NAME, comm);
        if (initgroups(u->name, u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0 ||
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -1;
        /* Nothing is done before nspawn-cage has put us into our scope: EOF
         * instead of the byte means it could not. */
        int go_fd = (int) (3 + n + 1);
        char c;
        ssize_t k;
        while ((k = read(go_fd, &c, 1)) < 0 && errno == EINTR)
                ;
        if (k != 1)
                return -1;
        close(go_fd);
        return 0;
}

int helper_proc_fork(const HostUser *u, pid_t leader, const int *fds, size_t n, const char *comm, pid_t *ret_pid, int *ret_go_fd) {
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, leader, 0);
        if (pidfd < 0)
                return -errno;
        int go[2];
        if (pipe2(go, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(go[0]);
                close(go[1]);
                return r;
        }
        if (pid == 0) {
                /* Every descriptor the caller knew is moved or closed now. */
                if (child_setup(u, TAKE_FD(pidfd), go[0], fds, n, comm) < 0)
                        _exit(1);
                return 0;
        }
        close(go[0]);
        *ret_pid = pid;
        *ret_go_fd = go[1];
        return 1;
}

int helper_proc_release(int *go_fd) {
        if (*go_fd < 0)
                return 0;
        ssize_t n = write(*go_fd, "g", 1);
        close(*go_fd);
        *go_fd = -1;
        return n == 1 ? 0 : -EIO;
}

void helper_proc_abandon(pid_t pid, int *go_fd) {
        if (*go_fd < 0)
                return;
        close(*go_fd);
        *go_fd = -1;
        (void) kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}
