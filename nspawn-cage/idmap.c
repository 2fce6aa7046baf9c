/* idmap.c: uid range picking and the project's idmapped mount, with the new
 * mount API as raw syscalls (glibc 2.36 has wrappers, older ones do not).
 * Why an own idmapped mount rather than nspawn's Bind=...:idmap: that one
 * maps host 0..65535 onto the whole cage, so cage root writes as host root;
 * ours maps the invoking user's id alone. See idmap.md. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/mount.h>
#include <libmount.h>

#include "idmap.h"
#include "util.h"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

static int sys_open_tree(int dfd, const char *path, unsigned flags) {
        return (int) syscall(SYS_open_tree, dfd, path, flags);
}

static int sys_mount_setattr(int dfd, const char *path, unsigned flags, struct mount_attr *attr) {
        return (int) syscall(SYS_mount_setattr, dfd, path, flags, attr, sizeof(*attr));
}

static int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags) {
        return (int) syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

static bool uid_is_ok(uint32_t u) {
        return u != UINT32_MAX; /* (uid_t) -1 means "no change" to chown() */
}

/* ---- ranges ---- */

bool idmap_map_overlaps(const char *map_text, uint32_t base, uint32_t size) {
        const char *p = map_text;
        uint64_t lo = base, hi = (uint64_t) base + size;
        while (p && *p) {
                unsigned long inner, outer, count;
                /* Identity lines (the initial namespace's "0 0 4294967295",
                 * or a namespace that shares host ids) shift nothing. */
                if (sscanf(p, "%lu %lu %lu", &inner, &outer, &count) == 3 && count > 0 && inner != outer &&
                    (uint64_t) outer < hi && (uint64_t) outer + count > lo)
                        return true;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return false;
}

static int read_small_file_at(int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size_t n = 0;
        while (n + 1 < size) {
                ssize_t l = read(fd, buf + n, size - 1 - n);
                if (l < 0)
                        return -errno;
                if (l == 0)
                        break;
                n += (size_t) l;
        }
        buf[n] = 0;
        return (int) n;
}

int idmap_range_used_by_processes(const char *proc, uint32_t base, uint32_t size) {
        _cleanup_close_ int pfd = open(proc ? proc : "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return -errno;
        int dfd = fcntl(pfd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        int found = 0;
        struct dirent *de;
        while (!found && (de = readdir(d))) {
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                /* uid_map and gid_map: a range is taken if either names it.
                 * Processes that vanish meanwhile are simply skipped. Seen
                 * from the initial namespace the outer column is host ids. */
                const char *files[] = { "uid_map", "gid_map" };
                for (size_t i = 0; i < ELEMENTSOF(files) && !found; i++) {
                        char path[sizeof(de->d_name) + 16], buf[4096];
                        snprintf(path, sizeof path, "%s/%s", de->d_name, files[i]);
                        if (read_small_file_at(pfd, path, buf, sizeof buf) > 0 && idmap_map_overlaps(buf, base, size))
                                found = 1;
                }
        }
        closedir(d);
        return found;
}

static uint32_t name_hash(const char *s) {
        uint32_t h = UINT32_C(2166136261); /* FNV-1a: stable across runs and builds */
        for (; s && *s; s++)
                h = (h ^ (uint8_t) *s) * UINT32_C(16777619);
        return h;
}

static bool nss_knows(uid_t base) {
        /* nspawn's own check: first and last usable id of the range. With
         * nss-systemd, machined answers for every running container. */
        return getpwuid(base) || getpwuid(base + 0xFFFE) || getgrgid((gid_t) base) || getgrgid((gid_t) base + 0xFFFE);
}

/* Lock lock_dir/BASE exclusively, without blocking, with both kinds of
 * whole-file lock: systemd takes open-file-description locks, which do not
 * conflict with flock(); holding both excludes either kind of holder. A
 * lock file unlinked by its previous holder between our open and our lock
 * is no lock at all: check it is still the one at that name. */
static int lock_base(int dirfd, uid_t base, int *ret_fd) {
        char name[16];
        snprintf(name, sizeof name, "%" PRIu32, (uint32_t) base);
        for (unsigned tries = 0; tries < 8; tries++) {
                _cleanup_close_ int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd < 0)
                        return -errno;
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
                if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
                        return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
                if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                        return errno == EWOULDBLOCK ? -EBUSY : -errno;
                struct stat a, b;
                if (fstat(fd, &a) < 0)
                        return -errno;
                if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino ||
                    a.st_nlink == 0)
                        continue;
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        return -EBUSY;
}

#define N_SLOTS ((IDMAP_BASE_MAX - IDMAP_BASE_MIN) / IDMAP_RANGE_SIZE + 1)

uid_t idmap_preferred_base(const char *name) {
        return (uid_t) (IDMAP_BASE_MIN + (name_hash(name) % N_SLOTS) * IDMAP_RANGE_SIZE);
}

int idmap_pick_range(const char *lock_dir, const char *name, uid_t *ret_base, int *ret_lock_fd) {
        const char *dir = lock_dir ? lock_dir : IDMAP_LOCK_DIR;
        const uint32_t n_slots = N_SLOTS;
        /* Enough to walk past any cluster of taken ranges, few enough that
         * a broken NSS or /proc cannot make us walk the whole range. */
        const uint32_t max_tries = 1024;
        int r;

        if (isempty(name))
                return -EINVAL;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return -errno;

        uint32_t first = name_hash(name) % n_slots;
        for (uint32_t i = 0; i < max_tries && i < n_slots; i++) {
                uid_t base = (uid_t) (IDMAP_BASE_MIN + ((first + i) % n_slots) * IDMAP_RANGE_SIZE);
                int fd = -1;
                r = lock_base(dfd, base, &fd);
                if (r == -EBUSY)
                        continue;
                if (r < 0)
                        return r;
                /* Checked under the lock: whoever held it until their
                 * processes existed is seen by one of these. */
                r = nss_knows(base) ? 1 : idmap_range_used_by_processes(NULL, base, IDMAP_RANGE_SIZE);
                if (r != 0) {
                        idmap_release_range(dir, base, fd); /* leave no file behind for a skipped base */
                        if (r < 0)
                                return r;
                        continue;
                }
                /* Say who holds it, for whoever looks at /run. */
                _cleanup_free_ char *who = strdup_printf("nspawn-cage %s\n", name);
                if (who && ftruncate(fd, 0) == 0)
                        (void) !write(fd, who, strlen(who));
                *ret_base = base;
                *ret_lock_fd = fd;
                return 0;
        }
        return -EBUSY;
}

void idmap_release_range(const char *lock_dir, uid_t base, int lock_fd) {
        if (lock_fd < 0)
                return;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%" PRIu32, lock_dir ? lock_dir : IDMAP_LOCK_DIR, (uint32_t) base);
        struct stat a, b;
        /* Unlink only our own file, while still holding it (as systemd does). */
        if (fstat(lock_fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                (void) unlink(path);
        close(lock_fd);
}

int idmap_remove_lock(const char *lock_dir, uid_t base, const char *name) {
        char fname[16], want[128], have[128];
        snprintf(fname, sizeof fname, "%" PRIu32, (uint32_t) base);
        _cleanup_close_ int dfd = open(lock_dir ? lock_dir : IDMAP_LOCK_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return errno == ENOENT ? 0 : -errno;
        _cleanup_close_ int fd = openat(dfd, fname, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        /* Held by anyone (the unit's stdin, nspawn, a picker): in use. */
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
                return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;
        /* Only ours: written by idmap_pick_range for this name (any
         * nspawn-cage name when name is NULL); nspawn's own stay. */
        ssize_t l = pread(fd, have, sizeof have - 1, 0);
        have[l > 0 ? l : 0] = 0;
        if (name)
                snprintf(want, sizeof want, "nspawn-cage %s\n", name);
        if (name ? !streq(have, want) : !startswith(have, "nspawn-cage "))
                return -ESRCH;
        struct stat a, b;
        if (fstat(fd, &a) < 0)
                return -errno;
        if (fstatat(dfd, fname, &b, AT_SYMLINK_NOFOLLOW) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                return 0; /* replaced meanwhile: not ours to remove */
        return unlinkat(dfd, fname, 0) < 0 ? -errno : 1;
}

int idmap_gc_locks(const char *lock_dir, unsigned *ret_removed) {
        const char *dir = lock_dir ? lock_dir : IDMAP_LOCK_DIR;
        unsigned n = 0;
        DIR *d = opendir(dir);
        if (!d) {
                *ret_removed = 0;
                return errno == ENOENT ? 0 : -errno;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                char *end;
                errno = 0;
                unsigned long base = strtoul(de->d_name, &end, 10);
                if (errno || *end || end == de->d_name || base > UINT32_MAX)
                        continue;
                if (idmap_remove_lock(dir, (uid_t) base, NULL) > 0)
                        n++;
        }
        closedir(d);
        *ret_removed = n;
        return 0;
}

/* ---- the user namespace of the mount ---- */

static int write_string_file(const char *path, const char *s) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ssize_t l = write(fd, s, strlen(s));
        if (l < 0)
                return -errno;
        return (size_t) l == strlen(s) ? 0 : -EIO;
}

int idmap_userns_fd(uid_t inner, uid_t outer, gid_t ginner, gid_t gouter, int *ret_fd) {
        int ready[2] = { -1, -1 }, done[2] = { -1, -1 };
        int r;

        if (!uid_is_ok(inner) || !uid_is_ok(outer) || !uid_is_ok(ginner) || !uid_is_ok(gouter))
                return -EINVAL;
        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(done, O_CLOEXEC) < 0) {
                r = -errno;
                close(ready[0]);
                close(ready[1]);
                return r;
        }
        /* A child that unshares a user namespace and waits: the namespace
         * lives on through /proc/PID/ns/user once we hold it. */
        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                goto finish;
        }
        if (pid == 0) {
                char c = 0;
                close(ready[0]);
                close(done[1]);
                if (unshare(CLONE_NEWUSER) < 0) {
                        c = (char) errno;
                        (void) !write(ready[1], &c, 1);
                        _exit(1);
                }
                (void) !write(ready[1], &c, 1);
                (void) !read(done[0], &c, 1); /* EOF when the parent is done */
                _exit(0);
        }
        close(ready[1]);
        ready[1] = -1;
        close(done[0]);
        done[0] = -1;

        char c;
        ssize_t l = read(ready[0], &c, 1);
        if (l != 1)
                r = l < 0 ? -errno : -EIO;
        else if (c != 0)
                r = -(int) (unsigned char) c;
        else {
                char path[64], map[64];
                snprintf(path, sizeof path, "/proc/%d/uid_map", (int) pid);
                snprintf(map, sizeof map, "%" PRIu32 " %" PRIu32 " 1\n", (uint32_t) inner, (uint32_t) outer);
                r = write_string_file(path, map);
                if (r >= 0) {
                        snprintf(path, sizeof path, "/proc/%d/gid_map", (int) pid);
                        snprintf(map, sizeof map, "%" PRIu32 " %" PRIu32 " 1\n", (uint32_t) ginner, (uint32_t) gouter);
                        r = write_string_file(path, map);
                }
                if (r >= 0) {
                        snprintf(path, sizeof path, "/proc/%d/ns/user", (int) pid);
                        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                        if (fd < 0)
                                r = -errno;
                        else
                                *ret_fd = fd;
                }
        }
        close(done[1]);
        done[1] = -1;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
finish:
        for (size_t i = 0; i < 2; i++) {
                if (ready[i] >= 0)
                        close(ready[i]);
                if (done[i] >= 0)
                        close(done[i]);
        }
        return r < 0 ? r : 0;
}

/* ---- the mount ---- */

static int is_mount_root(int fd) {
        struct statx sx;
        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &sx) < 0)
                return -errno;
        if (!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
                return -EOPNOTSUPP;
        return !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Clone and idmap; returns the detached tree's fd. */
static int idmapped_clone(int dirfd, int userns_fd, unsigned flags, uint64_t attr_set, int *ret_fd) {
        unsigned rec = (flags & IDMAP_MOUNT_RECURSIVE) ? AT_RECURSIVE : 0;
        _cleanup_close_ int tree = sys_open_tree(dirfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | rec);
        if (tree < 0)
                return -errno;
        /* Private: the clone would otherwise join the source's peer group,
         * and mounts made later under the project would show up in it. */
        struct mount_attr attr = {
                .attr_set = (userns_fd >= 0 ? MOUNT_ATTR_IDMAP : 0) | attr_set,
                .userns_fd = userns_fd >= 0 ? (uint64_t) userns_fd : 0,
                .propagation = MS_PRIVATE,
        };
        if (sys_mount_setattr(tree, "", AT_EMPTY_PATH | rec, &attr) < 0)
                return -errno;
        *ret_fd = TAKE_FD(tree);
        return 0;
}

int idmap_mount(int project_fd, int userns_fd, const char *staging, unsigned flags) {
        _cleanup_close_ int tree = -1;
        int r;

        struct stat st;
        /* Without a mapping only read-only: nothing written through it could land as another id. */
        bool ro = flags & IDMAP_MOUNT_READ_ONLY;
        if (project_fd < 0 || (userns_fd < 0 && !ro) || isempty(staging) || staging[0] != '/')
                return -EINVAL;
        if (fstat(project_fd, &st) < 0)
                return -errno;
        if ((r = idmapped_clone(project_fd, userns_fd, flags, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (ro ? MOUNT_ATTR_RDONLY : 0), &tree)) < 0)
                return r;
        /* A mount point of the source's kind: a directory, or an empty file. */
        if (S_ISDIR(st.st_mode)) {
                if (mkdir(staging, 0700) < 0 && errno != EEXIST)
                        return -errno;
        } else {
                _cleanup_close_ int f = open(staging, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (f < 0)
                        return -errno;
        }
        _cleanup_close_ int target = open(staging, O_PATH | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0) | O_NOFOLLOW | O_CLOEXEC);
        if (target < 0)
                return -errno;
        r = is_mount_root(target);
        if (r < 0 && r != -EOPNOTSUPP)
                return r;
        if (r > 0)
                return -EBUSY;
        if (sys_move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

int idmap_mount_project(int project_fd, uid_t uid, gid_t gid, uid_t base, const char *staging) {
        _cleanup_close_ int userns = -1;
        int r;
        if (uid >= IDMAP_RANGE_SIZE || gid >= IDMAP_RANGE_SIZE || base % IDMAP_RANGE_SIZE != 0 || base == 0)
                return -ERANGE;
        if ((r = idmap_userns_fd(uid, base + uid, gid, (gid_t) base + gid, &userns)) < 0)
                return r;
        return idmap_mount(project_fd, userns, staging, 0);
}

int idmap_umount(const char *staging) {
        if (isempty(staging))
                return -EINVAL;
        /* Nothing mounted: done, also without the right to unmount. */
        _cleanup_close_ int fd = open(staging, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (is_mount_root(fd) == 0)
                return 0;
        /* Stacked mounts are all ours to take: loop until none is left. */
        for (unsigned i = 0; i < 16; i++) {
                if (umount2(staging, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                        return errno == EINVAL || errno == ENOENT ? 0 : -errno;
        }
        return -EBUSY;
}

int idmap_supported(const char *path) {
        _cleanup_close_ int dirfd = open(path, O_PATH | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;
        return idmap_supported_fd(dirfd);
}

int idmap_supported_fd(int dirfd) {
        /* Any mapping will do; the clone is never attached. */
        _cleanup_close_ int userns = -1;
        int r = idmap_userns_fd(0, UINT32_C(0x6FFFFFFE), 0, UINT32_C(0x6FFFFFFE), &userns);
        if (r < 0)
                return r;
        _cleanup_close_ int tree = -1;
        r = idmapped_clone(dirfd, userns, 0, 0, &tree);
        if (r == -EINVAL)
                return -EOPNOTSUPP;
        return r;
}

int idmap_fs_of(const char *path, char **ret_fstype, char **ret_target) {
        struct libmnt_table *t = mnt_new_table_from_file("/proc/self/mountinfo");
        if (!t)
                return -errno ?: -EIO;
        struct libmnt_fs *fs = mnt_table_find_mountpoint(t, path, MNT_ITER_BACKWARD);
        int r = 0;
        if (!fs)
                r = -ENOENT;
        else {
                char *a = strdup(strempty(mnt_fs_get_fstype(fs))), *b = strdup(strempty(mnt_fs_get_target(fs)));
                if (!a || !b) {
                        free(a);
                        free(b);
                        r = -ENOMEM;
                } else {
                        *ret_fstype = a;
                        *ret_target = b;
                }
        }
        mnt_unref_table(t);
        return r;
}
