/* display.c: X11, Wayland and GPU forwarding. Paths the user names (DISPLAY,
 * XAUTHORITY, WAYLAND_DISPLAY) are resolved with the user's file system
 * identity and without following any symbolic link; what systemd-nspawn
 * binds later is a root-owned mount of the very file that was verified. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#include "display.h"
#include "idmap.h"
#include "stage.h"
#include "tools.h"

#define XAUTH_FILE_MAX (1024 * 1024)
#define XAUTH_TIMEOUT_MSEC 15000
#define FAMILY_LOCAL 256
#define FAMILY_WILD 65535
#define DRM_MAJOR 226
static const char cookie_name[] = "MIT-MAGIC-COOKIE-1";

void display_done(Display *d) {
        if (d->x11_socket_fd >= 0)
                close(d->x11_socket_fd);
        if (d->wayland_socket_fd >= 0)
                close(d->wayland_socket_fd);
        if (d->cookie)
                explicit_bzero(d->cookie, d->cookie_size);
        free(d->cookie);
        free(d->wayland_name);
        strv_free(d->gpu_nodes);
        *d = DISPLAY_NULL;
}

int display_parse_x11(const char *display, unsigned *ret_number) {
        const char *p;
        if (!display)
                return -EINVAL;
        if (!(p = startswith(display, "unix:")) && !(p = startswith(display, ":")))
                return -EINVAL;
        if (*p < '0' || *p > '9')
                return -EINVAL;
        unsigned n = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
                n = n * 10 + (unsigned) (*p - '0');
                if (n > 9999)
                        return -ERANGE;
        }
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        if (*p)
                return -EINVAL;
        *ret_number = n;
        return 0;
}

bool display_wayland_name_is_valid(const char *name) {
        return !isempty(name) && strlen(name) < 100 && !strchr(name, '/') && !streq(name, ".") && !streq(name, "..") &&
               !string_has_cc(name);
}

/* ---- Xauthority files ---- */

static bool read_counted(const unsigned char **p, const unsigned char *end, const unsigned char **ret, size_t *ret_len) {
        if (end - *p < 2)
                return false;
        size_t l = ((size_t) (*p)[0] << 8) | (*p)[1];
        *p += 2;
        if ((size_t) (end - *p) < l)
                return false;
        *ret = *p;
        *ret_len = l;
        *p += l;
        return true;
}

int xauth_find_cookie(const char *data, size_t size, unsigned number, const char *hostname, bool any_host,
                      char **ret_cookie, size_t *ret_size) {
        const unsigned char *p = (const unsigned char *) data, *end = p + size;
        char num[16];
        snprintf(num, sizeof num, "%u", number);
        while (p < end) {
                const unsigned char *addr, *nr, *name, *cookie;
                size_t la, ln, lname, lc;
                if (end - p < 2)
                        return -EBADMSG;
                unsigned family = ((unsigned) p[0] << 8) | p[1];
                p += 2;
                if (!read_counted(&p, end, &addr, &la) || !read_counted(&p, end, &nr, &ln) ||
                    !read_counted(&p, end, &name, &lname) || !read_counted(&p, end, &cookie, &lc))
                        return -EBADMSG;
                bool host_ok = any_host || family == FAMILY_WILD ||
                               (family == FAMILY_LOCAL && hostname && la == strlen(hostname) && memcmp(addr, hostname, la) == 0);
                if (!host_ok || ln != strlen(num) || memcmp(nr, num, ln) != 0 || lname != strlen(cookie_name) ||
                    memcmp(name, cookie_name, lname) != 0 || lc == 0)
                        continue;
                char *c = malloc(lc);
                if (!c)
                        return -ENOMEM;
                memcpy(c, cookie, lc);
                *ret_cookie = c;
                *ret_size = lc;
                return 0;
        }
        return -ENOENT;
}

int xauth_render_wild(unsigned number, const char *cookie, size_t cookie_size, char **ret, size_t *ret_size) {
        char num[16];
        size_t ln = (size_t) snprintf(num, sizeof num, "%u", number), lname = strlen(cookie_name);
        if (cookie_size == 0 || cookie_size > 0xffff)
                return -EINVAL;
        size_t total = 2 + 2 + 2 + ln + 2 + lname + 2 + cookie_size;
        unsigned char *b = malloc(total), *p = b;
        if (!b)
                return -ENOMEM;
        *p++ = FAMILY_WILD >> 8;
        *p++ = FAMILY_WILD & 0xff;
        *p++ = 0; /* no address: any host */
        *p++ = 0;
        *p++ = 0;
        *p++ = (unsigned char) ln;
        memcpy(p, num, ln);
        p += ln;
        *p++ = 0;
        *p++ = (unsigned char) lname;
        memcpy(p, cookie_name, lname);
        p += lname;
        *p++ = (unsigned char) (cookie_size >> 8);
        *p++ = (unsigned char) (cookie_size & 0xff);
        memcpy(p, cookie, cookie_size);
        *ret = (char *) b;
        *ret_size = total;
        return 0;
}

/* ---- opening the user's files ---- */

static int open_x11_socket(const HostUser *u, unsigned number, int *ret_fd, CageError *error) {
        _cleanup_close_ int dfd = path_open_nofollow(AT_FDCWD, "/tmp/.X11-unix", O_PATH | O_DIRECTORY, 0);
        struct stat st;
        if (dfd < 0)
                return cage_error_set(error, dfd, "DISPLAY=:%u: /tmp/.X11-unix %s; is an X server running?", number, stage_open_reason(dfd));
        if (fstat(dfd, &st) < 0)
                return -errno;
        if (st.st_uid != 0 || !(st.st_mode & S_ISVTX))
                return cage_error_set(error, -EPERM, "DISPLAY=:%u: /tmp/.X11-unix is not a root-owned sticky directory; refusing to trust its sockets", number);
        char name[16];
        snprintf(name, sizeof name, "X%u", number);
        _cleanup_close_ int fd = path_open_nofollow(dfd, name, O_PATH, RESOLVE_BENEATH);
        if (fd < 0)
                return cage_error_set(error, fd, "DISPLAY=:%u: /tmp/.X11-unix/%s %s; is the display running?", number, name, stage_open_reason(fd));
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return cage_error_set(error, -ENOTSOCK, "DISPLAY=:%u: /tmp/.X11-unix/%s is not a socket", number, name);
        if (st.st_uid != u->uid && st.st_uid != 0)
                return cage_error_set(error, -EPERM, "DISPLAY=:%u: /tmp/.X11-unix/%s belongs to uid %u, not to you (%s) or root; it is not your display",
                            number, name, (unsigned) st.st_uid, u->name);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int open_wayland_socket(const HostUser *u, const DisplayEnv *env, char **ret_name, int *ret_fd, CageError *error) {
        _cleanup_free_ char *runtime = strdup_printf("/run/user/%u", (unsigned) u->uid);
        const char *name = env->wayland_display ? env->wayland_display : "wayland-0";
        struct stat st;
        if (!runtime)
                return -ENOMEM;
        if (env->xdg_runtime_dir && !streq(env->xdg_runtime_dir, runtime))
                return cage_error_set(error, -EPERM, "XDG_RUNTIME_DIR=%s is not your runtime directory %s; only your own compositor can be forwarded",
                            env->xdg_runtime_dir, runtime);
        if (!display_wayland_name_is_valid(name))
                return cage_error_set(error, -EINVAL, "WAYLAND_DISPLAY=%s: expected the name of a socket in %s (such as wayland-0), not a path",
                            name, runtime);
        _cleanup_close_ int dfd = path_open_nofollow(AT_FDCWD, runtime, O_PATH | O_DIRECTORY, 0);
        if (dfd < 0)
                return cage_error_set(error, dfd, "XDG_RUNTIME_DIR %s %s; are you logged in to a graphical session?", runtime, stage_open_reason(dfd));
        if (fstat(dfd, &st) < 0)
                return -errno;
        if (st.st_uid != u->uid)
                return cage_error_set(error, -EPERM, "%s is owned by uid %u, not by you (%s)", runtime, (unsigned) st.st_uid, u->name);
        _cleanup_close_ int fd = path_open_nofollow(dfd, name, O_PATH, RESOLVE_BENEATH);
        if (fd < 0)
                return cage_error_set(error, fd, "WAYLAND_DISPLAY=%s: %s/%s %s; is the compositor running? (pass WAYLAND_DISPLAY through sudo with --preserve-env=WAYLAND_DISPLAY)",
                            name, runtime, name, stage_open_reason(fd));
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return cage_error_set(error, -ENOTSOCK, "WAYLAND_DISPLAY=%s: %s/%s is not a socket", name, runtime, name);
        if (st.st_uid != u->uid)
                return cage_error_set(error, -EPERM, "WAYLAND_DISPLAY=%s: %s/%s belongs to uid %u, not to you (%s)",
                            name, runtime, name, (unsigned) st.st_uid, u->name);
        if (!(*ret_name = strdup(name)))
                return -ENOMEM;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The user's Xauthority, opened as the user; the file must not be a link. */
static int open_xauthority(const HostUser *u, const DisplayEnv *env, int *ret_fd, CageError *error) {
        _cleanup_free_ char *def = strdup_printf("%s/.Xauthority", u->home);
        const char *path = env->xauthority ? env->xauthority : def;
        struct stat st;
        if (!def)
                return -ENOMEM;
        if (path[0] != '/')
                return cage_error_set(error, -EINVAL, "XAUTHORITY=%s: expected an absolute path", path);
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        /* As the user, so a link in the directories (a symlinked /home) is
         * followed with the user's rights only; the file itself is no link. */
        _cleanup_close_ int fd = openat(AT_FDCWD, path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        int saved = -errno;
        user_fs_leave(&id);
        if (fd < 0)
                return cage_error_set(error, saved, "XAUTHORITY=%s %s", path, stage_open_reason(saved));
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return cage_error_set(error, -EBADFD, "XAUTHORITY=%s is not a regular file", path);
        if (st.st_uid != u->uid)
                return cage_error_set(error, -EPERM, "XAUTHORITY=%s belongs to uid %u, not to you (%s)", path, (unsigned) st.st_uid, u->name);
        if (st.st_size > XAUTH_FILE_MAX)
                return cage_error_set(error, -EFBIG, "XAUTHORITY=%s is larger than 1 MiB", path);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int become_user(const HostUser *u) {
        if (geteuid() != 0)
                return 0;
        if (initgroups(u->name, u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0)
                return -errno;
        return 0;
}

static void write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

/* The child side of xauth_generate: runs as the user in a private directory
 * of theirs, writes 'C' + the generated file or 'E' + the reason to `out`. */
_Noreturn static void generate_child(const HostUser *u, int xauth_fd, unsigned number, int out) {
        char tmpl[] = "/tmp/nspawn-cage-xauth.XXXXXX", err[512];
        _cleanup_free_ char *runtime = strdup_printf("/run/user/%u/nspawn-cage-xauth.XXXXXX", (unsigned) u->uid);
        (void) setpgid(0, 0);
        if (become_user(u) < 0) {
                write_all(out, "Ecannot take the user's identity", 32);
                _exit(1);
        }
        /* The user's tmpfs runtime directory if there is one: the cookie
         * never reaches a disk. */
        char *dir = runtime && mkdtemp(runtime) ? runtime : mkdtemp(tmpl);
        if (!dir) {
                write_all(out, "Ecannot make a private temporary directory", 42);
                _exit(1);
        }
        _cleanup_free_ char *file = strdup_printf("%s/cookie", dir), *errfile = strdup_printf("%s/errors", dir);
        _cleanup_free_ char *disp = strdup_printf("DISPLAY=:%u", number), *xa = strdup_printf("XAUTHORITY=/proc/self/fd/%d", xauth_fd);
        _cleanup_free_ char *dname = strdup_printf(":%u", number), *home = strdup_printf("HOME=%s", u->home);
        if (!file || !errfile || !disp || !xa || !dname || !home)
                _exit(1);
        pid_t pid = fork();
        if (pid == 0) {
                int efd = open(errfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                int nfd = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (efd < 0 || nfd < 0 || dup2(nfd, 0) < 0 || dup2(nfd, 1) < 0 || dup2(efd, 2) < 0)
                        _exit(127);
                int fl = fcntl(xauth_fd, F_GETFD);
                (void) fcntl(xauth_fd, F_SETFD, fl & ~FD_CLOEXEC);
                char *argv[] = { "xauth", "-q", "-f", file, "generate", dname, ".", "untrusted", "timeout", "0", NULL };
                char *envp[] = { disp, xa, home, "PATH=/usr/bin:/bin", "LANG=C", NULL };
                _cleanup_free_ char *exe = NULL;
                int r = tool_find(TOOL_XAUTH, &exe);
                if (r >= 0)
                        execve(exe, argv, envp), r = -errno;
                dprintf(2, "cannot run %s (nspawn-cage was built with --with-xauth=%s): %s\n", tool_configured_path(TOOL_XAUTH),
                        tool_configured_path(TOOL_XAUTH), strerror(-r));
                _exit(127);
        }
        int status = 0;
        while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        _cleanup_close_ int cfd = -1, efd = open(errfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ssize_t ne = efd >= 0 ? read(efd, err, sizeof err - 1) : 0;
        err[ne > 0 ? ne : 0] = 0;
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
            (cfd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0 && read_fd_bounded(cfd, XAUTH_FILE_MAX, &data, &size) >= 0) {
                write_all(out, "C", 1);
                write_all(out, data, size);
                explicit_bzero(data, size);
        } else {
                write_all(out, "E", 1);
                write_all(out, err[0] ? err : "xauth failed", strlen(err[0] ? err : "xauth failed"));
        }
        (void) unlink(file);
        (void) unlink(errfile);
        char lock[PATH_MAX];
        snprintf(lock, sizeof lock, "%s-c", file), (void) unlink(lock);
        snprintf(lock, sizeof lock, "%s-l", file), (void) unlink(lock);
        (void) rmdir(dir);
        _exit(0);
}

/* Ask the X server, as the user and with the user's cookie, for a new
 * untrusted authorization (X SECURITY extension): clients using it cannot
 * read other clients' windows or input. */
int xauth_generate(const HostUser *u, int xauth_fd, unsigned number, char **ret, size_t *ret_size, CageError *error) {
        int p[2];
        pid_t pid;
        int rf = fork_with_pipe(p, &pid);
        if (rf < 0)
                return rf;
        if (pid == 0) {
                close(p[0]);
                generate_child(u, xauth_fd, number, p[1]);
        }
        close(p[1]);
        _cleanup_close_ int in = p[0];
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 0;
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        int r = 0;
        for (;;) {
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                long left = XAUTH_TIMEOUT_MSEC - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
                struct pollfd pfd = { .fd = in, .events = POLLIN };
                if (left <= 0 || poll(&pfd, 1, (int) left) == 0) {
                        r = cage_error_set(error, -ETIMEDOUT, "xauth did not answer within %d s; is the X server of DISPLAY=:%u responsive?",
                                 XAUTH_TIMEOUT_MSEC / 1000, number);
                        (void) kill(-pid, SIGKILL);
                        (void) kill(pid, SIGKILL);
                        break;
                }
                if (cap - n < 4096) {
                        if (cap > XAUTH_FILE_MAX) {
                                r = -EFBIG;
                                break;
                        }
                        char *t = realloc(buf, cap + 65536);
                        if (!t) {
                                r = -ENOMEM;
                                break;
                        }
                        buf = t;
                        cap += 65536;
                }
                ssize_t k = read(in, buf + n, cap - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        if (n == 0 || buf[0] != 'C') {
                size_t l = n > 1 ? n - 1 : 0;
                while (l > 0 && (buf[l] == '\n' || buf[l] == ' '))
                        l--;
                return cage_error_set(error, -EIO,
                            "DISPLAY=:%u: xauth could not make an untrusted cookie (%.*s); the X server needs the SECURITY extension, "
                            "or set X11Trusted=yes in your user configuration to forward your own cookie",
                            number, (int) l, n > 1 ? buf + 1 : "no answer");
        }
        _cleanup_free_ char *cookie = NULL;
        size_t cs = 0;
        r = xauth_find_cookie(buf + 1, n - 1, number, NULL, true, &cookie, &cs);
        explicit_bzero(buf, n);
        if (r < 0)
                return cage_error_set(error, r, "DISPLAY=:%u: xauth made no MIT-MAGIC-COOKIE-1 entry", number);
        r = xauth_render_wild(number, cookie, cs, ret, ret_size);
        explicit_bzero(cookie, cs);
        return r;
}

static int xauth_trusted(int xauth_fd, unsigned number, const char *hostname, char **ret, size_t *ret_size, CageError *error) {
        _cleanup_free_ char *data = NULL, *cookie = NULL;
        size_t size = 0, cs = 0;
        int r = read_fd_bounded(xauth_fd, XAUTH_FILE_MAX, &data, &size);
        if (r < 0)
                return cage_error_set(error, r, "reading XAUTHORITY: %s", strerror(-r));
        r = xauth_find_cookie(data, size, number, hostname, false, &cookie, &cs);
        explicit_bzero(data, size);
        if (r == -EBADMSG)
                return cage_error_set(error, r, "XAUTHORITY is not an Xauthority file");
        if (r < 0)
                return cage_error_set(error, r, "XAUTHORITY holds no MIT-MAGIC-COOKIE-1 for display :%u of host %s", number, strempty(hostname));
        r = xauth_render_wild(number, cookie, cs, ret, ret_size);
        explicit_bzero(cookie, cs);
        return r;
}

static int find_gpu_nodes(char ***ret, CageError *error) {
        _cleanup_close_ int dfd = path_open_nofollow(AT_FDCWD, "/dev/dri", O_RDONLY | O_DIRECTORY, 0);
        if (dfd < 0)
                return cage_error_set(error, dfd, "GPU=yes: /dev/dri %s; this host has no GPU device nodes", stage_open_reason(dfd));
        DIR *d = fdopendir(dfd);
        if (!d)
                return -errno;
        dfd = -1;
        _cleanup_strv_free_ char **l = NULL;
        struct dirent *e;
        int r = 0;
        while (r >= 0 && (e = readdir(d))) {
                struct stat st;
                if ((!startswith(e->d_name, "card") && !startswith(e->d_name, "renderD")) ||
                    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != DRM_MAJOR)
                        continue;
                r = strv_push(&l, strdup_printf("/dev/dri/%s", e->d_name));
        }
        closedir(d);
        if (r < 0)
                return r;
        if (!l)
                return cage_error_set(error, -ENODEV, "GPU=yes: /dev/dri holds no card or render node");
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

int display_open(const CageSpec *s, const DisplayEnv *env, bool trusted, Display *ret, CageError *error) {
        _cleanup_(display_done) Display d = DISPLAY_NULL;
        const HostUser *u = &s->user;
        FsIdentity id;
        int r;
        d.x11 = s->x11;
        d.wayland = s->wayland;
        d.gpu = s->gpu;
        if (d.x11) {
                if (!env->display)
                        return cage_error_set(error, -ENXIO, "X11=yes, but DISPLAY is not set; run from your X session (sudo keeps DISPLAY and XAUTHORITY)");
                if (display_parse_x11(env->display, &d.x11_number) < 0)
                        return cage_error_set(error, -EINVAL, "DISPLAY=%s: only a local display (:N) can be forwarded", env->display);
                if ((r = user_fs_enter(u, &id)) < 0)
                        return r;
                r = open_x11_socket(u, d.x11_number, &d.x11_socket_fd, error);
                user_fs_leave(&id);
                if (r < 0)
                        return r;
                _cleanup_close_ int xfd = -1;
                if ((r = open_xauthority(u, env, &xfd, error)) < 0)
                        return r;
                r = trusted ? xauth_trusted(xfd, d.x11_number, env->hostname, &d.cookie, &d.cookie_size, error)
                            : xauth_generate(u, xfd, d.x11_number, &d.cookie, &d.cookie_size, error);
                if (r < 0)
                        return r;
        }
        if (d.wayland) {
                if ((r = user_fs_enter(u, &id)) < 0)
                        return r;
                r = open_wayland_socket(u, env, &d.wayland_name, &d.wayland_socket_fd, error);
                user_fs_leave(&id);
                if (r < 0)
                        return r;
        }
        if (d.gpu && (r = find_gpu_nodes(&d.gpu_nodes, error)) < 0)
                return r;
        *ret = d;
        d = DISPLAY_NULL;
        return 0;
}

/* ---- staging ---- */

/* A socket of the user's, bound so that the agent may connect (stage.h):
 * as it is only where its file system has no idmapped mounts, and then its
 * mode must let others connect, as X11's sockets do. */
static int stage_socket(int dirfd, const char *dir, const char *name, int source_fd, const CageSpec *s) {
        return stage_user_fd(dirfd, dir, name, source_fd, s, NULL);
}

/* The agent's XDG_RUNTIME_DIR: made and filled as root in a root-only
 * directory, then given to the agent's ids: nothing the user controls is
 * ever followed. Bound into the cage at runtime. */
static int stage_runtime_dir(const Display *d, int dfd, const char *cage_dir, const char *runtime, uid_t agent_uid, gid_t agent_gid,
                             CageSpec *s) {
        int r;
        if (mkdirat(dfd, "run", 0700) < 0)
                return -errno;
        _cleanup_close_ int rfd = openat(dfd, "run", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rfd < 0)
                return -errno;
        if (d->wayland) {
                /* The mount point of the socket's own bind below. */
                _cleanup_close_ int mp = openat(rfd, d->wayland_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (mp < 0)
                        return -errno;
        }
        if (d->x11) {
                _cleanup_close_ int cfd = openat(rfd, "Xauthority", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (cfd < 0)
                        return -errno;
                size_t n = 0;
                while (n < d->cookie_size) {
                        ssize_t k = write(cfd, d->cookie + n, d->cookie_size - n);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                return k < 0 ? -errno : -EIO;
                        n += (size_t) k;
                }
                if (fchown(cfd, agent_uid, agent_gid) < 0)
                        return -errno;
        }
        if (fchown(rfd, agent_uid, agent_gid) < 0)
                return -errno;
        if ((r = stage_add_bind(s, strdup_printf("%s/display/run", cage_dir), runtime, false)) < 0)
                return r;
        return 0;
}

int display_stage(const Display *d, int cage_fd, const char *cage_dir, CageSpec *s) {
        const HostUser *u = &s->user;
        int r;
        if (!d->x11 && !d->wayland && !d->gpu)
                return 0;
        if (mkdirat(cage_fd, "display", 0700) < 0)
                return -errno;
        _cleanup_close_ int dfd = openat(cage_fd, "display", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        _cleanup_free_ char *runtime = strdup_printf("/run/user/%u", (unsigned) u->uid);
        if (!runtime)
                return -ENOMEM;
        /* The agent's ids as the host sees them: shifted into the cage's range. */
        uid_t agent_uid = s->uid_base + u->uid;
        gid_t agent_gid = (gid_t) s->uid_base + u->gid;
        _cleanup_(strbuf_done) StrBuf env = {};
        if (d->x11 || d->wayland) {
                if ((r = stage_runtime_dir(d, dfd, cage_dir, runtime, agent_uid, agent_gid, s)) < 0)
                        return r;
                strbuf_appendf(&env, "XDG_RUNTIME_DIR=%s\n", runtime);
        }
        /* Each socket is a bind of its own: systemd-nspawn's binds of
         * directories do not carry the mounts below them. */
        if (d->wayland) {
                _cleanup_free_ char *inside = strdup_printf("%s/%s", runtime, d->wayland_name);
                _cleanup_close_ int wfd = -1;
                if (!inside)
                        return -ENOMEM;
                if (mkdirat(dfd, "wayland", 0700) < 0 ||
                    (wfd = openat(dfd, "wayland", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                        return -errno;
                _cleanup_free_ char *wdir = strdup_printf("%s/display/wayland", cage_dir);
                if (!wdir)
                        return -ENOMEM;
                if ((r = stage_socket(wfd, wdir, d->wayland_name, d->wayland_socket_fd, s)) < 0 ||
                    (r = stage_add_bind(s, strdup_printf("%s/display/wayland/%s", cage_dir, d->wayland_name), inside, false)) < 0)
                        return r;
        }
        if (d->x11) {
                char name[16], inside[48];
                _cleanup_close_ int xfd = -1;
                snprintf(name, sizeof name, "X%u", d->x11_number);
                snprintf(inside, sizeof inside, "/tmp/.X11-unix/%s", name);
                if (mkdirat(dfd, "x11", 0700) < 0 || (xfd = openat(dfd, "x11", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                        return -errno;
                _cleanup_free_ char *xdir = strdup_printf("%s/display/x11", cage_dir);
                if (!xdir)
                        return -ENOMEM;
                if ((r = stage_socket(xfd, xdir, name, d->x11_socket_fd, s)) < 0 ||
                    (r = stage_add_bind(s, strdup_printf("%s/display/x11/%s", cage_dir, name), inside, false)) < 0)
                        return r;
                strbuf_appendf(&env, "DISPLAY=:%u\nXAUTHORITY=%s/Xauthority\n", d->x11_number, runtime);
        }
        if (d->wayland)
                strbuf_appendf(&env, "WAYLAND_DISPLAY=%s\n", d->wayland_name);
        for (size_t i = 0; d->gpu_nodes && d->gpu_nodes[i]; i++)
                if ((r = stage_add_bind(s, strdup(d->gpu_nodes[i]), d->gpu_nodes[i], false)) < 0 ||
                    (r = strv_extend(&s->devices, d->gpu_nodes[i])) < 0)
                        return r;
        _cleanup_free_ char *text = NULL;
        if ((r = strbuf_steal(&env, &text)) < 0)
                return r;
        return write_file_atomic_at(dfd, "environment", text, 0600);
}

int display_unstage(int cage_fd) {
        int r = stage_unmount_dir(cage_fd, "display/wayland");
        int k = stage_unmount_dir(cage_fd, "display/x11");
        return r < 0 ? r : k;
}

int display_read_environment(int cage_fd, char ***ret) {
        return stage_read_environment(cage_fd, "display/environment", ret);
}
