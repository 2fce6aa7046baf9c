/* binds.c: opening, checking and staging a Bind=/BindReadOnly= source from
 * one fd. The path prefixes spec.c refuses hold for what is opened here
 * because no link is followed on the way; owner and type are checked on the
 * fd itself. */
#include "autoconfig.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#include "binds.h"
#include "idmap.h"

static const char *open_reason(int r) {
        switch (r) {
        case -ELOOP:
                return "a symbolic link is on its path, and nspawn-cage follows none there; name the real path";
        case -ENOENT:
                return "it does not exist; create it or remove the bind";
        case -EACCES:
                return "permission denied: you cannot reach it; bind only what you can read";
        case -EXDEV:
                return "its path leaves the host's root; name a plain absolute path";
        case -ENOTDIR:
                return "a component of its path is not a directory";
        default:
                return NULL;
        }
}

int bind_source_check(const struct stat *st, const BindSpec *b, uid_t uid, const char **ret_reason) {
        if (b->origin.layer == LAYER_ADMIN)
                return 0;
        if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode)) {
                *ret_reason = "it is neither a directory nor a regular file (a device, socket or FIFO); a user configuration may bind "
                              "only those; ask the administrator";
                return -EPERM;
        }
        if (!b->read_only && st->st_uid != uid) {
                *ret_reason = "it is not yours; a writable bind must be a directory or file you own; use BindReadOnly= or bind a copy";
                return -EPERM;
        }
        return 0;
}

int bind_source_open(int root_fd, const BindSpec *b, const HostUser *user, int *ret_fd, const char **ret_reason) {
        *ret_reason = NULL;
        if (!b->source || b->source[0] != '/' || !b->source[1])
                return -EINVAL;
        FsIdentity id = {};
        int r;
        if (b->origin.layer != LAYER_ADMIN && (r = user_fs_enter(user, &id)) < 0) {
                user_fs_leave(&id);
                *ret_reason = "cannot take your file system identity";
                return r;
        }
        struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        /* Relative: RESOLVE_BENEATH refuses absolute paths. */
        _cleanup_close_ int fd = (int) syscall(SYS_openat2, root_fd, b->source + 1, &how, sizeof how);
        r = fd < 0 ? -errno : 0;
        user_fs_leave(&id);
        if (r < 0) {
                *ret_reason = open_reason(r);
                return r;
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        /* O_PATH|O_NOFOLLOW hands out the link itself when it is the last component. */
        if (S_ISLNK(st.st_mode)) {
                *ret_reason = open_reason(-ELOOP);
                return -ELOOP;
        }
        if ((r = bind_source_check(&st, b, user->uid, ret_reason)) < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int bind_stage(int fd, const BindSpec *b, const HostUser *user, uid_t base) {
        if (!b->staged)
                return -EINVAL;
        int r = b->no_idmap ? -EOPNOTSUPP : idmap_mount_project(fd, user->uid, user->gid, base, b->staged);
        if (r == -EINVAL && !b->no_idmap)
                r = -EOPNOTSUPP; /* what mount_setattr() says of a file system without idmapped mounts */
        if (r >= 0 || !b->read_only || (r != -EOPNOTSUPP && r != -ENOSYS && r != -EPERM))
                return r;
        /* Read-only: the files keep their ids, seen as nobody in the cage
         * unless they fall into its range; nothing can be written. */
        return idmap_mount(fd, -1, b->staged, IDMAP_MOUNT_READ_ONLY);
}
