/* agentstate.c: the user's agent state directory and the copies of [State]
 * File= in and out of a cage. Every path below the home or the cage's home
 * is walked one component at a time relative to a directory fd with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): the agent controls the
 * cage's home, and a link it plants there must never lead root anywhere. */
#include "autoconfig.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <time.h>

#include "agentstate.h"
#include "state.h"
#include "pathfd.h"
#include "util.h"

/* mkdir dirfd/name (mode, owned by uid:gid when uid != -1 and new) and open it. */
static int mkdir_open(int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid, int *ret_fd) {
        bool made = mkdirat(dirfd, name, mode) >= 0;
        if (!made && errno != EEXIST)
                return -errno;
        int fd = path_open_nofollow(dirfd, name, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH);
        if (fd < 0)
                return fd;
        if (made && uid != (uid_t) -1 && fchown(fd, uid, gid) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* Walk (creating) the directories of `path` below dirfd; with `parent_only`
 * stop before its last component and return that in *ret_base. */
static int mkdir_walk(int dirfd, const char *path, mode_t mode, uid_t uid, gid_t gid, bool parent_only, int *ret_fd,
                      const char **ret_base) {
        _cleanup_free_ char *buf = strdup(path);
        if (!buf)
                return -ENOMEM;
        _cleanup_close_ int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        char *c = buf;
        for (;;) {
                char *slash = strchr(c, '/');
                if (!slash && parent_only)
                        break;
                if (slash)
                        *slash = 0;
                int next;
                int r = mkdir_open(fd, c, mode, uid, gid, &next);
                if (r < 0)
                        return r;
                close(fd);
                fd = next;
                if (!slash)
                        break;
                c = slash + 1;
        }
        if (ret_base)
                *ret_base = path + (c - buf);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Open path below dirfd without following links, check it is a regular
 * file, then read it through a fresh open of that very inode: a FIFO or a
 * device is never opened for reading. */
static int read_beneath(int dirfd, const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int pfd = path_open_nofollow(dirfd, path, O_PATH, RESOLVE_BENEATH);
        if (pfd < 0)
                return pfd;
        struct stat st;
        if (fstat(pfd, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        _cleanup_close_ int fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        return read_regular_fd(fd, AGENT_STATE_FILE_MAX, ret, ret_size);
}

static const char *refusal(int r) {
        switch (r) {
        case -ELOOP: return "is a symbolic link (or lies below one), not a regular file";
        case -EBADFD: return "is not a regular file (a FIFO, device, socket or directory)";
        case -EFBIG: return "is larger than 16 MiB";
        case -EXDEV: return "lies on another mount";
        default: return strerror(-r);
        }
}

int agent_state_open(const HostUser *u, const char *preset, int *ret_fd, char **ret_path) {
        static const struct { const char *name; mode_t mode; bool ours; } parts[] = {
                { ".local", 0755, false }, { "state", 0700, false }, { "nspawn-cage", 0700, true }, { NULL, 0700, true },
        };
        /* Above the home, every directory is root's: resolving its links is safe. */
        char home[PATH_MAX];
        if (!realpath(u->home, home))
                return -errno;
        _cleanup_free_ char *path = strdup_printf("%s/.local/state/nspawn-cage/%s", home, preset);
        if (!path)
                return -ENOMEM;
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = path_open_nofollow(AT_FDCWD, home, O_RDONLY | O_DIRECTORY, 0);
        struct stat st;
        r = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : st.st_uid != u->uid ? -EPERM : 0;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(parts); i++) {
                int next;
                r = mkdir_open(fd, parts[i].name ? parts[i].name : preset, parts[i].mode, (uid_t) -1, (gid_t) -1, &next);
                if (r < 0)
                        break;
                close(fd);
                fd = next;
                if (parts[i].ours && (fstat(fd, &st) < 0 || st.st_uid != u->uid))
                        r = -EPERM;
        }
        user_fs_leave(&id);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        *ret_path = TAKE_PTR(path);
        return 0;
}

int agent_state_make_dirs(const HostUser *u, int state_fd, char *const *dirs, CageError *err) {
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return r;
        for (size_t i = 0; r >= 0 && dirs && dirs[i]; i++) {
                int fd;
                struct stat st;
                r = mkdir_walk(state_fd, dirs[i], 0700, (uid_t) -1, (gid_t) -1, false, &fd, NULL);
                if (r >= 0) {
                        if (fstat(fd, &st) < 0 || st.st_uid != u->uid)
                                r = -EPERM;
                        close(fd);
                }
                if (r < 0)
                        cage_error_set(err, r, "%s: %s", dirs[i], strerror(-r));
        }
        user_fs_leave(&id);
        return r;
}

void agent_state_hash(const void *data, size_t size, char buf[static 17]) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        const unsigned char *p = data;
        for (size_t i = 0; i < size; i++) {
                h ^= p[i];
                h *= UINT64_C(0x100000001b3);
        }
        snprintf(buf, 17, "%016" PRIx64, h);
}

int agent_state_copy_in(const HostUser *u, int state_fd, int home_fd, char *const *files, AgentStateWarn warn,
                        void *userdata, char ***ret_entries, CageError *err) {
        _cleanup_strv_free_ char **entries = NULL;
        for (size_t i = 0; files && files[i]; i++) {
                _cleanup_free_ char *data = NULL;
                size_t size = 0;
                FsIdentity id;
                int r = user_fs_enter(u, &id);
                if (r < 0)
                        return r;
                r = read_beneath(state_fd, files[i], &data, &size);
                user_fs_leave(&id);
                if (r < 0) {
                        if (r != -ENOENT && warn)
                                warn(files[i], refusal(r), userdata);
                        if (strv_push(&entries, strdup_printf("-:%s", files[i])) < 0)
                                return -ENOMEM;
                        continue;
                }
                /* Into the fresh rootfs as root: the user's ids on disk, which
                 * PrivateUsersOwnership=chown shifts into the cage's range. */
                _cleanup_close_ int dfd = -1;
                const char *base;
                if ((r = mkdir_walk(home_fd, files[i], 0755, u->uid, u->gid, true, &dfd, &base)) < 0)
                        return cage_error_set(err, r, "%s: %s", files[i], strerror(-r));
                _cleanup_close_ int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return cage_error_set(err, -errno, "%s: %s", files[i], strerror(errno));
                for (size_t n = 0; n < size;) {
                        ssize_t k = write(fd, data + n, size - n);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return cage_error_set(err, -errno, "%s: %s", files[i], strerror(errno));
                        n += (size_t) k;
                }
                if (fchown(fd, u->uid, u->gid) < 0)
                        return cage_error_set(err, -errno, "%s: %s", files[i], strerror(errno));
                char hash[17];
                agent_state_hash(data, size, hash);
                if (strv_push(&entries, strdup_printf("%s:%s", hash, files[i])) < 0)
                        return -ENOMEM;
        }
        *ret_entries = TAKE_PTR(entries);
        return 0;
}

/* The hash of the user's copy of path now ("-" if there is none): read as
 * the user, or as root after the session, never through a link. */
static int current_hash(const HostUser *u, int state_fd, const char *path, char buf[static 17]) {
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        FsIdentity id;
        (void) user_fs_enter(u, &id);
        int r = read_beneath(state_fd, path, &data, &size);
        user_fs_leave(&id);
        if (r == -ENOENT) {
                strcpy(buf, "-");
                return 0;
        }
        if (r < 0)
                return r;
        agent_state_hash(data, size, buf);
        return 0;
}

/* Cages of one preset end one at a time: the state directory is locked
 * (bounded: the user could hold the lock; then unserialised, as before). */
static void lock_state_dir(int state_fd) {
        for (unsigned i = 0; i < 100 && flock(state_fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK; i++)
                usleep(100 * 1000);
}

int agent_state_copy_out(const HostUser *u, int home_fd, int state_fd, char *const *entries, const char *aside, AgentStateWarn warn,
                         void *userdata, unsigned *ret_copied) {
        int ret = 0;
        unsigned copied = 0;
        if (entries && entries[0])
                lock_state_dir(state_fd);
        for (size_t i = 0; entries && entries[i]; i++) {
                const char *colon = strchr(entries[i], ':');
                if (!colon)
                        continue;
                const char *path = colon + 1;
                _cleanup_free_ char *data = NULL;
                size_t size = 0;
                int r = read_beneath(home_fd, path, &data, &size);
                if (r == -ENOENT)
                        continue; /* removed by the agent: the user's copy stays */
                if (r < 0) {
                        if (warn)
                                warn(path, refusal(r), userdata);
                        continue;
                }
                char hash[17];
                agent_state_hash(data, size, hash);
                if ((size_t) (colon - entries[i]) == 16 && strncmp(entries[i], hash, 16) == 0)
                        continue; /* unchanged: an older cage never overwrites newer state */
                /* Changed here, and the user's copy changed meanwhile (another
                 * cage of the preset ended first, or the user): this one is
                 * kept aside beside it, never written over it. */
                char now[17] = "";
                size_t was_len = (size_t) (colon - entries[i]);
                bool unreadable = current_hash(u, state_fd, path, now) < 0,
                     as_copied = strlen(now) == was_len && strncmp(entries[i], now, was_len) == 0,
                     conflict = unreadable || (!as_copied && !streq(now, hash));
                _cleanup_free_ char *aside_path = conflict ? strdup_printf("%s" AGENT_STATE_ASIDE "%s", path, strempty(aside)) : NULL;
                if (conflict && !aside_path) {
                        ret = ret ?: -ENOMEM;
                        continue;
                }
                /* As the user; once the helper has dropped CAP_SETUID (after the
                 * agent's session), as root with the user's ids set on every
                 * file and directory before it gets its name. */
                FsIdentity id;
                bool as_user = user_fs_enter(u, &id) >= 0;
                uid_t uid = as_user ? (uid_t) -1 : u->uid;
                gid_t gid = as_user ? (gid_t) -1 : u->gid;
                _cleanup_close_ int dfd = -1;
                const char *base;
                r = mkdir_walk(state_fd, conflict ? aside_path : path, 0700, uid, gid, true, &dfd, &base);
                if (r >= 0)
                        r = write_data_atomic_at(dfd, base, data, size, 0600, uid, gid);
                user_fs_leave(&id);
                if (r < 0) {
                        if (warn)
                                warn(path, strerror(-r), userdata);
                        ret = ret ?: r;
                        continue;
                }
                if (conflict && warn) {
                        _cleanup_free_ char *why = strdup_printf("was changed meanwhile (by another cage of this preset, or by you); this cage's "
                                                                 "version is kept aside as %s beside it, to merge by hand", base);
                        warn(path, why ? why : "was changed meanwhile; this cage's version is kept aside", userdata);
                }
                copied++;
        }
        if (ret_copied)
                *ret_copied = copied;
        return ret;
}

static void warn_state(const char *path, const char *why, void *userdata) {
        const char *const *ctx = userdata; /* cage name, state directory */
        cage_notice("warning: cage %s: ~/%s %s: left alone; your copy in %s/%s is unchanged", ctx[0], path, why, ctx[1], path);
}

int agent_state_prepare(CageSpec *s, CageError *err) {
        if (!s->persist)
                return 0;
        _cleanup_close_ int sfd = -1;
        _cleanup_free_ char *path = NULL;
        int r = agent_state_open(&s->user, s->preset, &sfd, &path);
        if (r < 0)
                return cage_error_set(err, r, "agent state of preset %s in %s/.local/state/nspawn-cage: %s%s", s->preset, s->user.home,
                                      strerror(-r), r == -EPERM ? " (a directory there is not yours; fix its owner or set [State] Persist=no)" : "");
        if ((r = agent_state_make_dirs(&s->user, sfd, s->state_dirs, err)) < 0) {
                _cleanup_free_ char *why = strdup(cage_error_message(err, r));
                return cage_error_set(err, r, "agent state %s/%s", path, strempty(why));
        }
        if (cage_spec_add_state_binds(s, path) < 0)
                return cage_error_set(err, -ENOMEM, "out of memory");
        return 0;
}

int agent_state_stage_in(const CageSpec *s, int rootfd, char **ret_path, char ***ret_entries, CageError *err) {
        _cleanup_close_ int sfd = -1;
        _cleanup_free_ char *path = NULL;
        int r = agent_state_open(&s->user, s->preset, &sfd, &path);
        if (r < 0)
                return cage_error_set(err, r, "agent state of preset %s in %s/.local/state/nspawn-cage: %s", s->preset, s->user.home, strerror(-r));
        _cleanup_close_ int hfd = path_open_nofollow(rootfd, s->user.home + 1, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH);
        if (hfd < 0)
                return cage_error_set(err, hfd, "the cage's %s: %s", s->user.home, strerror(-hfd));
        const char *ctx[] = { s->name, path };
        if ((r = agent_state_copy_in(&s->user, sfd, hfd, s->state_files, warn_state, ctx, ret_entries, err)) < 0) {
                _cleanup_free_ char *why = strdup(cage_error_message(err, r));
                return cage_error_set(err, r, "copying %s/%s", path, strempty(why));
        }
        *ret_path = TAKE_PTR(path);
        return 0;
}

int agent_state_restore(int state_dir_fd, const CageRecord *rec, CageError *err) {
        if (!rec->state_dir || !rec->state_home || !rec->state_files || rec->state_home[0] != '/')
                return 0;
        _cleanup_(host_user_done) HostUser u = {};
        int r = host_user_from_uid(rec->uid, &u);
        if (r < 0)
                return cage_error_set(err, r, "cage %s: its user (uid %u) is gone; its agent state is not copied out", rec->name, (unsigned) rec->uid);
        /* After the agent's session the helper has no CAP_SETUID: then as root, still without links. */
        FsIdentity id;
        (void) user_fs_enter(&u, &id);
        _cleanup_close_ int sfd = path_open_nofollow(AT_FDCWD, rec->state_dir, O_RDONLY | O_DIRECTORY, 0);
        user_fs_leave(&id);
        struct stat st;
        if (sfd < 0 || fstat(sfd, &st) < 0 || st.st_uid != u.uid)
                return cage_error_set(err, sfd < 0 ? sfd : -EPERM, "cage %s: agent state %s: %s; its files are not copied out", rec->name,
                                      rec->state_dir, sfd < 0 ? strerror(-sfd) : "not owned by its user");
        _cleanup_free_ char *home = strdup_printf("cages/%s/rootfs%s", rec->name, rec->state_home);
        _cleanup_close_ int hfd = home ? path_open_nofollow(state_dir_fd, home, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_XDEV) : -ENOMEM;
        if (hfd == -ENOENT)
                return 0;
        if (hfd < 0)
                return cage_error_set(err, hfd, "cage %s: %s/%s: %s; agent state not copied out", rec->name, STATE_DIR, strempty(home),
                                      strerror(-hfd));
        const char *ctx[] = { rec->name, rec->state_dir };
        unsigned n = 0;
        _cleanup_free_ char *aside = strdup_printf("%s-%lld", rec->name, (long long) time(NULL));
        if ((r = agent_state_copy_out(&u, hfd, sfd, rec->state_files, aside, warn_state, ctx, &n)) < 0)
                return cage_error_set(err, r, "cage %s: copying agent state out into %s: %s", rec->name, rec->state_dir, strerror(-r));
        return 0;
}
