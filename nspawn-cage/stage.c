/* stage.c: bind mounts of verified fds into the cage's state directory, the
 * only form in which a user's file reaches systemd-nspawn's Bind= lines
 * (see stage.h). Moved here from display.c when forward.c needed the same. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "idmap.h"
#include "stage.h"

const char *stage_open_reason(int r) {
        switch (r) {
        case -ELOOP: return "is or passes through a symbolic link; give the real path";
        case -ENOENT: return "does not exist";
        case -EACCES: return "cannot be read with your rights";
        case -ENOTDIR: return "is not a directory";
        default: return strerror(-r);
        }
}

static int bind_fd_onto(int dirfd, const char *name, int source_fd, bool directory) {
        _cleanup_close_ int mp = -1;
        if (directory) {
                if (mkdirat(dirfd, name, 0700) < 0)
                        return -errno;
                mp = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else
                mp = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (mp < 0)
                return -errno;
        char src[64], dst[64], top[PATH_MAX];
        snprintf(src, sizeof src, "/proc/self/fd/%d", source_fd);
        snprintf(dst, sizeof dst, "/proc/self/fd/%d", mp);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return -errno;
        /* Private: the cage's copy then lives on after the host's is
         * detached, and no unmount propagates into the cage. (`mp` is the
         * file below the mount; the name reaches the mount.) */
        snprintf(top, sizeof top, "/proc/self/fd/%d/%s", dirfd, name);
        if (mount(NULL, top, NULL, MS_PRIVATE, NULL) < 0)
                return -errno;
        return 0;
}

int stage_user_fd(int dirfd, const char *dir, const char *name, int source_fd, const CageSpec *s, bool *ret_idmapped) {
        struct stat st;
        if (fstat(source_fd, &st) < 0)
                return -errno;
        _cleanup_free_ char *staging = strdup_printf("%s/%s", dir, name);
        if (!staging)
                return -ENOMEM;
        int r = idmap_mount_project(source_fd, s->user.uid, s->user.gid, s->uid_base, staging);
        if (r >= 0 || (r != -EOPNOTSUPP && r != -ENOSYS && r != -EPERM)) {
                if (r >= 0 && ret_idmapped)
                        *ret_idmapped = true;
                return r;
        }
        (void) unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
        if ((r = bind_fd_onto(dirfd, name, source_fd, S_ISDIR(st.st_mode))) < 0)
                return r;
        if (ret_idmapped)
                *ret_idmapped = false;
        return 0;
}

int stage_add_bind(CageSpec *s, char *source, const char *destination, bool read_only) {
        BindSpec *b = cage_spec_add_bind(s, source, strdup(destination));
        if (!b)
                return -ENOMEM;
        /* Staged binds are sockets, device nodes, nspawn-cage's own staging
         * or read-only files: bound as they are. */
        b->read_only = read_only;
        b->as_is = true;
        return 0;
}

int stage_unmount_dir(int cage_fd, const char *subdir) {
        _cleanup_close_ int dirfd = openat(cage_fd, subdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dirfd < 0)
                return errno == ENOENT ? 0 : -errno;
        _cleanup_close_ int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d)
                return -errno;
        fd = -1;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                char path[PATH_MAX];
                snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, e->d_name);
                /* Stacked mounts come off one by one; EINVAL: not a mount. */
                for (int i = 0; i < 16 && umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0; i++)
                        ;
        }
        closedir(d);
        return 0;
}

int stage_read_environment(int cage_fd, const char *path, char ***ret) {
        _cleanup_close_ int fd = openat(cage_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        *ret = NULL;
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        int r = config_read_fd(fd, &data, &size);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **l = NULL;
        for (char *line = data, *nl; *line; line = nl + 1) {
                nl = strchr(line, '\n');
                if (!nl)
                        break;
                *nl = 0;
                if (*line && (r = strv_extend(&l, line)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
