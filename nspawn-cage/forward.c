/* forward.c: forwarding the user's ssh-agent and git configuration into a
 * cage (see forward.h). Only what the user named is bound: the one agent
 * socket, never ~/.ssh; the git configuration read-only. */
#include "autoconfig.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "forward.h"
#include "stage.h"

void forward_done(Forward *f) {
        if (f->ssh_fd >= 0)
                close(f->ssh_fd);
        if (f->ssh_listen_fd >= 0)
                close(f->ssh_listen_fd);
        if (f->gitconfig_fd >= 0)
                close(f->gitconfig_fd);
        if (f->gitdir_fd >= 0)
                close(f->gitdir_fd);
        *f = FORWARD_NULL;
}

int forward_open_ssh_agent(const HostUser *u, const char *sock, Forward *f, char **ret_error) {
        if (isempty(sock))
                return error_printf(ret_error, -ENXIO, "SSH_AUTH_SOCK is not set: start ssh-agent, and let sudo keep the variable "
                            "(sudo --preserve-env=SSH_AUTH_SOCK, or 'Defaults env_keep += SSH_AUTH_SOCK' in sudoers)");
        if (sock[0] != '/' || string_has_cc(sock))
                return error_printf(ret_error, -EINVAL, "SSH_AUTH_SOCK=%s: expected the absolute path of the agent's socket", sock);
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = stage_open_nofollow(AT_FDCWD, sock, O_PATH, 0);
        user_fs_leave(&id);
        if (fd < 0)
                return error_printf(ret_error, fd, "SSH_AUTH_SOCK=%s %s; is your ssh-agent running?", sock, stage_open_reason(fd));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return error_printf(ret_error, -ENOTSOCK, "SSH_AUTH_SOCK=%s is not a socket", sock);
        if (st.st_uid != u->uid)
                return error_printf(ret_error, -EPERM, "SSH_AUTH_SOCK=%s belongs to uid %u, not to you (%s); only your own agent is forwarded",
                            sock, (unsigned) st.st_uid, u->name);
        if (f->ssh_fd >= 0)
                close(f->ssh_fd);
        f->ssh_fd = TAKE_FD(fd);
        return 0;
}

/* home/rel as the user: absent is fine (-ENOENT, nothing opened). */
static int open_git_file(const HostUser *u, int home_fd, const char *rel, bool directory, int *ret_fd, char **ret_error) {
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        int fd = stage_open_nofollow(home_fd, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK | (directory ? O_DIRECTORY : 0), RESOLVE_BENEATH);
        user_fs_leave(&id);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return error_printf(ret_error, fd, "GitConfig=yes: %s/%s %s%s", u->home, rel, stage_open_reason(fd),
                            fd == -ELOOP ? " (or bind the file it points to with BindReadOnly=)" : "");
        _cleanup_close_ int owned = fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!directory && !S_ISREG(st.st_mode))
                return error_printf(ret_error, -EBADFD, "GitConfig=yes: %s/%s is not a regular file", u->home, rel);
        if (st.st_uid != u->uid)
                return error_printf(ret_error, -EPERM, "GitConfig=yes: %s/%s belongs to uid %u, not to you (%s)", u->home, rel,
                            (unsigned) st.st_uid, u->name);
        *ret_fd = TAKE_FD(owned);
        return 0;
}

int forward_open_git(const HostUser *u, Forward *f, char **ret_error) {
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        /* The home directory itself as the user (a symlinked /home is the
         * system's choice); nothing below it is followed. */
        _cleanup_close_ int home = open(u->home, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int saved = -errno;
        user_fs_leave(&id);
        if (home < 0)
                return error_printf(ret_error, saved, "GitConfig=yes: your home %s %s", u->home, stage_open_reason(saved));
        if ((r = open_git_file(u, home, ".gitconfig", false, &f->gitconfig_fd, ret_error)) < 0)
                return r;
        return open_git_file(u, home, ".config/git", true, &f->gitdir_fd, ret_error);
}

/* The cage's end of the ssh-agent relay: made by root in the root-only
 * forward/ directory, connectable by anyone who reaches it (only the cage,
 * through its bind). Bound through /proc/self/fd: the path may be longer
 * than sun_path. */
static int make_listen_socket(int dirfd, int *ret_fd) {
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/ssh-agent", dirfd);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || fchmodat(dirfd, "ssh-agent", 0666, 0) < 0 || listen(fd, 16) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int forward_stage(Forward *f, int cage_fd, const char *cage_dir, CageSpec *s, char **ret_error) {
        int r;
        if (f->ssh_fd < 0 && f->gitconfig_fd < 0 && f->gitdir_fd < 0)
                return 0;
        if (mkdirat(cage_fd, "forward", 0700) < 0)
                return -errno;
        _cleanup_close_ int dfd = openat(cage_fd, "forward", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *dir = strdup_printf("%s/forward", cage_dir);
        if (dfd < 0)
                return -errno;
        if (!dir)
                return -ENOMEM;
        _cleanup_(strbuf_done) StrBuf env = {};
        if (f->ssh_fd >= 0) {
                if ((r = make_listen_socket(dfd, &f->ssh_listen_fd)) < 0)
                        return error_printf(ret_error, r, "SSHAgent=yes: making the cage's agent socket %s/ssh-agent: %s", dir, strerror(-r));
                if ((r = stage_add_bind(s, strdup_printf("%s/ssh-agent", dir), FORWARD_SSH_AGENT_PATH, false)) < 0)
                        return r;
                strbuf_append(&env, "SSH_AUTH_SOCK=" FORWARD_SSH_AGENT_PATH "\n");
        }
        static const struct { const char *name, *rel; } git[] = { { "gitconfig", ".gitconfig" }, { "git", ".config/git" } };
        const int fds[] = { f->gitconfig_fd, f->gitdir_fd };
        for (size_t i = 0; i < ELEMENTSOF(git); i++) {
                if (fds[i] < 0)
                        continue;
                _cleanup_free_ char *inside = strdup_printf("%s/%s", s->user.home, git[i].rel);
                if (!inside)
                        return -ENOMEM;
                if ((r = stage_user_fd(dfd, dir, git[i].name, fds[i], s, NULL)) < 0 ||
                    (r = stage_add_bind(s, strdup_printf("%s/%s", dir, git[i].name), inside, true)) < 0)
                        return r;
        }
        _cleanup_free_ char *text = NULL;
        if ((r = strbuf_steal(&env, &text)) < 0)
                return r;
        return write_file_atomic_at(dfd, "environment", text, 0600);
}

int forward_unstage(int cage_fd) {
        return stage_unmount_dir(cage_fd, "forward");
}

int forward_read_environment(int cage_fd, char ***ret) {
        return stage_read_environment(cage_fd, "forward/environment", ret);
}

/* ---- the relay ---- */

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Copy both ways until either side closes. */
static void relay_pair(int a, int b) {
        char buf[16384];
        struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                for (int i = 0; i < 2; i++) {
                        if (!p[i].revents)
                                continue;
                        ssize_t n = read(p[i].fd, buf, sizeof buf);
                        if (n <= 0 || write_all(p[1 - i].fd, buf, (size_t) n) < 0)
                                return;
                }
        }
}

_Noreturn static void relay_main(const HostUser *u) {
        /* fds: 3 the cage's listening socket, 4 the user's agent (O_PATH), 5 the leader's pidfd. */
        struct sigaction sa = { .sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT };
        (void) sigaction(SIGCHLD, &sa, NULL);
        (void) prctl(PR_SET_NAME, "nspawn-cage-ssh");
        if (initgroups(u->name, u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0)
                _exit(1);
        struct pollfd p[2] = { { .fd = 3, .events = POLLIN }, { .fd = 5, .events = POLLIN } };
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                if (p[1].revents)
                        _exit(0); /* the cage's leader is gone */
                if (!p[0].revents)
                        continue;
                int c = accept4(3, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        continue;
                pid_t pid = fork();
                if (pid == 0) {
                        close(3);
                        close(5);
                        int a = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        struct sockaddr_un sun = { .sun_family = AF_UNIX };
                        snprintf(sun.sun_path, sizeof sun.sun_path, "/proc/self/fd/4");
                        if (a >= 0 && connect(a, (struct sockaddr *) &sun, sizeof sun) == 0)
                                relay_pair(c, a);
                        _exit(0);
                }
                close(c);
        }
}

int forward_start_relay(Forward *f, const HostUser *u, pid_t leader) {
        if (f->ssh_listen_fd < 0)
                return 0;
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, leader, 0);
        if (pidfd < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid > 0) {
                close(f->ssh_listen_fd);
                f->ssh_listen_fd = -1;
                return 0;
        }
        /* Only what the relay needs survives: not the cage's lock, not the bus. */
        int l = fcntl(f->ssh_listen_fd, F_DUPFD, 10), s = fcntl(f->ssh_fd, F_DUPFD, 10), pf = fcntl(pidfd, F_DUPFD, 10);
        int null = open("/dev/null", O_RDWR);
        if (l < 0 || s < 0 || pf < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
            dup2(l, 3) < 0 || dup2(s, 4) < 0 || dup2(pf, 5) < 0)
                _exit(1);
        if (syscall(SYS_close_range, 6U, ~0U, 0U) < 0)
                _exit(1);
        (void) setsid();
        relay_main(u);
}
