/* forward.c: forwarding the user's ssh-agent and git configuration into a
 * cage (see forward.h). Only what the user named is bound: the one agent
 * socket, never ~/.ssh; the git configuration read-only. */
#include "autoconfig.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "forward.h"
#include "stage.h"

void forward_done(Forward *f) {
        if (f->ssh_fd >= 0)
                close(f->ssh_fd);
        if (f->gitconfig_fd >= 0)
                close(f->gitconfig_fd);
        if (f->gitdir_fd >= 0)
                close(f->gitdir_fd);
        *f = FORWARD_NULL;
}

_printf_(3, 4) static int fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;
        free(*ret_error);
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return r;
}

static const char *open_reason(int r) {
        switch (r) {
        case -ELOOP: return "is or passes through a symbolic link; give the real path";
        case -ENOENT: return "does not exist";
        case -EACCES: return "cannot be reached with your rights";
        case -ENOTDIR: return "is not a directory";
        default: return strerror(-r);
        }
}

int forward_open_ssh_agent(const HostUser *u, const char *sock, Forward *f, char **ret_error) {
        if (isempty(sock))
                return fail(ret_error, -ENXIO, "SSH_AUTH_SOCK is not set: start ssh-agent, and let sudo keep the variable "
                            "(sudo --preserve-env=SSH_AUTH_SOCK, or 'Defaults env_keep += SSH_AUTH_SOCK' in sudoers)");
        if (sock[0] != '/' || string_has_cc(sock))
                return fail(ret_error, -EINVAL, "SSH_AUTH_SOCK=%s: expected the absolute path of the agent's socket", sock);
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = stage_open_nofollow(AT_FDCWD, sock, O_PATH, 0);
        user_fs_leave(&id);
        if (fd < 0)
                return fail(ret_error, fd, "SSH_AUTH_SOCK=%s %s; is your ssh-agent running?", sock, open_reason(fd));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return fail(ret_error, -ENOTSOCK, "SSH_AUTH_SOCK=%s is not a socket", sock);
        if (st.st_uid != u->uid)
                return fail(ret_error, -EPERM, "SSH_AUTH_SOCK=%s belongs to uid %u, not to you (%s); only your own agent is forwarded",
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
                return fail(ret_error, fd, "GitConfig=yes: %s/%s %s%s", u->home, rel, open_reason(fd),
                            fd == -ELOOP ? " (or bind the file it points to with BindReadOnly=)" : "");
        _cleanup_close_ int owned = fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!directory && !S_ISREG(st.st_mode))
                return fail(ret_error, -EBADFD, "GitConfig=yes: %s/%s is not a regular file", u->home, rel);
        if (st.st_uid != u->uid)
                return fail(ret_error, -EPERM, "GitConfig=yes: %s/%s belongs to uid %u, not to you (%s)", u->home, rel,
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
                return fail(ret_error, saved, "GitConfig=yes: your home %s %s", u->home, open_reason(saved));
        if ((r = open_git_file(u, home, ".gitconfig", false, &f->gitconfig_fd, ret_error)) < 0)
                return r;
        return open_git_file(u, home, ".config/git", true, &f->gitdir_fd, ret_error);
}

int forward_stage(const Forward *f, int cage_fd, const char *cage_dir, CageSpec *s, char **ret_error) {
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
                struct stat st;
                bool idmapped = false;
                if (fstat(f->ssh_fd, &st) < 0)
                        return -errno;
                if ((r = stage_user_fd(dfd, dir, "ssh-agent", f->ssh_fd, s, &idmapped)) < 0)
                        return r;
                /* Connecting needs write access to the socket: as it is, the
                 * agent (not your uid on the host) has none. */
                if (!idmapped && !(st.st_mode & S_IWOTH))
                        return fail(ret_error, -EOPNOTSUPP, "SSHAgent=yes: the file system of your SSH_AUTH_SOCK does not support "
                                    "idmapped mounts, so the agent in the cage could not connect to it; start ssh-agent with "
                                    "'-a /run/user/%u/ssh-agent.socket' (a tmpfs) and point SSH_AUTH_SOCK there", (unsigned) s->user.uid);
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
