/* user.h: the invoking user (who ran sudo, or the caller) and acting with
 * that user's file system identity while opening their files, so root's
 * rights never reach a path the user or the agent chose. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef struct HostUser {
        char *name;
        uid_t uid;
        gid_t gid;
        char *home;
} HostUser;

void host_user_done(HostUser *u);
int host_user_copy(const HostUser *from, HostUser *to);
/* Look a user up by uid in the host's user database. */
int host_user_from_uid(uid_t uid, HostUser *ret);

/* Saved identity to restore after user_fs_enter(). */
typedef struct FsIdentity {
        bool active;
        uid_t fsuid;
        gid_t fsgid;
        gid_t *groups;
        int n_groups;
} FsIdentity;

/* When running as root for another user: switch fsuid/fsgid and the
 * supplementary groups to the user's. A no-op when already that user. */
int user_fs_enter(const HostUser *u, FsIdentity *saved);
void user_fs_leave(FsIdentity *saved);
