/* staging.c: the project and the binds at their staging paths (staging.h):
 * every source opened once, checked on its fd and mounted from that fd. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "binds.h"
#include "idmap.h"
#include "staging.h"
#include "state.h"

char *staging_dir(const char *name) { return strdup_printf("%s/cages/%s/" STAGING_SUBDIR, STATE_DIR, name); }

int staging_set_paths(CageSpec *s, uid_t base, CageError *err) {
        _cleanup_free_ char *staging = staging_dir(s->name);
        char *store = strdup_printf("%s/cages/%s/rootfs/nix/store", STATE_DIR, s->name);
        if (!staging || !store) {
                free(store);
                return cage_error_set(err, -ENOMEM, "out of memory");
        }
        free(s->store_dir);
        s->store_dir = store;
        int r = cage_spec_set_userns(s, base, staging);
        return r < 0 ? cage_error_set(err, r, "out of memory") : 0;
}

int staging_umount(const char *name) {
        _cleanup_free_ char *dir = staging_dir(name);
        if (!dir)
                return -ENOMEM;
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        int ret = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *p = strdup_printf("%s/%s", dir, de->d_name);
                int r = p ? idmap_umount(p) : -ENOMEM;
                if (r < 0 && ret == 0)
                        ret = r;
        }
        closedir(d);
        return ret;
}

int staging_idmap_refusal(CageError *err, const char *what, const char *path, const char *fstype, const char *target, int r) {
        if (r == -ENOSYS)
                return cage_error_set(err, r, "%s %s: this kernel has no idmapped mounts (Linux 5.12 or later is needed); nspawn-cage runs "
                                      "every cage in its own user namespace and needs them so that only your uid can write there", what, path);
        if (r == -EOPNOTSUPP)
                return cage_error_set(err, r, "%s %s is on %s (mounted at %s), which does not support idmapped mounts; nspawn-cage runs every "
                                      "cage in its own user namespace and binds it through one, so that only your uid can write there: move "
                                      "it to a local file system that supports them (ext4, xfs, btrfs, tmpfs)", what, path,
                                      fstype ? fstype : "a file system", target ? target : "?");
        if (r == -EPERM)
                return cage_error_set(err, r, "%s %s (on %s at %s) is already an idmapped mount (a systemd-homed home, or a container's "
                                      "mount?); idmapped mounts cannot be stacked before Linux 6.15: move it elsewhere", what, path,
                                      fstype ? fstype : "?", target ? target : "?");
        return cage_error_set(err, r, "%s %s: cannot make an idmapped mount of it: %s", what, path, strerror(-r));
}

static int idmap_refusal(CageError *err, const char *what, const char *path, int r) {
        _cleanup_free_ char *fstype = NULL, *target = NULL;
        (void) idmap_fs_of(path, &fstype, &target);
        return staging_idmap_refusal(err, what, path, fstype, target, r);
}

static int bind_refusal(CageError *err, const BindSpec *b, int r) {
        _cleanup_free_ char *label = staging_bind_label(b);
        _cleanup_free_ char *what = strdup_printf("%s: source", strempty(label));
        return idmap_refusal(err, what ? what : "Bind= source", b->source, r);
}

char *staging_bind_label(const BindSpec *b) {
        const char *key = b->read_only ? "BindReadOnly" : "Bind";
        bool same = streq(b->source, b->destination);
        if (!b->origin.file)
                return strdup_printf("ProtectGit=: %s=%s", key, b->source);
        return strdup_printf("%s:%u: %s=%s%s%s", b->origin.file, b->origin.line, key, b->source, same ? "" : ":",
                             same ? "" : b->destination);
}

/* Open a bind's source as bind_source_open() does; say which bind failed. */
static int open_bind(int root_fd, const CageSpec *s, const BindSpec *b, int *ret_fd, CageError *err) {
        int r = bind_source_open(root_fd, b, &s->user, ret_fd, err);
        if (r >= 0)
                return 0;
        _cleanup_free_ char *label = staging_bind_label(b);
        return cage_error_wrap(err, r, "%s: source %s", strempty(label), b->source);
}

int staging_check(CageSpec *s, int project_fd, CageError *err) {
        int r = idmap_supported_fd(project_fd);
        if (r < 0)
                return idmap_refusal(err, "project", s->project, r);
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return cage_error_set(err, -errno, "/: %s", strerror(errno));
        for (size_t i = 0; i < s->n_binds; i++) {
                BindSpec *b = &s->binds[i];
                if (b->as_is)
                        continue;
                _cleanup_close_ int fd = -1;
                if ((r = open_bind(root, s, b, &fd, err)) < 0)
                        return r;
                b->no_idmap = false;
                if ((r = idmap_supported_fd(fd)) >= 0)
                        continue;
                if (!b->read_only)
                        return bind_refusal(err, b, r);
                b->no_idmap = true;
        }
        return 0;
}

int staging_mount(const CageSpec *s, int project_fd, CageError *err) {
        struct stat st;
        if (fstat(project_fd, &st) < 0 || st.st_uid != s->user.uid)
                return cage_error_set(err, -EPERM, "project %s changed owner meanwhile; cage only your own projects", s->project);
        _cleanup_free_ char *dir = staging_dir(s->name);
        if (!dir)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return cage_error_set(err, -errno, "%s: %s", dir, strerror(errno));
        int r = idmap_mount_project(project_fd, s->user.uid, s->user.gid, s->uid_base, s->project_staged);
        if (r == -ERANGE)
                return cage_error_set(err, r, "your uid or gid (%u:%u) is 65536 or more: a cage's user namespace maps 64K ids only",
                                      (unsigned) s->user.uid, (unsigned) s->user.gid);
        if (r < 0)
                return idmap_refusal(err, "project", s->project, r);
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return cage_error_set(err, -errno, "/: %s", strerror(errno));
        for (size_t i = 0; i < s->n_binds; i++) {
                const BindSpec *b = &s->binds[i];
                _cleanup_close_ int fd = -1;
                if (!b->own_mount)
                        continue;
                if ((r = open_bind(root, s, b, &fd, err)) < 0)
                        return r;
                if ((r = bind_stage(fd, b, &s->user, s->uid_base)) < 0)
                        return bind_refusal(err, b, r);
        }
        return 0;
}
