/* rootfs.h: the root file system of a cage as a plan (a list of entries:
 * directories, symlinks, rendered files, binds) that can be printed and
 * tested without root, then applied into a fresh directory. */
#pragma once

#include <sys/types.h>

#include "spec.h"

typedef enum RootfsEntryType {
        ROOTFS_DIR,          /* a directory */
        ROOTFS_SYMLINK,      /* path -> target */
        ROOTFS_FILE,         /* path holds `contents` */
        ROOTFS_COPY,         /* path gets a copy of the host file `target`, if any */
        ROOTFS_RESOLVERS,    /* path gets the usable name servers of the first of the host files
                              * `target` (colon-separated) that names one (network_resolv_conf) */
        ROOTFS_LINK_ENTRIES, /* each entry of `target` gets a symlink in path, unless present */
        ROOTFS_CA_BUNDLE,    /* path gets the host file `target` (the closure's bundle, if any) followed
                              * by each host file named on a line of `contents` (the administrator's) */
        ROOTFS_BIND_RO,      /* mount point; nspawn binds the host path read-only */
        ROOTFS_BIND_RW,      /* mount point; nspawn binds the host path read-write */
        _ROOTFS_ENTRY_TYPE_MAX,
        _ROOTFS_ENTRY_TYPE_INVALID = -EINVAL,
} RootfsEntryType;

typedef struct RootfsEntry {
        RootfsEntryType type;
        char *path;   /* inside the cage */
        char *target; /* symlink target, copy source, entries directory, bind source */
        char *contents;
        mode_t mode;
        bool user_owned; /* owned by the invoking user rather than root */
} RootfsEntry;

typedef struct RootfsPlan {
        RootfsEntry *entries;
        size_t n_entries;
        uid_t uid;
        gid_t gid;
} RootfsPlan;

const char *rootfs_entry_type_to_string(RootfsEntryType t);
RootfsEntryType rootfs_entry_type_from_string(const char *s);

void rootfs_plan_done(RootfsPlan *p);
int rootfs_plan_build(const CageSpec *s, RootfsPlan *ret);
/* One line an entry, in the order they are applied. */
int rootfs_plan_format(const RootfsPlan *p, const char *user_name, char **ret_text);

/* Create the plan's entries below `rootfd` (an empty directory). Store
 * paths and link-entries sources are read from the host's /nix/store (as
 * root: they are the closure, already validated). Binds become mount
 * points: nspawn mounts them. Every name is resolved beneath rootfd along
 * no link (the top-level's root/ entries are links made here): a link
 * where a directory is needed is -ELOOP. On failure *ret_path names the
 * entry. */
int rootfs_apply(const RootfsPlan *p, int rootfd, char **ret_path);
