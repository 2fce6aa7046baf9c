/* pathfd.c: the one way nspawn-cage resolves a path it acts on (see
 * pathfd.h): openat2() beneath a directory fd, following no link, with a
 * component-by-component O_NOFOLLOW walk where the kernel has no openat2(). */
#include "autoconfig.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "pathfd.h"

int path_open_nofollow_walk(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
        if (resolve & ~(uint64_t) (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV))
                return -ENOSYS;
        if (isempty(path))
                return -ENOENT;
        if (path[0] == '/' && (resolve & RESOLVE_BENEATH))
                return -EXDEV;
        _cleanup_free_ char *buf = strdup(path);
        if (!buf)
                return -ENOMEM;
        _cleanup_close_ int cur = openat(dirfd, path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct stat top;
        if (cur < 0 || fstat(cur, &top) < 0)
                return -errno;
        /* Drop trailing slashes and empty or "." components: what is left is
         * a list of names, the last one opened with the caller's flags. */
        char *names[PATH_MAX / 2];
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
                if (streq(t, "."))
                        continue;
                if (streq(t, ".."))
                        return -EXDEV; /* never needed by nspawn-cage; refused rather than checked */
                if (n >= ELEMENTSOF(names))
                        return -ENAMETOOLONG;
                names[n++] = t;
        }
        if (n == 0) {
                int fd = openat(cur, ".", (int) flags | O_CLOEXEC);
                return fd < 0 ? -errno : fd;
        }
        for (size_t i = 0; i < n; i++) {
                bool last = i + 1 == n;
                int fd = openat(cur, names[i], last ? ((int) flags | O_NOFOLLOW | O_CLOEXEC) : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (fd < 0) {
                        int saved = errno;
                        struct stat st;
                        /* O_DIRECTORY|O_NOFOLLOW says ENOTDIR of a link: name it as openat2 does. */
                        if ((saved == ENOTDIR || saved == ELOOP) && fstatat(cur, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                                return -ELOOP;
                        return -saved;
                }
                struct stat st;
                int saved = fstat(fd, &st) < 0 ? errno : S_ISLNK(st.st_mode) ? ELOOP
                          : (resolve & RESOLVE_NO_XDEV) && st.st_dev != top.st_dev ? EXDEV : 0;
                /* O_PATH|O_NOFOLLOW hands out a link itself. */
                if (saved) {
                        close(fd);
                        return -saved;
                }
                close(cur);
                cur = fd;
        }
        return TAKE_FD(cur);
}

int path_open_nofollow(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
        struct open_how how = { .flags = flags | O_CLOEXEC | O_NOFOLLOW, .resolve = resolve | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        int fd = (int) syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd < 0 && errno == ENOSYS)
                return path_open_nofollow_walk(dirfd, path, flags, resolve);
        return fd < 0 ? -errno : fd;
}

int path_open_last_nofollow(int dirfd, const char *path, uint64_t flags) {
        struct open_how how = { .flags = flags | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_NO_MAGICLINKS };
        int fd = (int) syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd < 0 && errno == ENOSYS) /* before Linux 5.6 (and under valgrind): O_NOFOLLOW does the same for the last name */
                fd = openat(dirfd, path, (int) how.flags);
        return fd < 0 ? -errno : fd;
}
