/* user.c: looking up the invoking user and borrowing their file system
 * identity. setfsuid()/setfsgid() change only what file access checks use,
 * so the helper keeps root for what must be root (mounts, D-Bus) while
 * every user-chosen path is opened as the user. */
#include "autoconfig.h"

#include <grp.h>
#include <pwd.h>
#include <sys/fsuid.h>

#include "user.h"
#include "util.h"

void host_user_done(HostUser *u) {
        free(u->name);
        free(u->home);
        *u = (HostUser) {};
}

int host_user_copy(const HostUser *from, HostUser *to) {
        HostUser u = { .uid = from->uid, .gid = from->gid };
        u.name = strdup(from->name);
        u.home = strdup(from->home);
        if (!u.name || !u.home) {
                host_user_done(&u);
                return -ENOMEM;
        }
        *to = u;
        return 0;
}

int host_user_from_uid(uid_t uid, HostUser *ret) {
        errno = 0;
        struct passwd *pw = getpwuid(uid);
        if (!pw)
                return errno > 0 ? -errno : -ESRCH;
        HostUser u = { .uid = pw->pw_uid, .gid = pw->pw_gid };
        u.name = strdup(pw->pw_name);
        u.home = strdup(pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : "/");
        if (!u.name || !u.home) {
                host_user_done(&u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

int user_fs_enter(const HostUser *u, FsIdentity *saved) {
        *saved = (FsIdentity) {};
        if (geteuid() != 0 || u->uid == 0)
                return 0;
        int n = getgroups(0, NULL);
        if (n < 0)
                return -errno;
        saved->groups = calloc((size_t) n + 1, sizeof(gid_t));
        if (!saved->groups)
                return -ENOMEM;
        if ((saved->n_groups = getgroups(n, saved->groups)) < 0)
                return -errno;
        gid_t groups[256];
        int ng = (int) ELEMENTSOF(groups);
        if (getgrouplist(u->name, u->gid, groups, &ng) < 0)
                ng = 0; /* more than 256 groups: keep only the primary one */
        if (setgroups((size_t) ng, groups) < 0)
                return -errno;
        saved->fsgid = (gid_t) setfsgid(u->gid);
        saved->fsuid = (uid_t) setfsuid(u->uid);
        saved->active = true;
        /* setfsuid() reports no errors: verify it took. */
        if ((uid_t) setfsuid((uid_t) -1) != u->uid) {
                user_fs_leave(saved);
                return -EPERM;
        }
        return 0;
}

void user_fs_leave(FsIdentity *saved) {
        if (saved->active) {
                (void) setfsuid(saved->fsuid);
                (void) setfsgid(saved->fsgid);
                (void) setgroups((size_t) saved->n_groups, saved->groups);
        }
        free(saved->groups);
        *saved = (FsIdentity) {};
}
