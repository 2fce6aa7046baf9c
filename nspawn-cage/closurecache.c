/* closurecache.c: reusing a top-level store path without evaluating Nix
 * (closurecache.h). An entry is used only when the key computed now, from
 * what Nix would read, is byte for byte the one it was built from; anything
 * without an identity that cannot be forged (an unlocked flake, a nix-path
 * from nix.conf) is never cached. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "closurecache.h"
#include "state.h"
#include "sha256.h"
#include "spec.h"

#define KEY_VERSION "nspawn-cage-closure-cache=1"
#define KEY_MAX (64 * 1024)
#define ROOT_HOME "/root" /* closure.c runs Nix with HOME=/root */
#define NIX_STATE "/nix/var/nix"

void closure_key_done(ClosureKey *k) {
        free(k->text);
        free(k->uncacheable);
        *k = (ClosureKey) {};
}

/* ---- the identity of a plain directory ---- */

typedef struct TreeWalk {
        Sha256 sha;
        unsigned entries;
} TreeWalk;

static void hash_stat(Sha256 *c, const char *rel, const struct stat *st) {
        char buf[256];
        int n = snprintf(buf, sizeof(buf), " %o %u %u %lld %llu %llu %lld.%09ld %lld.%09ld\n", (unsigned) st->st_mode, (unsigned) st->st_uid,
                         (unsigned) st->st_gid, (long long) st->st_size, (unsigned long long) st->st_dev, (unsigned long long) st->st_ino,
                         (long long) st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long) st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
        sha256_update(c, rel, strlen(rel) + 1);
        sha256_update(c, buf, (size_t) n);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

/* Names of dfd's entries, sorted (readdir's order may change). */
static int list_sorted(int dfd, char ***ret) {
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        _cleanup_strv_free_ char **l = NULL;
        struct dirent *de;
        int r = 0;
        while (r >= 0 && (errno = 0, de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        r = strv_extend(&l, de->d_name);
        if (r >= 0 && errno)
                r = -errno;
        closedir(d);
        if (r < 0)
                return r;
        if (l)
                qsort(l, strv_length(l), sizeof(char *), cmp_str);
        *ret = TAKE_PTR(l);
        return 0;
}

/* Every entry below dfd, following no link: its name, stat (ctime included,
 * which only the clock sets) and, for a link, its text and its target's
 * stat. `.git` is left out: evaluation does not read it. */
static int walk_tree(TreeWalk *w, int dfd, const char *rel, unsigned depth) {
        if (depth > CLOSURE_CACHE_TREE_MAX_DEPTH)
                return -E2BIG;
        _cleanup_strv_free_ char **names = NULL;
        int r = list_sorted(dfd, &names);
        if (r < 0)
                return r;
        for (size_t i = 0; names && names[i]; i++) {
                if (++w->entries > CLOSURE_CACHE_TREE_MAX_ENTRIES)
                        return -E2BIG;
                if (streq(names[i], ".git"))
                        continue;
                _cleanup_free_ char *path = strdup_printf("%s/%s", rel, names[i]);
                struct stat st;
                if (!path)
                        return -ENOMEM;
                if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                hash_stat(&w->sha, path, &st);
                if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(dfd, names[i], target, sizeof(target) - 1);
                        if (n < 0)
                                return -errno;
                        sha256_update(&w->sha, target, (size_t) n);
                        if (fstatat(dfd, names[i], &st, 0) == 0)
                                hash_stat(&w->sha, "->", &st);
                } else if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (sub < 0)
                                return -errno;
                        if ((r = walk_tree(w, sub, path, depth + 1)) < 0)
                                return r;
                }
        }
        return 0;
}

static int tree_identity(const char *dir, char **ret) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        TreeWalk w = {};
        struct stat st;
        sha256_init(&w.sha);
        if (fstat(fd, &st) < 0)
                return -errno;
        hash_stat(&w.sha, ".", &st);
        int r = walk_tree(&w, fd, ".", 0);
        if (r < 0)
                return r;
        char hex[65];
        sha256_final_hex(&w.sha, hex);
        return (*ret = strdup_printf("tree:%s:%s", dir, hex)) ? 0 : -ENOMEM;
}

/* ---- Nixpkgs= ---- */

static bool is_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdef", s[i]))
                        return false;
        return true;
}

/* A flake reference names one immutable tree when it carries its revision
 * or its content hash. */
static bool flake_is_locked(const char *ref) {
        if (strstr(ref, "narHash="))
                return true;
        for (const char *p = ref; (p = strstr(p, "rev=")); p++)
                if (p > ref && (p[-1] == '?' || p[-1] == '&') && is_hex(p + 4, 40) && (p[44] == 0 || p[44] == '&'))
                        return true;
        /* github:OWNER/REPO/REV and the like */
        const char *colon = strchr(ref, ':');
        if (colon && !strchr(ref, '?') && (startswith(ref, "github:") || startswith(ref, "gitlab:") || startswith(ref, "sourcehut:"))) {
                const char *last = strrchr(colon, '/');
                if (last && last != strchr(colon, '/') && strlen(last + 1) == 40 && is_hex(last + 1, 40))
                        return true;
        }
        return false;
}

/* Where Nix, run as closure.c runs it (no NIX_PATH, HOME=/root), finds
 * <spec>: its default search path. A nix-path of nix.conf is not followed. */
static int channel_path(const char *spec, char **ret, char **ret_why_not) {
        _cleanup_close_ int conf = open("/etc/nix/nix.conf", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        _cleanup_free_ char *data = NULL;
        size_t size;
        if (conf >= 0 && read_regular_fd(conf, 1024 * 1024, &data, &size) >= 0 && strstr(data, "nix-path"))
                return (*ret_why_not = strdup("/etc/nix/nix.conf sets nix-path, which nspawn-cage does not resolve")) ? -ENOENT : -ENOMEM;
        size_t n = strcspn(spec, "/");
        _cleanup_free_ char *first = strndup(spec, n);
        if (!first)
                return -ENOMEM;
        const char *rest = spec + n;
        char *cands[3] = {
                strdup_printf("%s/.nix-defexpr/channels/%s%s", ROOT_HOME, first, rest),
                streq(first, "nixpkgs") ? strdup_printf("%s/profiles/per-user/root/channels/nixpkgs%s", NIX_STATE, rest) : NULL,
                strdup_printf("%s/profiles/per-user/root/channels/%s%s", NIX_STATE, first, rest),
        };
        int r = -ENOENT;
        for (size_t i = 0; i < ELEMENTSOF(cands); i++) {
                if (r == -ENOENT && cands[i] && access(cands[i], F_OK) == 0) {
                        *ret = cands[i];
                        cands[i] = NULL;
                        r = 0;
                }
                free(cands[i]);
        }
        if (r == -ENOENT && !(*ret_why_not = strdup_printf("<%s> is not found in root's channels", spec)))
                return -ENOMEM;
        return r;
}

int closure_nixpkgs_identity(const char *nixpkgs, char **ret_identity, char **ret_why_not) {
        _cleanup_free_ char *found = NULL, *real = NULL;
        const char *path = nixpkgs;
        size_t l = strlen(nixpkgs);
        int r;
        *ret_why_not = NULL;
        if (nixpkgs[0] == '<' && l > 2 && nixpkgs[l - 1] == '>') {
                _cleanup_free_ char *spec = strndup(nixpkgs + 1, l - 2);
                if (!spec)
                        return -ENOMEM;
                if ((r = channel_path(spec, &found, ret_why_not)) < 0)
                        return r == -ENOENT ? 0 : r;
                path = found;
        } else if (nixpkgs[0] != '/') {
                if (!flake_is_locked(nixpkgs))
                        return (*ret_why_not = strdup("a flake reference without rev= or narHash= is not locked")) ? 0 : -ENOMEM;
                return (*ret_identity = strdup_printf("flake:%s", nixpkgs)) ? 0 : -ENOMEM;
        }
        if (!(real = realpath(path, NULL)))
                return (*ret_why_not = strdup_printf("%s: %s", path, strerror(errno))) ? 0 : -ENOMEM;
        /* Store paths do not change; a channel's link does, and was followed. */
        if (startswith(real, "/nix/store/") && store_path_is_valid(strndupa(real, strcspn(real + 11, "/") + 11)))
                return (*ret_identity = strdup_printf("store:%s", real)) ? 0 : -ENOMEM;
        struct stat st;
        if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
                return (*ret_why_not = strdup_printf("%s is not a directory", real)) ? 0 : -ENOMEM;
        r = tree_identity(real, ret_identity);
        if (r == -E2BIG)
                return (*ret_why_not = strdup_printf("%s has more than %u entries or is deeper than %u directories", real,
                                                     CLOSURE_CACHE_TREE_MAX_ENTRIES, CLOSURE_CACHE_TREE_MAX_DEPTH)) ? 0 : -ENOMEM;
        if (r < 0)
                return (*ret_why_not = strdup_printf("%s: %s", real, strerror(-r))) ? 0 : -ENOMEM;
        return 0;
}

/* ---- the key ---- */

static int file_sha256(const char *path, char hex[65]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return -errno;
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = read_regular_fd(fd, 16 * 1024 * 1024, &data, &size);
        if (r < 0)
                return r;
        Sha256 c;
        sha256_init(&c);
        sha256_update(&c, data, size);
        sha256_final_hex(&c, hex);
        return 0;
}

int closure_cache_key(const ClosureRequest *req, ClosureKey *ret, CageError *err) {
        _cleanup_free_ char *expr = strdup_printf("%s/nix/cage.nix", req->data_dir), *identity = NULL, *why = NULL;
        StrBuf pk = {}, t = {};
        char nixhash[65];
        int r;
        if (!expr)
                return cage_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; req->packages && req->packages[i]; i++) {
                if (!package_name_is_valid(req->packages[i])) {
                        strbuf_done(&pk);
                        return cage_error_set(err, -EINVAL, "package name %s is not valid", req->packages[i]);
                }
                strbuf_appendf(&pk, "%s%s", i ? " " : "", req->packages[i]);
        }
        _cleanup_free_ char *packages = NULL;
        if (strbuf_steal(&pk, &packages) < 0)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if ((r = file_sha256(expr, nixhash)) < 0)
                return cage_error_set(err, r, "%s: %s", expr, strerror(-r));
        if ((r = closure_nixpkgs_identity(req->nixpkgs, &identity, &why)) < 0)
                return cage_error_set(err, r, "Nixpkgs=%s: %s", req->nixpkgs, strerror(-r));
        /* A value with a line break would make the key ambiguous. */
        if (strchr(req->nixpkgs, '\n') || strchr(req->data_dir, '\n')) {
                free(why);
                why = strdup("a line break in Nixpkgs= or the data directory");
        }
        strbuf_appendf(&t, "%s\nnixpkgs=%s\npackages=%s\ndata-dir=%s\nnixpkgs-identity=%s\ncage.nix=sha256:%s\n", KEY_VERSION, req->nixpkgs,
                       packages, req->data_dir, strempty(identity), nixhash);
        ClosureKey k = { .uncacheable = TAKE_PTR(why) };
        if (strbuf_steal(&t, &k.text) < 0) {
                closure_key_done(&k);
                return cage_error_set(err, -ENOMEM, "out of memory");
        }
        Sha256 c;
        sha256_init(&c);
        sha256_update(&c, k.text, strlen(k.text));
        sha256_final_hex(&c, k.hash);
        *ret = k;
        return 0;
}

/* ---- entries ---- */

static int read_entry_file(int dfd, const char *name, size_t max, char **ret) {
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        size_t size;
        return read_regular_fd(fd, max, ret, &size);
}

/* The entry's closure if it is whole: key, closure, root naming its first path. */
static int entry_read(int dfd, const char *want_key, bool check_store, char ***ret_paths) {
        _cleanup_free_ char *key = NULL, *list = NULL;
        _cleanup_strv_free_ char **paths = NULL;
        _cleanup_(cage_error_done) CageError e = {};
        char target[PATH_MAX];
        int r;
        if ((r = read_entry_file(dfd, "key", KEY_MAX, &key)) < 0)
                return r;
        if (want_key && !streq(key, want_key))
                return -ESTALE;
        if ((r = read_entry_file(dfd, "closure", CLOSURE_LIST_MAX, &list)) < 0 ||
            (r = closure_parse_list(list, strlen(list), &paths, &e)) < 0)
                return r;
        ssize_t n = readlinkat(dfd, "root", target, sizeof(target) - 1);
        if (n < 0)
                return -errno;
        target[n] = 0;
        if (!streq(target, paths[0]))
                return -ESTALE;
        for (size_t i = 0; check_store && paths[i]; i++)
                if (access(paths[i], F_OK) < 0)
                        return -ENOENT;
        *ret_paths = TAKE_PTR(paths);
        return 0;
}

int closure_cache_lookup(int cache_fd, const ClosureKey *k, bool check_store, char ***ret_paths, int *ret_lock_fd) {
        if (k->uncacheable)
                return -ENOENT;
        _cleanup_close_ int fd = -1;
        int r = state_private_dir_open(cache_fd, k->hash, false, &fd);
        if (r < 0)
                return r == -EPERM ? r : -ENOENT;
        if (flock(fd, LOCK_SH) < 0)
                return -errno;
        _cleanup_strv_free_ char **paths = NULL;
        if (entry_read(fd, k->text, check_store, &paths) < 0)
                return -ENOENT;
        (void) futimens(fd, NULL); /* used now: gc keeps it */
        *ret_paths = TAKE_PTR(paths);
        *ret_lock_fd = TAKE_FD(fd);
        return 0;
}

int closure_cache_build(int cache_fd, const char *cache_path, const ClosureRequest *req, const ClosureKey *k, char ***ret_paths,
                        int *ret_lock_fd, char **ret_previous, CageError *err) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *root = strdup_printf("%s/%s/root", cache_path, k->hash), *list = NULL;
        _cleanup_strv_free_ char **paths = NULL;
        char previous[PATH_MAX];
        int r;
        if (!root)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if (k->uncacheable)
                return cage_error_set(err, -EINVAL, "not cacheable: %s", k->uncacheable);
        if ((r = state_private_dir_open(cache_fd, k->hash, true, &fd)) < 0)
                return cage_error_set(err, r, "%s/%s: %s", cache_path, k->hash, strerror(-r));
        if (flock(fd, LOCK_EX) < 0)
                return cage_error_set(err, -errno, "%s/%s: %s", cache_path, k->hash, strerror(errno));
        ssize_t n = readlinkat(fd, "root", previous, sizeof(previous) - 1);
        previous[n > 0 ? n : 0] = 0;
        /* Half-made until the closure is written again. */
        if (unlinkat(fd, "closure", 0) < 0 && errno != ENOENT)
                return cage_error_set(err, -errno, "%s/%s/closure: %s", cache_path, k->hash, strerror(errno));
        if ((r = closure_realise(req, root, &paths, err)) < 0)
                return r;
        StrBuf b = {};
        for (size_t i = 0; paths[i]; i++)
                strbuf_appendf(&b, "%s\n", paths[i]);
        if (strbuf_steal(&b, &list) < 0)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if ((r = write_file_atomic_at(fd, "key", k->text, 0600)) < 0 || (r = write_file_atomic_at(fd, "closure", list, 0600)) < 0)
                return cage_error_set(err, r, "%s/%s: writing the entry: %s", cache_path, k->hash, strerror(-r));
        if (flock(fd, LOCK_SH) < 0)
                return cage_error_set(err, -errno, "%s/%s: %s", cache_path, k->hash, strerror(errno));
        _cleanup_free_ char *prev = previous[0] && !streq(previous, paths[0]) ? strdup(previous) : NULL;
        if (previous[0] && !streq(previous, paths[0]) && !prev)
                return cage_error_set(err, -ENOMEM, "out of memory");
        *ret_previous = TAKE_PTR(prev);
        *ret_paths = TAKE_PTR(paths);
        *ret_lock_fd = TAKE_FD(fd);
        return 0;
}

/* The inputs an entry records, its key computed again from them now. */
static bool entry_fresh(const char *key) {
        _cleanup_free_ char *copy = strdup(key);
        const char *nixpkgs = NULL, *packages = NULL, *data_dir = NULL;
        char *save = NULL;
        if (!copy)
                return true; /* keep it, not knowing */
        for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                const char *v;
                if ((v = startswith(l, "nixpkgs=")))
                        nixpkgs = v;
                else if ((v = startswith(l, "packages=")))
                        packages = v;
                else if ((v = startswith(l, "data-dir=")))
                        data_dir = v;
        }
        if (!nixpkgs || !packages || !data_dir || !startswith(key, KEY_VERSION "\n"))
                return false;
        _cleanup_strv_free_ char **pk = NULL;
        _cleanup_free_ char *pcopy = strdup(packages);
        char *psave = NULL;
        for (char *p = pcopy ? strtok_r(pcopy, " ", &psave) : NULL; p; p = strtok_r(NULL, " ", &psave))
                if (strv_extend(&pk, p) < 0)
                        return true;
        ClosureRequest req = { .nixpkgs = nixpkgs, .packages = pk, .data_dir = data_dir };
        _cleanup_(closure_key_done) ClosureKey k = {};
        _cleanup_(cage_error_done) CageError e = {};
        if (closure_cache_key(&req, &k, &e) < 0)
                return false; /* cage.nix or the package set is gone */
        return !k.uncacheable && streq(k.text, key);
}

int closure_cache_gc(int cache_fd, char *const *in_use, uint64_t max_idle_usec, unsigned *ret_removed, CageError *err) {
        _cleanup_strv_free_ char **names = NULL;
        unsigned removed = 0;
        int ret = 0, r = list_sorted(cache_fd, &names);
        if (r < 0)
                return cage_error_set(err, r, "%s: %s", CLOSURE_CACHE_DIR, strerror(-r));
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_close_ int fd = -1;
                if (state_private_dir_open(cache_fd, names[i], false, &fd) < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue; /* not ours, or a start uses it */
                _cleanup_strv_free_ char **paths = NULL;
                _cleanup_free_ char *key = NULL;
                char target[PATH_MAX];
                struct stat st;
                ssize_t n = readlinkat(fd, "root", target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = 0;
                if (n > 0 && strv_contains(in_use, target))
                        continue;
                bool drop = entry_read(fd, NULL, true, &paths) < 0 || read_entry_file(fd, "key", KEY_MAX, &key) < 0 || fstat(fd, &st) < 0;
                if (!drop) {
                        uint64_t idle = (uint64_t) (now.tv_sec - st.st_mtim.tv_sec) * 1000000ULL;
                        drop = idle > max_idle_usec || !entry_fresh(key);
                }
                if (!drop)
                        continue;
                /* The root first: once it is gone, Nix may collect. */
                static const char *const files[] = { "root", "closure", "key" };
                for (size_t f = 0; f < ELEMENTSOF(files); f++)
                        if (unlinkat(fd, files[f], 0) < 0 && errno != ENOENT)
                                ret = cage_error_add(err, -errno, "%s/%s/%s: %s", CLOSURE_CACHE_DIR, names[i], files[f], strerror(errno));
                /* Leftovers of an interrupted atomic write. */
                _cleanup_strv_free_ char **rest = NULL;
                (void) list_sorted(fd, &rest);
                for (size_t f = 0; rest && rest[f]; f++)
                        (void) unlinkat(fd, rest[f], 0);
                if (unlinkat(cache_fd, names[i], AT_REMOVEDIR) < 0)
                        ret = cage_error_add(err, -errno, "%s/%s: %s", CLOSURE_CACHE_DIR, names[i], strerror(errno));
                else
                        removed++;
        }
        *ret_removed = removed;
        return ret;
}
