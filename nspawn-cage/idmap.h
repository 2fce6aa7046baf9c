/* idmap.h: the cage's private user namespace, host side. A 64K uid range
 * for PrivateUsers= (picked and locked like systemd-nspawn's own `pick`), and
 * the project as an idmapped mount in which only the invoking user's id is
 * mapped, so nothing the cage does there lands on the host as anyone else. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* systemd's container range (docs/UIDS-GIDS.md): 64K-aligned bases from
 * 0x00080000 to 0x6FFF0000; nspawn --private-users=pick draws from it and
 * machined names the uids of running containers in it ("vu-NAME-UID"). */
#define IDMAP_RANGE_SIZE UINT32_C(0x10000)
#define IDMAP_BASE_MIN UINT32_C(0x00080000)
#define IDMAP_BASE_MAX UINT32_C(0x6FFF0000)
/* nspawn's lock files, one per base (decimal); shared so neither picks the
 * other's range while it is being set up. */
#define IDMAP_LOCK_DIR "/run/systemd/nspawn-uid"

/* Pick a free range for cage `name` below lock_dir (NULL: IDMAP_LOCK_DIR):
 * the first candidate is derived from the name, then the next bases in
 * turn. A candidate is taken when its lock file can be locked (OFD and
 * flock, exclusive), no NSS user or group names its first or last id, and
 * no process on the system has a user namespace mapping any id of it.
 * Returns the base and the locked fd (O_CLOEXEC); the lock protects the
 * range until the cage's processes exist: hold it at least until the unit
 * has started (see idmap.md). -EBUSY when nothing is free. */
int idmap_pick_range(const char *lock_dir, const char *name, uid_t *ret_base, int *ret_lock_fd);
/* The base idmap_pick_range tries first for name (what `render` shows). */
uid_t idmap_preferred_base(const char *name);
/* Remove the lock file of base (while still holding it) and close the fd. */
void idmap_release_range(const char *lock_dir, uid_t base, int lock_fd);
/* Remove lock_dir/BASE if nobody holds it and idmap_pick_range wrote it for
 * cage `name` (for any cage when name is NULL). 1 removed, 0 nothing there,
 * -EBUSY held, -ESRCH not ours (nspawn's own, or another cage's). */
int idmap_remove_lock(const char *lock_dir, uid_t base, const char *name);
/* idmap_remove_lock(NULL name) on every lock file of lock_dir: what killed
 * nspawn-cages left. */
int idmap_gc_locks(const char *lock_dir, unsigned *ret_removed);
/* Does any line of a /proc/PID/uid_map text map an outer id in
 * [base, base+size) to another id (identity lines shift nothing and are
 * ignored)? A pure function, for the pick and its tests. */
bool idmap_map_overlaps(const char *map_text, uint32_t base, uint32_t size);
/* Does any process's user namespace map an id of [base, base+size)? Reads
 * proc (NULL: "/proc"). 1 yes, 0 no, -errno. */
int idmap_range_used_by_processes(const char *proc, uint32_t base, uint32_t size);

/* A user namespace (held by an fd, no process in it) whose maps are exactly
 * "inner outer 1" for uids and "ginner gouter 1" for gids. As the userns of
 * an idmapped mount, on-disk id `inner` is seen by the kernel as `outer`
 * and `outer` writes as `inner`; every other id is unmapped (reads as the
 * overflow id, writes fail with EOVERFLOW). Needs CAP_SETUID/CAP_SETGID. */
int idmap_userns_fd(uid_t inner, uid_t outer, gid_t ginner, gid_t gouter, int *ret_fd);

typedef enum IdmapMountFlags {
        IDMAP_MOUNT_RECURSIVE = 1 << 0, /* clone and map submounts too (each must support idmapping) */
        IDMAP_MOUNT_READ_ONLY = 1 << 1, /* the clone is read-only; then userns_fd may be -1: no mapping */
} IdmapMountFlags;

/* Clone the mount at project_fd (a directory or file fd), idmap it with
 * userns_fd, make it nosuid, nodev and private, and attach it at staging (a
 * directory created 0700, or an empty file 0600, if missing). Atomic: on failure nothing is attached.
 * -EBUSY if something is mounted at staging already. With userns_fd -1 and
 * IDMAP_MOUNT_READ_ONLY: a plain read-only clone, for file systems without
 * idmapped mounts. */
int idmap_mount(int project_fd, int userns_fd, const char *staging, unsigned flags);
/* The usual case: on-disk uid:gid of the invoking user appear in a cage of
 * range `base` as the same ids, i.e. as kernel ids base+uid:base+gid.
 * -ERANGE when uid or gid do not fit into the cage's 64K range. */
int idmap_mount_project(int project_fd, uid_t uid, gid_t gid, uid_t base, const char *staging);
/* Detach whatever is mounted at staging (lazily, so an open file inside does
 * not block teardown). 0 also when nothing is mounted or staging is gone
 * (then without needing CAP_SYS_ADMIN). */
int idmap_umount(const char *staging);

/* Can an idmapped mount be made of the directory at path? Tried for real
 * on a detached clone that is thrown away. 0: yes. -ENOSYS: the kernel has
 * no idmapped mounts (before 5.12). -EOPNOTSUPP: the file system at path
 * does not support them. -EPERM: the mount is already idmapped (systemd-homed
 * homes on kernels before 6.15) or we lack privilege. Other -errno: path. */
int idmap_supported(const char *path);
/* The same for the mount an open fd (O_PATH will do) is on. */
int idmap_supported_fd(int fd);

/* The file system type ("overlay", "nfs4", ...) and mount point of path,
 * from /proc/self/mountinfo, for messages. */
int idmap_fs_of(const char *path, char **ret_fstype, char **ret_target);
