/* projectaudit.c: the project as git and exec() will see it after a cage:
 * git directories, the files in them that name commands, set-id files.
 * Recorded at the start, compared at the end by identity (device, inode,
 * ctime: no content is read, and ctime cannot be set from userspace), and
 * what changed is made harmless by a rename in place or a chmod. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "pathfd.h"
#include "projectaudit.h"
#include "util.h"

#define SNAPSHOT_HEADER "nspawn-cage project audit 1 git="
#define CAPS_XATTR "security.capability"

typedef enum EntryKind {
        ENTRY_GIT = 'g',        /* an entry named .git */
        ENTRY_GIT_DIR = 'd',    /* a directory git takes for a git directory */
        ENTRY_SURFACE = 's',    /* config, config.worktree, commondir, hooks, hooks/X of one */
        ENTRY_PRIVILEGED = 'p', /* a set-uid, set-gid or capability file of the user */
} EntryKind;

typedef struct Entry {
        char kind;
        dev_t dev;
        ino_t ino;
        mode_t mode;
        int64_t ctime_sec;
        long ctime_nsec;
        bool caps;
        char *path; /* relative to the project; "." for the project itself */
} Entry;

typedef struct Walk {
        Entry *e;
        size_t n, cap;
        const ProjectAuditOptions *o;
        unsigned long entries, max_entries;
        unsigned max_depth;
        bool truncated;
} Walk;

static void walk_done(Walk *w) {
        for (size_t i = 0; i < w->n; i++)
                free(w->e[i].path);
        free(w->e);
        *w = (Walk) {};
}

void project_audit_report_done(ProjectAuditReport *r) {
        strv_free(r->neutralised);
        strv_free(r->failed);
        strv_free(r->moved);
        *r = (ProjectAuditReport) {};
}

/* One path component or a path below dfd: no link, no mount crossed. */
static int open_beneath(int dfd, const char *path, int flags) {
        return path_open_nofollow(dfd, path, (uint64_t) flags, RESOLVE_BENEATH | RESOLVE_NO_XDEV);
}

static char *join(const char *dir, const char *name) {
        return isempty(dir) || streq(dir, ".") ? strdup(name) : strdup_printf("%s/%s", dir, name);
}

static bool path_is_under(const char *path, const char *top) {
        const char *rest = startswith(path, top);
        return rest && (*rest == 0 || *rest == '/');
}

static int add(Walk *w, char kind, const struct stat *st, bool caps, char *path /* taken */) {
        if (!path)
                return -ENOMEM;
        if (w->n == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 64;
                Entry *e = realloc(w->e, cap * sizeof *e);
                if (!e) {
                        free(path);
                        return -ENOMEM;
                }
                w->e = e;
                w->cap = cap;
        }
        w->e[w->n++] = (Entry) { .kind = kind, .dev = st->st_dev, .ino = st->st_ino, .mode = st->st_mode,
                                 .ctime_sec = st->st_ctim.tv_sec, .ctime_nsec = st->st_ctim.tv_nsec, .caps = caps,
                                 .path = path };
        return 0;
}

/* Does dfd/name carry file capabilities? Through the directory's fd: the
 * last component is not followed (lgetxattr). */
static bool has_caps(int dfd, const char *name) {
        char p[64 + NAME_MAX];
        snprintf(p, sizeof p, "/proc/self/fd/%d/%s", dfd, name);
        return lgetxattr(p, CAPS_XATTR, NULL, 0) >= 0;
}

/* In a git directory: what makes git run a command or read another git
 * directory's. */
static int walk_surface(Walk *w, int dfd, const char *rel) {
        static const char *const names[] = { "config", "config.worktree", "commondir", "hooks" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                struct stat st;
                if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                _cleanup_free_ char *path = join(rel, names[i]);
                int r = add(w, ENTRY_SURFACE, &st, false, path ? strdup(path) : NULL);
                if (r < 0)
                        return r;
                if (!S_ISDIR(st.st_mode))
                        continue;
                int hfd = open_beneath(dfd, names[i], O_RDONLY | O_DIRECTORY);
                DIR *d = hfd >= 0 ? fdopendir(hfd) : NULL;
                if (!d) {
                        if (hfd >= 0)
                                close(hfd);
                        continue; /* a mount point: not the cage's */
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        if ((r = add(w, ENTRY_SURFACE, &st, false, join(path, de->d_name))) < 0)
                                break;
                }
                closedir(d);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Options' only=: a directory on the way to, or below, one of them. */
static bool walk_wanted(const Walk *w, const char *child) {
        for (size_t i = 0; w->o->only && w->o->only[i]; i++)
                if (path_is_under(child, w->o->only[i]) || path_is_under(w->o->only[i], child))
                        return true;
        return !w->o->only;
}

static int walk_dir(Walk *w, int dfd /* taken */, const char *rel, unsigned depth) {
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        bool head = false, objects = false, refs = false, commondir = false;
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                const char *name = de->d_name;
                if (streq(name, ".") || streq(name, ".."))
                        continue;
                if (++w->entries > w->max_entries) {
                        w->truncated = true;
                        break;
                }
                head = head || streq(name, "HEAD");
                objects = objects || streq(name, "objects");
                refs = refs || streq(name, "refs");
                commondir = commondir || streq(name, "commondir");
                bool dot_git = streq(name, ".git");
                struct stat st;
                if (de->d_type == DT_DIR && !dot_git)
                        st.st_mode = S_IFDIR;
                else if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* gone meanwhile */
                if (dot_git && w->o->git && (r = add(w, ENTRY_GIT, &st, false, join(rel, name))) < 0)
                        break;
                if (S_ISREG(st.st_mode) && st.st_uid == w->o->uid) {
                        bool caps = has_caps(dirfd(d), name);
                        if ((st.st_mode & (S_ISUID | S_ISGID)) || caps)
                                r = add(w, ENTRY_PRIVILEGED, &st, caps, join(rel, name));
                        continue;
                }
                if (!S_ISDIR(st.st_mode))
                        continue;
                _cleanup_free_ char *child = join(rel, name);
                if (!child) {
                        r = -ENOMEM;
                        break;
                }
                if (!walk_wanted(w, child))
                        continue;
                if (depth + 1 >= w->max_depth) {
                        w->truncated = true;
                        continue;
                }
                int cfd = open_beneath(dirfd(d), name, O_RDONLY | O_DIRECTORY);
                if (cfd < 0)
                        continue; /* a mount point (not the cage's: it cannot mount here), or gone */
                r = walk_dir(w, cfd, child, depth + 1);
        }
        if (r >= 0 && w->o->git && head && (objects || refs || commondir)) {
                struct stat st;
                if (fstat(dirfd(d), &st) < 0)
                        r = -errno;
                else if ((r = add(w, ENTRY_GIT_DIR, &st, false, strdup(isempty(rel) ? "." : rel))) >= 0)
                        r = walk_surface(w, dirfd(d), rel);
        }
        closedir(d);
        return r;
}

static int walk_project(int project_fd, const ProjectAuditOptions *o, Walk *w) {
        *w = (Walk) { .o = o, .max_entries = o->max_entries ? o->max_entries : PROJECT_AUDIT_MAX_ENTRIES,
                      .max_depth = o->max_depth ? o->max_depth : PROJECT_AUDIT_MAX_DEPTH };
        int fd = open_beneath(project_fd, ".", O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        int r = walk_dir(w, fd, "", 0);
        if (r < 0)
                walk_done(w);
        return r;
}

/* Paths in the record: bytes up to space, DEL and '%' as %XX. */
static void append_escaped(StrBuf *b, const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p <= ' ' || *p == 0x7f || *p == '%')
                        strbuf_appendf(b, "%%%02X", *p);
                else
                        strbuf_appendn(b, (const char *) p, 1);
        }
}

static char *unescape(const char *s) {
        char *out = malloc(strlen(s) + 1), *o = out;
        if (!out)
                return NULL;
        for (; *s; s++) {
                unsigned v;
                if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1 && s[1] && s[2]) {
                        *o++ = (char) v;
                        s += 2;
                } else
                        *o++ = *s;
        }
        *o = 0;
        return out;
}

int project_audit_snapshot(int project_fd, const ProjectAuditOptions *o, char **ret_text, bool *ret_truncated) {
        Walk w;
        int r = walk_project(project_fd, o, &w);
        if (r < 0)
                return r;
        StrBuf b = {};
        strbuf_appendf(&b, SNAPSHOT_HEADER "%d\n", o->git);
        for (size_t i = 0; i < w.n; i++) {
                const Entry *e = &w.e[i];
                strbuf_appendf(&b, "%c %" PRIu64 " %" PRIu64 " %o %" PRId64 " %ld %d ", e->kind, (uint64_t) e->dev, (uint64_t) e->ino,
                               (unsigned) e->mode, e->ctime_sec, e->ctime_nsec, e->caps);
                append_escaped(&b, e->path);
                strbuf_append(&b, "\n");
        }
        bool truncated = w.truncated;
        walk_done(&w);
        if ((r = strbuf_steal(&b, ret_text)) < 0)
                return r;
        if (ret_truncated)
                *ret_truncated = truncated;
        return 0;
}

static int parse_snapshot(const char *text, Walk *ret, bool *ret_git) {
        Walk w = {};
        const char *p = startswith(text, SNAPSHOT_HEADER);
        if (!p || (p[0] != '0' && p[0] != '1') || p[1] != '\n')
                return -EBADMSG;
        *ret_git = p[0] == '1';
        p += 2;
        while (*p) {
                const char *nl = strchr(p, '\n');
                if (!nl)
                        return walk_done(&w), -EBADMSG;
                _cleanup_free_ char *line = strndup(p, (size_t) (nl - p));
                p = nl + 1;
                if (!line)
                        return walk_done(&w), -ENOMEM;
                char kind;
                uint64_t dev, ino;
                unsigned mode;
                int64_t sec;
                long nsec;
                int caps, n = 0;
                if (sscanf(line, "%c %" SCNu64 " %" SCNu64 " %o %" SCNd64 " %ld %d %n", &kind, &dev, &ino, &mode, &sec, &nsec, &caps, &n) != 7 ||
                    n == 0 || !line[n] || !strchr("gdsp", kind))
                        return walk_done(&w), -EBADMSG;
                struct stat st = { .st_dev = (dev_t) dev, .st_ino = (ino_t) ino, .st_mode = (mode_t) mode,
                                   .st_ctim = { .tv_sec = (time_t) sec, .tv_nsec = nsec } };
                int r = add(&w, kind, &st, caps, unescape(line + n));
                if (r < 0)
                        return walk_done(&w), r;
        }
        *ret = w;
        return 0;
}

/* By path; at one path a .git before the git directory it is, before the rest. */
static int kind_rank(char k) { return k == ENTRY_GIT ? 0 : k == ENTRY_GIT_DIR ? 1 : k == ENTRY_SURFACE ? 2 : 3; }

/* '/' before any other byte: what lies below a path follows it directly
 * ("a/.git", "a/.git/x", "a/.git-old"). */
static int path_cmp(const char *a, const char *b) {
        for (;; a++, b++) {
                unsigned char x = *a == '/' ? 1 : (unsigned char) *a, y = *b == '/' ? 1 : (unsigned char) *b;
                if (x != y || !x)
                        return x - y;
        }
}

static int entry_cmp(const void *a, const void *b) {
        const Entry *x = a, *y = b;
        int c = path_cmp(x->path, y->path);
        return c ? c : kind_rank(x->kind) - kind_rank(y->kind);
}

/* Is e (found now, at then_path in the snapshot) what the snapshot holds
 * there? Directories by identity (their ctime changes with every entry
 * made in them), the rest by identity and ctime (any write, chmod, rename
 * or link changes it, and userspace cannot set it). */
static bool unchanged(const Walk *then, const Entry *e, const char *then_path) {
        Entry key = *e;
        key.path = (char *) then_path;
        const Entry *t = bsearch(&key, then->e, then->n, sizeof key, entry_cmp);
        if (!t || t->dev != e->dev || t->ino != e->ino || (t->mode & S_IFMT) != (e->mode & S_IFMT))
                return false;
        if (S_ISDIR(e->mode))
                return true;
        return t->ctime_sec == e->ctime_sec && t->ctime_nsec == e->ctime_nsec && t->mode == e->mode;
}

static int report(char ***l, const char *fmt, ...) _printf_(2, 3);
static int report(char ***l, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        int k = vasprintf(&s, fmt, ap);
        va_end(ap);
        return k < 0 ? -ENOMEM : strv_push(l, s);
}

/* The directory holding path, and path's last component. */
static int open_parent(int project_fd, const char *path, const char **ret_base) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = slash ? strndup(path, (size_t) (slash - path)) : strdup(".");
        if (!dir)
                return -ENOMEM;
        *ret_base = slash ? slash + 1 : path;
        return open_beneath(project_fd, dir, O_PATH | O_DIRECTORY);
}

/* Rename e (or, for a git directory, its HEAD) to NAME.nspawn-cage-quarantine-TAG
 * in the same directory: git looks for none of these names. */
static int quarantine(int project_fd, const ProjectAuditOptions *o, const Entry *e, const char *tag, const char *why,
                      ProjectAuditReport *rep) {
        _cleanup_free_ char *path = e->kind == ENTRY_GIT_DIR ? join(e->path, "HEAD") : strdup(e->path);
        if (!path)
                return -ENOMEM;
        const char *base;
        _cleanup_close_ int pfd = open_parent(project_fd, path, &base);
        struct stat st;
        if (pfd < 0)
                return report(&rep->failed, "%s: %s", path, strerror(-pfd));
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return report(&rep->failed, "%s: %s", path, strerror(errno));
        if (e->kind != ENTRY_GIT_DIR && (st.st_dev != e->dev || st.st_ino != e->ino))
                return report(&rep->failed, "%s: changed while it was checked", path);
        if (st.st_uid != o->uid)
                return report(&rep->failed, "%s: not the user's, left alone", path);
        _cleanup_free_ char *name = strdup_printf("%s" PROJECT_AUDIT_QUARANTINE "%s", base, tag);
        if (!name || strlen(name) > NAME_MAX)
                return name ? report(&rep->failed, "%s: the quarantine name would be too long", path) : -ENOMEM;
        if (renameat2(pfd, base, pfd, name, RENAME_NOREPLACE) < 0)
                return report(&rep->failed, "%s: %s", path, strerror(errno));
        const char *slash = strrchr(path, '/');
        return report(&rep->neutralised, "%s -> %.*s%s (%s)", path, slash ? (int) (slash - path + 1) : 0, path, name, why);
}

/* Drop S_ISUID, S_ISGID and file capabilities of e, on the file the walk saw. */
static int strip(int project_fd, const ProjectAuditOptions *o, const Entry *e, ProjectAuditReport *rep) {
        _cleanup_close_ int fd = open_beneath(project_fd, e->path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
        struct stat st;
        if (fd < 0)
                return report(&rep->failed, "%s: %s", e->path, strerror(-fd));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != e->dev || st.st_ino != e->ino || st.st_uid != o->uid)
                return report(&rep->failed, "%s: changed while it was checked", e->path);
        mode_t mode = st.st_mode & 07777, safe = mode & ~(mode_t) (S_ISUID | S_ISGID);
        if (safe != mode && fchmod(fd, safe) < 0)
                return report(&rep->failed, "%s: chmod %04o: %s", e->path, (unsigned) safe, strerror(errno));
        bool caps = fgetxattr(fd, CAPS_XATTR, NULL, 0) >= 0;
        /* Without CAP_SETFCAP, a chown to nobody new drops them too (the kernel's killpriv). */
        if (caps && fremovexattr(fd, CAPS_XATTR) < 0 && errno != ENODATA)
                (void) fchown(fd, (uid_t) -1, (gid_t) -1);
        if (caps && fgetxattr(fd, CAPS_XATTR, NULL, 0) >= 0)
                return report(&rep->failed, "%s: its file capabilities could not be removed", e->path);
        if (safe != mode && caps)
                return report(&rep->neutralised, "%s: set-id bits and file capabilities removed (%04o -> %04o)", e->path, (unsigned) mode, (unsigned) safe);
        if (safe != mode)
                return report(&rep->neutralised, "%s: %s removed (%04o -> %04o)", e->path,
                              (mode & S_ISUID) && (mode & S_ISGID) ? "set-uid and set-gid bits" : mode & S_ISUID ? "set-uid bit" : "set-gid bit",
                              (unsigned) mode, (unsigned) safe);
        return caps ? report(&rep->neutralised, "%s: file capabilities removed", e->path) : 0;
}

/* The git side of the check (see project_audit_check). */
static int neutralise_git(int project_fd, const ProjectAuditOptions *o, const Walk *then, const Walk *now, const char *tag,
                          ProjectAuditReport *rep) {
        /* A .git that is new or another: renamed whole (below, deepest
         * first), nothing in it looked at. A directory that turned into a
         * git directory: its HEAD renamed, so git no longer takes it for
         * one. A file that names commands, new or changed: renamed. A git
         * directory of the start found at another path (the agent moved it):
         * reported, and what is in it compared with what was there. */
        _cleanup_free_ bool *renamed = calloc(now->n + 1, sizeof(bool));
        const char *gone = NULL, *moved_to = NULL, *moved_from = NULL;
        int r = renamed ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < now->n; i++) {
                const Entry *e = &now->e[i];
                if (e->kind == ENTRY_PRIVILEGED || (gone && path_is_under(e->path, gone)))
                        continue;
                _cleanup_free_ char *then_path = NULL;
                if (moved_to && path_is_under(e->path, moved_to) &&
                    !(then_path = strdup_printf("%s%s", moved_from, e->path + strlen(moved_to)))) {
                        r = -ENOMEM;
                        break;
                }
                if (unchanged(then, e, then_path ? then_path : e->path))
                        continue;
                if (e->kind == ENTRY_GIT) {
                        renamed[i] = true;
                        gone = e->path;
                        continue;
                }
                if (e->kind == ENTRY_GIT_DIR) {
                        const Entry *t = NULL;
                        for (size_t k = 0; !t && k < then->n; k++)
                                if (then->e[k].kind == ENTRY_GIT_DIR && then->e[k].dev == e->dev && then->e[k].ino == e->ino)
                                        t = &then->e[k];
                        if (t) {
                                moved_to = e->path;
                                moved_from = t->path;
                                r = report(&rep->moved, "%s (was %s)", e->path, t->path);
                                continue;
                        }
                        if (!streq(e->path, "."))
                                gone = e->path;
                        r = quarantine(project_fd, o, e, tag, "a git directory that was not there when the cage started", rep);
                        continue;
                }
                if (S_ISDIR(e->mode))
                        gone = e->path;
                r = quarantine(project_fd, o, e, tag, "new or changed in the cage; git runs what it names", rep);
        }
        for (size_t i = now->n; r >= 0 && i-- > 0;)
                if (renamed[i])
                        r = quarantine(project_fd, o, &now->e[i], tag,
                                       S_ISDIR(now->e[i].mode) ? "a git repository that was not there when the cage started"
                                                              : "a .git that was not there when the cage started", rep);
        return r;
}

int project_audit_check(int project_fd, const ProjectAuditOptions *o, const char *snapshot, const char *tag,
                        ProjectAuditReport *ret) {
        if (isempty(tag) || strchr(tag, '/'))
                return -EINVAL;
        Walk then = {}, now = {};
        ProjectAuditReport rep = {};
        ProjectAuditOptions as_started = *o;
        int r = parse_snapshot(snapshot, &then, &as_started.git);
        if (r < 0)
                return r;
        o = &as_started;
        if ((r = walk_project(project_fd, o, &now)) < 0) {
                walk_done(&then);
                return r;
        }
        qsort(then.e, then.n, sizeof *then.e, entry_cmp);
        qsort(now.e, now.n, sizeof *now.e, entry_cmp); /* a path sorts before what lies below it */

        /* Set-id and capability files first, while their paths hold. */
        for (size_t i = 0; r >= 0 && i < now.n; i++)
                if (now.e[i].kind == ENTRY_PRIVILEGED && !unchanged(&then, &now.e[i], now.e[i].path))
                        r = strip(project_fd, o, &now.e[i], &rep);

        if (r >= 0)
                r = neutralise_git(project_fd, o, &then, &now, tag, &rep);
        rep.truncated = now.truncated;
        rep.entries = now.entries;
        walk_done(&then);
        walk_done(&now);
        if (r < 0) {
                project_audit_report_done(&rep);
                return r;
        }
        *ret = rep;
        return 0;
}
