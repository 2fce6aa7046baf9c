/* rootfs.c: what a cage's root directory holds. Only the closure's store
 * paths, a rendered /etc, the mutable directories and the project: nothing
 * of the host's /home, /root, /etc or /run unless a trusted layer binds it.
 * The top-level store path follows the contract in nix/README.md: init,
 * sw/, etc/ and optional root/ entries. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include <linux/openat2.h>

#include "builders.h"
#include "egress.h"
#include "network.h"
#include "rootfs.h"
#include "stage.h"

/* A CA bundle file, the closure's or one of the administrator's. */
#define CA_BUNDLE_MAX (16u << 20)

static const char *const entry_type_table[_ROOTFS_ENTRY_TYPE_MAX] = {
        [ROOTFS_DIR] = "dir",
        [ROOTFS_SYMLINK] = "symlink",
        [ROOTFS_FILE] = "file",
        [ROOTFS_COPY] = "copy",
        [ROOTFS_RESOLVERS] = "resolvers",
        [ROOTFS_LINK_ENTRIES] = "link-entries",
        [ROOTFS_CA_BUNDLE] = "ca-bundle",
        [ROOTFS_BIND_RO] = "bind-ro",
        [ROOTFS_BIND_RW] = "bind-rw",
};

const char *rootfs_entry_type_to_string(RootfsEntryType t) {
        return t >= 0 && t < _ROOTFS_ENTRY_TYPE_MAX ? entry_type_table[t] : NULL;
}

RootfsEntryType rootfs_entry_type_from_string(const char *s) {
        for (int i = 0; s && i < _ROOTFS_ENTRY_TYPE_MAX; i++)
                if (streq(entry_type_table[i], s))
                        return i;
        return _ROOTFS_ENTRY_TYPE_INVALID;
}

void rootfs_plan_done(RootfsPlan *p) {
        for (size_t i = 0; i < p->n_entries; i++) {
                free(p->entries[i].path);
                free(p->entries[i].target);
                free(p->entries[i].contents);
        }
        free(p->entries);
        *p = (RootfsPlan) {};
}

static int add(RootfsPlan *p, RootfsEntryType type, const char *path, const char *target, char *contents,
               mode_t mode, bool user_owned) {
        RootfsEntry *t = realloc(p->entries, sizeof(RootfsEntry) * (p->n_entries + 1));
        if (!t) {
                free(contents);
                return -ENOMEM;
        }
        p->entries = t;
        RootfsEntry e = { .type = type, .mode = mode, .user_owned = user_owned, .contents = contents };
        e.path = strdup(path);
        e.target = target ? strdup(target) : NULL;
        if (!e.path || (target && !e.target)) {
                free(e.path);
                free(e.target);
                free(contents);
                return -ENOMEM;
        }
        p->entries[p->n_entries++] = e;
        return 0;
}

/* A rendered file: takes `contents` whatever happens, so a failure earlier
 * in the plan does not leak it. */
static int add_file(RootfsPlan *p, int r, const char *path, char *contents, mode_t mode) {
        if (r < 0) {
                free(contents);
                return r;
        }
        if (!contents)
                return -ENOMEM;
        return add(p, ROOTFS_FILE, path, NULL, contents, mode, false);
}

/* Every parent of `path` below "/" as a directory, unless already planned;
 * user_home (if given) and, with `below_home`, the parents below it are the
 * user's: the agent rewrites files there by rename. */
static int add_parents_owned(RootfsPlan *p, const char *path, const char *user_home, bool below_home) {
        _cleanup_free_ char *buf = strdup(path);
        if (!buf)
                return -ENOMEM;
        for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                bool have = false;
                for (size_t i = 0; i < p->n_entries && !have; i++)
                        have = streq(p->entries[i].path, buf);
                bool owned = user_home && (streq(buf, user_home) || (below_home && path_startswith_dir(buf, user_home)));
                int r = have ? 0 : add(p, ROOTFS_DIR, buf, NULL, NULL, 0755, owned);
                *s = '/';
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_parents(RootfsPlan *p, const char *path, const char *user_home) {
        return add_parents_owned(p, path, user_home, false);
}

static uint64_t fnv(uint64_t h, const char *s) {
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

/* The directories every rootfs has, the user's home, /bin and init. */
static int plan_skeleton(RootfsPlan *p, const CageSpec *s, const char *sw, const char *init) {
        bool user_is_root = s->user.uid == 0;
        int r = 0;
        static const struct { const char *path; mode_t mode; } dirs[] = {
                { "/dev", 0755 }, { "/proc", 0555 }, { "/sys", 0555 }, { "/run", 0755 },
                { "/tmp", 01777 }, { "/var", 0755 }, { "/var/tmp", 01777 }, { "/var/lib", 0755 }, { "/var/log", 0755 }, { "/var/cache", 0755 },
                { "/nix", 0755 }, { "/nix/store", 0755 }, { "/etc", 0755 }, { "/usr", 0755 },
                { "/sbin", 0755 }, { "/home", 0755 }, { "/root", 0700 }, { "/mnt", 0755 },
        };
        for (size_t i = 0; i < ELEMENTSOF(dirs) && r >= 0; i++)
                r = add(p, ROOTFS_DIR, dirs[i].path, NULL, NULL, dirs[i].mode, false);
        if (r >= 0 && !user_is_root && !streq(s->user.home, "/"))
                r = add_parents(p, s->user.home, s->user.home) ?: add(p, ROOTFS_DIR, s->user.home, NULL, NULL, 0755, true);
        r = r ?: add(p, ROOTFS_SYMLINK, "/bin", sw, NULL, 0777, false);
        r = r ?: add(p, ROOTFS_SYMLINK, "/usr/bin", sw, NULL, 0777, false);
        r = r ?: add(p, ROOTFS_SYMLINK, "/sbin/init", init, NULL, 0777, false);
        /* What systemd-tmpfiles-setup.service made at every boot (its fork
         * and exec were on the boot's critical path); /run/lock is a tmpfs
         * of nspawn's (settings.c). */
        r = r ?: add(p, ROOTFS_SYMLINK, "/var/run", "../run", NULL, 0777, false);
        r = r ?: add(p, ROOTFS_SYMLINK, "/var/lock", "../run/lock", NULL, 0777, false);

        return r;
}

/* Rendered /etc: these names are ours, the top-level's etc/ fills the rest. */
static int plan_etc(RootfsPlan *p, const CageSpec *s, int r) {
        const char *u = s->user.name;
        bool user_is_root = s->user.uid == 0;
        uint64_t h1 = fnv(UINT64_C(0xcbf29ce484222325), s->name), h2 = fnv(UINT64_C(0x84222325cbf29ce4), s->name);
        char *f;
        f = strdup_printf("NAME=\"nspawn-cage\"\nID=nspawn-cage\nPRETTY_NAME=\"nspawn-cage %s\"\nVERSION_ID=%s\n", s->name, PACKAGE_VERSION);
        r = add_file(p, r, "/etc/os-release", f, 0644);
        f = strdup_printf("%016" PRIx64 "%016" PRIx64 "\n", h1, h2);
        r = add_file(p, r, "/etc/machine-id", f, 0444);
        f = strdup_printf("%s\n", s->name);
        r = add_file(p, r, "/etc/hostname", f, 0644);
        if (user_is_root)
                f = strdup("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
        else
                f = strdup_printf("root:x:0:0:root:/root:/bin/bash\n%s:x:%u:%u:%s:%s:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                                  u, (unsigned) s->user.uid, (unsigned) s->user.gid, u, s->user.home);
        r = add_file(p, r, "/etc/passwd", f, 0644);
        if (user_is_root)
                f = strdup("root:x:0:\nnogroup:x:65534:\n");
        else if (s->user.gid == 0)
                f = strdup("root:x:0:\nnogroup:x:65534:\n");
        else
                f = strdup_printf("root:x:0:\n%s:x:%u:\nnogroup:x:65534:\n", u, (unsigned) s->user.gid);
        r = add_file(p, r, "/etc/group", f, 0644);
        if (user_is_root)
                f = strdup("root:!*:1::::::\nnobody:!*:1::::::\n");
        else
                f = strdup_printf("root:!*:1::::::\n%s:!*:1::::::\nnobody:!*:1::::::\n", u);
        r = add_file(p, r, "/etc/shadow", f, 0600);
        _cleanup_free_ char *pinned = NULL;
        if (r >= 0 && s->network == NETWORK_PRIVATE && network_allow_hosts(s->allow, s->n_allow, &pinned) < 0)
                r = -ENOMEM;
        /* Allow='s names as the host resolved them at start: the cage has no DNS. */
        _cleanup_free_ char *host_line = s->leased && s->n_host_services > 0
                ? strdup_printf("# [Network] HostService=: the host, as this cage reaches it\n%s nspawn-cage-host\n", s->lease.host_addr) : NULL;
        f = strdup_printf("127.0.0.1 localhost %s\n::1 localhost %s\n%s%s%s", s->name, s->name,
                          isempty(pinned) ? "" : "# [Network] Allow=, resolved on the host when the cage started:\n", strempty(pinned),
                          strempty(host_line));
        r = add_file(p, r, "/etc/hosts", f, 0644);
        f = strdup("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n");
        r = add_file(p, r, "/etc/nsswitch.conf", f, 0644);
        if (s->network == NETWORK_OFF) {
                f = strdup("# This cage has no network (Mode=off).\n");
                r = add_file(p, r, "/etc/resolv.conf", f, 0644);
        } else if (s->network == NETWORK_PRIVATE && s->n_allow > 0 && s->leased && egress_has_names(s->allow, s->n_allow)) {
                f = strdup_printf("# The cage's egress proxy: it answers the names of [Network] Allow= only. See nspawn-cage.conf(5).\n"
                                  "nameserver %s\noptions timeout:2 attempts:2\n", s->lease.host_addr);
                r = add_file(p, r, "/etc/resolv.conf", f, 0644);
        } else if (s->network == NETWORK_PRIVATE && s->n_allow > 0) {
                f = strdup("# No name server: this cage may reach only the destinations of [Network] Allow=,\n"
                           "# whose names are pinned in /etc/hosts; DNS is closed to it. See nspawn-cage.conf(5).\n");
                r = add_file(p, r, "/etc/resolv.conf", f, 0644);
        } else if (s->network == NETWORK_PRIVATE)
                /* The host's own resolv.conf often names a loopback stub
                 * (127.0.0.53) the cage cannot reach: its upstream servers. */
                r = r ?: add(p, ROOTFS_RESOLVERS, "/etc/resolv.conf", NETWORK_HOST_RESOLV_CONFS, NULL, 0644, false);
        else
                r = r ?: add(p, ROOTFS_COPY, "/etc/resolv.conf", "/etc/resolv.conf", NULL, 0644, false);
        return r;
}

/* The administrator's CA certificates (corporate proxies) after the
 * closure's bundle, at the paths and name SSL_CERT_FILE uses (nix/cage.nix);
 * the rest of the closure's /etc/ssl is not needed. */
static int plan_ca_bundle(RootfsPlan *p, const CageSpec *s, const char *etc, int r) {
        if (r < 0 || !s->ca_files || !s->ca_files[0])
                return r;
        StrBuf list = {};
        char *files = NULL;
        for (size_t i = 0; s->ca_files[i]; i++)
                strbuf_appendf(&list, "%s\n", s->ca_files[i]);
        _cleanup_free_ char *bundle = strdup_printf("%s/ssl/certs/ca-bundle.crt", etc);
        r = add(p, ROOTFS_DIR, "/etc/ssl", NULL, NULL, 0755, false);
        r = r ?: add(p, ROOTFS_DIR, "/etc/ssl/certs", NULL, NULL, 0755, false);
        r = r ?: strbuf_steal(&list, &files);
        strbuf_done(&list);
        r = r ?: !bundle ? (free(files), -ENOMEM) : add(p, ROOTFS_CA_BUNDLE, "/etc/ssl/certs/ca-certificates.crt", bundle, files, 0644, false);
        return r ?: add(p, ROOTFS_SYMLINK, "/etc/ssl/certs/ca-bundle.crt", "ca-certificates.crt", NULL, 0777, false);
}

/* Containers=: the engine's /etc/containers (builders.h). */
static int plan_containers(RootfsPlan *p, const CageSpec *s, int r) {
        if (r < 0 || s->containers == CONTAINERS_NO)
                return r;
        r = add(p, ROOTFS_DIR, "/etc/containers", NULL, NULL, 0755, false);
        r = add_file(p, r, "/etc/containers/containers.conf", strdup(CONTAINERS_CONF), 0644);
        r = add_file(p, r, "/etc/containers/storage.conf", strdup(CONTAINERS_STORAGE_CONF), 0644);
        return add_file(p, r, "/etc/containers/policy.json", strdup(CONTAINERS_POLICY), 0644);
}

/* The closure's store paths, the binds and the project. */
static int plan_binds(RootfsPlan *p, const CageSpec *s, int r) {
        bool user_is_root = s->user.uid == 0;
        for (size_t i = 0; s->store_paths && s->store_paths[i] && r >= 0; i++)
                r = add(p, ROOTFS_BIND_RO, s->store_paths[i], s->store_paths[i], NULL, 0755, false);
        for (size_t i = 0; i < s->n_binds && r >= 0; i++) {
                const BindSpec *b = &s->binds[i];
                r = (b->as_user ? add_parents_owned(p, b->destination, s->user.home, true) : add_parents(p, b->destination, NULL)) ?:
                    add(p, b->read_only ? ROOTFS_BIND_RO : ROOTFS_BIND_RW, b->destination, b->source, NULL, 0755, false);
        }
        r = r ?: add_parents(p, s->project, s->user.home);
        r = r ?: add(p, ROOTFS_BIND_RW, s->project, s->project, NULL, 0755, !user_is_root);
        return r;
}

int rootfs_plan_build(const CageSpec *s, RootfsPlan *ret) {
        RootfsPlan p = { .uid = s->user.uid, .gid = s->user.gid };
        const char *top = s->toplevel;
        if (!top)
                return -ENODATA;
        _cleanup_free_ char *sw = strdup_printf("%s/sw/bin", top);
        _cleanup_free_ char *init = strdup_printf("%s/init", top);
        _cleanup_free_ char *etc = strdup_printf("%s/etc", top);
        _cleanup_free_ char *root = strdup_printf("%s/root", top);
        if (!sw || !init || !etc || !root)
                return -ENOMEM;
        int r = plan_skeleton(&p, s, sw, init);
        r = plan_etc(&p, s, r);
        r = plan_ca_bundle(&p, s, etc, r);
        r = plan_containers(&p, s, r);
        r = r ?: add(&p, ROOTFS_LINK_ENTRIES, "/etc", etc, NULL, 0777, false);
        r = r ?: add(&p, ROOTFS_LINK_ENTRIES, "/", root, NULL, 0777, false);
        r = plan_binds(&p, s, r);
        if (r < 0) {
                rootfs_plan_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}

int rootfs_plan_format(const RootfsPlan *p, const char *user_name, char **ret_text) {
        StrBuf b = {};
        for (size_t i = 0; i < p->n_entries; i++) {
                const RootfsEntry *e = &p->entries[i];
                const char *owner = e->user_owned ? user_name : "root";
                switch (e->type) {
                case ROOTFS_DIR:
                        strbuf_appendf(&b, "dir %s %04o %s\n", e->path, (unsigned) e->mode, owner);
                        break;
                case ROOTFS_SYMLINK:
                        strbuf_appendf(&b, "symlink %s -> %s\n", e->path, e->target);
                        break;
                case ROOTFS_FILE:
                        strbuf_appendf(&b, "file %s %04o %s %zu bytes\n", e->path, (unsigned) e->mode, owner, strlen(e->contents));
                        break;
                case ROOTFS_COPY:
                        strbuf_appendf(&b, "copy %s %04o from host %s\n", e->path, (unsigned) e->mode, e->target);
                        break;
                case ROOTFS_RESOLVERS:
                        strbuf_appendf(&b, "resolvers %s %04o from host %s\n", e->path, (unsigned) e->mode, e->target);
                        break;
                case ROOTFS_LINK_ENTRIES:
                        strbuf_appendf(&b, "link-entries %s <- %s\n", e->path, e->target);
                        break;
                case ROOTFS_CA_BUNDLE: {
                        size_t n = 0;
                        for (const char *c = e->contents; *c; c++)
                                n += *c == '\n';
                        strbuf_appendf(&b, "ca-bundle %s %04o from %s and %zu of the administrator\n", e->path, (unsigned) e->mode, e->target, n);
                        break;
                }
                case ROOTFS_BIND_RO:
                case ROOTFS_BIND_RW:
                        strbuf_appendf(&b, "%s %s <- %s\n", rootfs_entry_type_to_string(e->type), e->path, e->target);
                        break;
                default:
                        break;
                }
        }
        return strbuf_steal(&b, ret_text);
}

/* Path inside the rootfs as a name relative to its fd ("." for the root). */
static const char *rel(const char *path) {
        while (*path == '/')
                path++;
        return *path ? path : ".";
}

/* Every name root creates or changes here is resolved beneath the rootfs
 * fd along no link (path_open_nofollow): the top-level's root/ entries
 * become links in the rootfs before the project's and the binds' parents
 * are made, and a link there must not carry a mkdir, chmod or chown out. */

/* The directory `path` names, inside the rootfs. */
static int open_dir(int rootfd, const char *path, int flags) {
        return path_open_nofollow(rootfd, rel(path), (uint64_t) (flags | O_DIRECTORY), RESOLVE_BENEATH);
}

/* The directory holding `path`'s last component, and that component. */
static int open_parent(int rootfd, const char *path, int *ret_fd, const char **ret_name) {
        const char *r = rel(path), *slash = strrchr(r, '/');
        const char *name = slash ? slash + 1 : r;
        if (streq(r, ".") || streq(name, "..") || streq(name, "."))
                return -EINVAL;
        _cleanup_free_ char *parent = slash ? strndup(r, (size_t) (slash - r)) : strdup(".");
        if (!parent)
                return -ENOMEM;
        int fd = open_dir(rootfd, parent, O_PATH);
        if (fd < 0)
                return fd;
        *ret_fd = fd;
        *ret_name = name;
        return 0;
}

static bool exists_at(int fd, const char *name) {
        struct stat st;
        return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0;
}

static int write_new_file(int dirfd, const char *name, const char *contents, mode_t mode) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        size_t n = strlen(contents);
        if (write(fd, contents, n) != (ssize_t) n)
                return -EIO;
        if (fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

/* A directory at dirfd/name (made, or one that is there), with `mode`:
 * chmod'ed through an fd opened along no link. */
static int make_dir(int dirfd, const char *name, mode_t mode, bool set_mode) {
        if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int fd = path_open_nofollow(dirfd, name, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH);
        struct stat st;
        /* A link where a directory is needed (O_DIRECTORY says ENOTDIR of it): -ELOOP. */
        if (fd == -ENOTDIR && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return -ELOOP;
        if (fd < 0)
                return fd;
        if (set_mode && fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

static int link_entries(int rootfd, const char *dir, const char *source) {
        DIR *d = opendir(source);
        if (!d)
                return errno == ENOENT ? 0 : -errno; /* optional parts of the top-level */
        _cleanup_close_ int dfd = open_dir(rootfd, dir, O_PATH);
        if (dfd < 0) {
                closedir(d);
                return dfd;
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *target = strdup_printf("%s/%s", source, de->d_name);
                if (!target) {
                        r = -ENOMEM;
                        break;
                }
                if (exists_at(dfd, de->d_name))
                        continue; /* ours wins: rendered files, mount points, fixed dirs */
                if (symlinkat(target, dfd, de->d_name) < 0) {
                        r = -errno;
                        break;
                }
        }
        closedir(d);
        return r;
}

/* Append the certificates of `path` to a bundle, ending in a newline. */
static int ca_bundle_append(StrBuf *b, const char *path, bool optional) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        if (fd < 0)
                return optional && errno == ENOENT ? 0 : -errno;
        int r = read_regular_fd(fd, CA_BUNDLE_MAX, &data, &size);
        if (r < 0)
                return r;
        strbuf_appendn(b, data, size);
        if (size > 0 && data[size - 1] != '\n')
                strbuf_append(b, "\n");
        return 0;
}

static int apply_entry(const RootfsPlan *p, const RootfsEntry *e, int rootfd) {
        if (e->type == ROOTFS_LINK_ENTRIES)
                return link_entries(rootfd, e->path, e->target);
        _cleanup_close_ int pfd = -1;
        const char *name;
        int r = open_parent(rootfd, e->path, &pfd, &name);
        if (r < 0)
                return r;
        switch (e->type) {
        case ROOTFS_DIR:
                r = make_dir(pfd, name, e->mode, true);
                break;
        case ROOTFS_SYMLINK:
                if (symlinkat(e->target, pfd, name) < 0)
                        r = -errno;
                break;
        case ROOTFS_FILE:
                r = write_new_file(pfd, name, e->contents, e->mode);
                break;
        case ROOTFS_COPY: {
                _cleanup_close_ int src = open(e->target, O_RDONLY | O_CLOEXEC);
                _cleanup_free_ char *data = NULL;
                size_t size;
                if (src >= 0 && config_read_fd(src, &data, &size) >= 0)
                        r = write_new_file(pfd, name, data, e->mode);
                else
                        r = write_new_file(pfd, name, "# The host has no resolver configuration.\n", e->mode);
                break;
        }
        case ROOTFS_RESOLVERS: {
                _cleanup_free_ char *paths = strdup(e->target), *text = NULL;
                const char *list[8] = {};
                size_t n = 0;
                for (char *save = NULL, *t = paths ? strtok_r(paths, ":", &save) : NULL; t && n < ELEMENTSOF(list) - 1;
                     t = strtok_r(NULL, ":", &save))
                        list[n++] = t;
                r = !paths ? -ENOMEM : network_resolv_conf_from(list, &text);
                if (r >= 0)
                        r = write_new_file(pfd, name, text, e->mode);
                break;
        }
        case ROOTFS_CA_BUNDLE: {
                StrBuf all = {};
                _cleanup_free_ char *files = strdup(e->contents), *text = NULL;
                /* The closure's bundle is optional: a package set without cacert. */
                r = files ? ca_bundle_append(&all, e->target, true) : -ENOMEM;
                for (char *save = NULL, *t = files ? strtok_r(files, "\n", &save) : NULL; r >= 0 && t; t = strtok_r(NULL, "\n", &save))
                        r = ca_bundle_append(&all, t, false);
                if (r < 0)
                        strbuf_done(&all);
                else if ((r = strbuf_steal(&all, &text)) >= 0)
                        r = write_new_file(pfd, name, text, e->mode);
                break;
        }
        case ROOTFS_BIND_RO:
        case ROOTFS_BIND_RW: {
                struct stat st;
                /* A mount point of the source's kind; nspawn binds onto it. */
                if (stat(e->target, &st) < 0)
                        r = -errno;
                else if (S_ISDIR(st.st_mode))
                        r = make_dir(pfd, name, 0755, false);
                else {
                        _cleanup_close_ int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
                        if (fd < 0)
                                r = -errno;
                }
                break;
        }
        default:
                r = -EINVAL;
        }
        /* The parent was resolved along no link and the name is not followed. */
        if (r >= 0 && e->user_owned && fchownat(pfd, name, p->uid, p->gid, AT_SYMLINK_NOFOLLOW) < 0)
                r = -errno;
        return r;
}

int rootfs_apply(const RootfsPlan *p, int rootfd, char **ret_path) {
        *ret_path = NULL;
        for (size_t i = 0; i < p->n_entries; i++) {
                int r = apply_entry(p, &p->entries[i], rootfd);
                if (r < 0) {
                        *ret_path = strdup(p->entries[i].path);
                        return r;
                }
        }
        return 0;
}
