/* forward.c: forwarding the user's ssh-agent and git configuration into a
 * cage (see forward.h). Only what the user named is bound: the one agent
 * socket, never ~/.ssh; the git configuration read-only. */
#include "autoconfig.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include "forward.h"
#include "helperproc.h"
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
        helper_proc_abandon(f->relay_pid, &f->relay_go_fd);
        *f = FORWARD_NULL;
}

int forward_open_ssh_agent(const HostUser *u, const char *sock, Forward *f, CageError *error) {
        if (isempty(sock))
                return cage_error_set(error, -ENXIO, "SSH_AUTH_SOCK is not set: start ssh-agent, and let sudo keep the variable "
                            "(sudo --preserve-env=SSH_AUTH_SOCK, or 'Defaults env_keep += SSH_AUTH_SOCK' in sudoers)");
        if (sock[0] != '/' || string_has_cc(sock))
                return cage_error_set(error, -EINVAL, "SSH_AUTH_SOCK=%s: expected the absolute path of the agent's socket", sock);
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = path_open_nofollow(AT_FDCWD, sock, O_PATH, 0);
        user_fs_leave(&id);
        if (fd < 0)
                return cage_error_set(error, fd, "SSH_AUTH_SOCK=%s %s; is your ssh-agent running?", sock, stage_open_reason(fd));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return cage_error_set(error, -ENOTSOCK, "SSH_AUTH_SOCK=%s is not a socket", sock);
        if (st.st_uid != u->uid)
                return cage_error_set(error, -EPERM, "SSH_AUTH_SOCK=%s belongs to uid %u, not to you (%s); only your own agent is forwarded",
                            sock, (unsigned) st.st_uid, u->name);
        if (f->ssh_fd >= 0)
                close(f->ssh_fd);
        f->ssh_fd = TAKE_FD(fd);
        return 0;
}

/* home/rel as the user: absent is fine (-ENOENT, nothing opened). */
static int open_git_file(const HostUser *u, int home_fd, const char *rel, bool directory, int *ret_fd, CageError *error) {
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        int fd = path_open_nofollow(home_fd, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK | (directory ? O_DIRECTORY : 0), RESOLVE_BENEATH);
        user_fs_leave(&id);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return cage_error_set(error, fd, "GitConfig=yes: %s/%s %s%s", u->home, rel, stage_open_reason(fd),
                            fd == -ELOOP ? " (or bind the file it points to with BindReadOnly=)" : "");
        _cleanup_close_ int owned = fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!directory && !S_ISREG(st.st_mode))
                return cage_error_set(error, -EBADFD, "GitConfig=yes: %s/%s is not a regular file", u->home, rel);
        if (st.st_uid != u->uid)
                return cage_error_set(error, -EPERM, "GitConfig=yes: %s/%s belongs to uid %u, not to you (%s)", u->home, rel,
                            (unsigned) st.st_uid, u->name);
        *ret_fd = TAKE_FD(owned);
        return 0;
}

int forward_open_git(const HostUser *u, Forward *f, CageError *error) {
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
                return cage_error_set(error, saved, "GitConfig=yes: your home %s %s", u->home, stage_open_reason(saved));
        if ((r = open_git_file(u, home, ".gitconfig", false, &f->gitconfig_fd, error)) < 0)
                return r;
        return open_git_file(u, home, ".config/git", true, &f->gitdir_fd, error);
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

int forward_stage(Forward *f, int cage_fd, const char *cage_dir, CageSpec *s, CageError *error) {
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
                        return cage_error_set(error, r, "SSHAgent=yes: making the cage's agent socket %s/ssh-agent: %s", dir, strerror(-r));
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

/* What the cage may hold open at once, and what is buffered per direction:
 * the relay's memory and file descriptors do not grow with what the agent
 * does. More connections are accepted and closed at once. */
#define RELAY_MAX_PAIRS 16
#define RELAY_BUFFER 16384

typedef struct RelayPair {
        int fd[2];                  /* 0: the cage's connection, 1: ours to the user's agent; -1: free slot */
        char buf[2][RELAY_BUFFER]; /* buf[i]: read from fd[i], not yet written to fd[1 - i] */
        size_t off[2], len[2];
        bool hup[2];                /* fd[i] hung up while buf[i] was full: not polled until it drains */
} RelayPair;

static void pair_close(RelayPair *p) {
        for (int i = 0; i < 2; i++)
                if (p->fd[i] >= 0)
                        close(p->fd[i]);
        *p = (RelayPair) { .fd = { -1, -1 } };
}

/* A new connection to the user's agent (fd 4, O_PATH), non-blocking: a
 * busy agent refuses (EAGAIN) rather than stalling every other pair. */
static int connect_agent(void) {
        int a = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof sun.sun_path, "/proc/self/fd/4");
        if (a < 0 || connect(a, (struct sockaddr *) &sun, sizeof sun) == 0)
                return a;
        close(a);
        return -1;
}

/* Move what fd[i] has into buf[i], or buf[i] on to fd[1 - i]. -1 when the
 * pair is over: a side closed or failed (as before, one side's end ends both). */
static int pair_read(RelayPair *p, int i) {
        ssize_t n = read(p->fd[i], p->buf[i], sizeof p->buf[i]);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0)
                return -1;
        p->off[i] = 0;
        p->len[i] = (size_t) n;
        return 0;
}

static int pair_write(RelayPair *p, int i) {
        ssize_t n = send(p->fd[1 - i], p->buf[i] + p->off[i], p->len[i], MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0)
                return -1;
        p->off[i] += (size_t) n;
        p->len[i] -= (size_t) n;
        return 0;
}

static void relay_refused_once(const char *cage, bool *logged) {
        if (*logged)
                return;
        *logged = true;
        sd_journal_print(LOG_WARNING, "nspawn-cage: cage %s holds %d connections to the ssh-agent relay: further ones are closed "
                         "until one ends (logged once)", cage, RELAY_MAX_PAIRS);
}

/* One process, one poll loop, whatever the cage does: fds 3 the cage's
 * listening socket, 4 the user's agent (O_PATH), 5 the leader's pidfd. */
_Noreturn static void relay_loop(const char *cage) {
        static RelayPair pairs[RELAY_MAX_PAIRS];
        struct pollfd p[2 + 2 * RELAY_MAX_PAIRS];
        bool logged = false;
        for (size_t k = 0; k < RELAY_MAX_PAIRS; k++)
                pairs[k].fd[0] = pairs[k].fd[1] = -1;
        for (;;) {
                p[0] = (struct pollfd) { .fd = 3, .events = POLLIN };
                p[1] = (struct pollfd) { .fd = 5, .events = POLLIN };
                for (size_t k = 0; k < RELAY_MAX_PAIRS; k++)
                        for (int i = 0; i < 2; i++) {
                                RelayPair *q = &pairs[k];
                                short ev = (q->len[i] == 0 ? POLLIN : 0) | (q->len[1 - i] > 0 ? POLLOUT : 0);
                                bool polled = q->fd[i] >= 0 && !(q->hup[i] && q->len[i] > 0);
                                p[2 + 2 * k + i] = (struct pollfd) { .fd = polled ? q->fd[i] : -1, .events = ev };
                        }
                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                if (p[1].revents)
                        _exit(0); /* the cage's leader is gone */
                for (size_t k = 0; k < RELAY_MAX_PAIRS; k++)
                        for (int i = 0; i < 2; i++) {
                                RelayPair *q = &pairs[k];
                                short re = p[2 + 2 * k + i].revents;
                                if (q->fd[i] < 0 || !re)
                                        continue;
                                if ((re & POLLOUT) && q->len[1 - i] > 0 && pair_write(q, 1 - i) < 0)
                                        pair_close(q);
                                else if (q->len[i] == 0 && (re & (POLLIN | POLLHUP | POLLERR)) && pair_read(q, i) < 0)
                                        pair_close(q);
                                else if (re & (POLLHUP | POLLERR))
                                        /* Gone, with what it sent still on its way to the other side:
                                         * deliver that first (it is polled again once buf[i] is empty,
                                         * and then its end ends the pair). */
                                        q->hup[i] = true;
                        }
                if (!(p[0].revents & POLLIN))
                        continue;
                int c = accept4(3, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0)
                        continue;
                RelayPair *free_pair = NULL;
                for (size_t k = 0; k < RELAY_MAX_PAIRS && !free_pair; k++)
                        if (pairs[k].fd[0] < 0)
                                free_pair = &pairs[k];
                int a = free_pair ? connect_agent() : -1;
                if (!free_pair)
                        relay_refused_once(cage, &logged);
                if (a < 0) {
                        close(c);
                        continue;
                }
                free_pair->fd[0] = c;
                free_pair->fd[1] = a;
        }
}

int forward_fork_relay(Forward *f, const HostUser *u, const char *cage, pid_t leader) {
        if (f->ssh_listen_fd < 0)
                return 0;
        /* 3 the cage's listening socket, 4 the user's agent (O_PATH), 5 the
         * leader's pidfd: as relay_loop() wants them. */
        int fds[] = { f->ssh_listen_fd, f->ssh_fd };
        int r = helper_proc_fork(u, leader, fds, ELEMENTSOF(fds), "nspawn-cage-ssh", &f->relay_pid, &f->relay_go_fd);
        if (r == 0)
                relay_loop(cage);
        if (r > 0) {
                close(f->ssh_listen_fd);
                f->ssh_listen_fd = -1;
        }
        return r < 0 ? r : 0;
}

int forward_release_relay(Forward *f) {
        return helper_proc_release(&f->relay_go_fd);
}
