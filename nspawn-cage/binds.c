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

int bind_source_check(const struct stat *st, const BindSpec *b, uid_t uid, CageError *err) {
        if (b->origin.layer == LAYER_ADMIN)
                return 0;
        if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode))
                return cage_error_set(err, -EPERM, "it is neither a directory nor a regular file (a device, socket or FIFO); a user "
                                                   "configuration may bind only those; ask the administrator");
        if (!b->read_only && st->st_uid != uid)
                return cage_error_set(err, -EPERM, "it is not yours; a writable bind must be a directory or file you own; use "
                                                   "BindReadOnly= or bind a copy");
        return 0;
}

int bind_source_open(int root_fd, const BindSpec *b, const HostUser *user, int *ret_fd, CageError *err) {
        if (!b->source || b->source[0] != '/' || !b->source[1])
                return cage_error_set(err, -EINVAL, "%s", strerror(EINVAL));
        FsIdentity id = {};
        int r;
        if (b->origin.layer != LAYER_ADMIN && (r = user_fs_enter(user, &id)) < 0) {
                user_fs_leave(&id);
                return cage_error_set(err, r, "cannot take your file system identity");
        }
        /* Relative: RESOLVE_BENEATH refuses absolute paths. */
        _cleanup_close_ int fd = path_open_nofollow(root_fd, b->source + 1, O_PATH, RESOLVE_BENEATH);
        r = fd < 0 ? fd : 0;
        user_fs_leave(&id);
        if (r < 0)
                return cage_error_set(err, r, "%s", open_reason(r) ?: strerror(-r));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return cage_error_set(err, -errno, "%s", strerror(errno));
        /* O_PATH|O_NOFOLLOW hands out the link itself when it is the last component. */
        if (S_ISLNK(st.st_mode))
                return cage_error_set(err, -ELOOP, "%s", open_reason(-ELOOP));
        if ((r = bind_source_check(&st, b, user->uid, err)) < 0)
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
