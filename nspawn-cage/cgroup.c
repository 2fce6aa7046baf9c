/* cgroup.c: reading the cgroup file system (and the kernel's log about
 * it). Limits themselves are set by systemd from unit properties (bus.c);
 * this only tells what happened. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cgroup.h"
#include "oomguard.h"
#include "config.h"
#include "util.h"

bool cgroup_is_unified(const char *root) {
        _cleanup_free_ char *p = strdup_printf("%s/sys/fs/cgroup", streq(root, "/") ? "" : root);
        struct statfs fs;
        return p && statfs(p, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

static int read_key(const char *file, const char *key, uint64_t *ret) {
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = config_read_fd(fd, &data, &size);
        if (r < 0)
                return r;
        return cgroup_keyed_value(data, key, ret);
}

int cgroup_keyed_value(const char *text, const char *key, uint64_t *ret) {
        size_t n = strlen(key);
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, key, n) == 0 && l[n] == ' ') {
                        *ret = strtoull(l + n + 1, NULL, 10);
                        return 0;
                }
        return -ENOENT;
}

int cgroup_oom_kills(const char *root, const char *path, uint64_t *ret) {
        if (!path || path[0] != '/' || strstr(path, ".."))
                return -EINVAL;
        const char *r0 = streq(root, "/") ? "" : root;
        _cleanup_free_ char *v2 = strdup_printf("%s/sys/fs/cgroup%s/memory.events", r0, path);
        _cleanup_free_ char *v1 = strdup_printf("%s/sys/fs/cgroup/memory%s/memory.oom_control", r0, path);
        if (!v2 || !v1)
                return -ENOMEM;
        if (!cgroup_is_unified(root))
                return read_key(v1, "oom_kill", ret);
        uint64_t n;
        int r = read_key(v2, "oom_kill", &n);
        if (r < 0)
                return r;
        /* and those of nspawn-cage's guard (oomguard.c) */
        char v[32] = "";
        _cleanup_free_ char *dir = strdup_printf("%s/sys/fs/cgroup%s", r0, path);
        ssize_t k = dir ? getxattr(dir, OOMGUARD_XATTR, v, sizeof v - 1) : -1;
        *ret = n + (k > 0 ? strtoull(v, NULL, 10) : 0);
        return 0;
}

void limit_hits_done(LimitHits *h) {
        strv_free(h->killed);
        *h = (LimitHits) {};
}

void limit_watch_done(LimitWatch *w) {
        free(w->path);
        if (w->kmsg_fd >= 0)
                close(w->kmsg_fd);
        *w = (LimitWatch) LIMIT_WATCH_NULL;
}

/* The value of `key` in text (up to ',' or the end), if it is `path` or
 * a cgroup below it. */
static bool names_cgroup(const char *text, size_t n, const char *key, const char *path) {
        const char *end = text + n;
        size_t k = strlen(key), p = strlen(path);
        for (const char *s = text; s + k <= end; s++) {
                if (memcmp(s, key, k) != 0)
                        continue;
                const char *v = s + k;
                size_t len = 0;
                while (v + len < end && v[len] != ',' && v[len] != '\n')
                        len++;
                return len >= p && memcmp(v, path, p) == 0 && (len == p || v[p] == '/');
        }
        return false;
}

void cgroup_kmsg_record(const char *record, size_t n, const char *path, LimitHits *h) {
        const char *text = memchr(record, ';', n);
        if (!text)
                return;
        text++;
        const char *nl = memchr(text, '\n', n - (size_t) (text - record));
        size_t len = nl ? (size_t) (nl - text) : n - (size_t) (text - record);
        /* 6.1: "oom-kill:constraint=...,oom_memcg=CG,task_memcg=CG,task=COMM,pid=N,uid=N" */
        if (len > 9 && memcmp(text, "oom-kill:", 9) == 0 && names_cgroup(text, len, ",oom_memcg=", path)) {
                const char *t = memmem(text, len, ",task=", 6);
                if (t) {
                        t += 6;
                        size_t l = 0;
                        while (t + l < text + len && t[l] != ',')
                                l++;
                        _cleanup_free_ char *comm = strndup(t, l);
                        if (comm)
                                (void) strv_extend(&h->killed, comm);
                }
        }
        if (names_cgroup(text, len, "fork rejected by pids controller in ", path))
                h->forks_refused = true;
}

int cgroup_watch_begin(const char *root, const char *path, LimitWatch *ret) {
        if (!path || path[0] != '/' || strstr(path, ".."))
                return -EINVAL;
        if (!cgroup_is_unified(root))
                return -EOPNOTSUPP;
        _cleanup_(limit_watch_done) LimitWatch w = LIMIT_WATCH_NULL;
        if (!(w.path = strdup(path)))
                return -ENOMEM;
        int r = cgroup_oom_kills(root, path, &w.oom_kills);
        if (r < 0)
                return r;
        _cleanup_free_ char *pids = strdup_printf("%s/sys/fs/cgroup%s/pids.events", streq(root, "/") ? "" : root, path);
        if (!pids)
                return -ENOMEM;
        if (read_key(pids, "max", &w.forks_refused) < 0)
                w.forks_refused = UINT64_MAX;
        /* Without the log the counts still tell. */
        w.kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (w.kmsg_fd >= 0 && lseek(w.kmsg_fd, 0, SEEK_END) < 0) {
                close(w.kmsg_fd);
                w.kmsg_fd = -1;
        }
        *ret = w;
        w = (LimitWatch) LIMIT_WATCH_NULL;
        return 0;
}

int cgroup_watch_end(const char *root, LimitWatch *w, LimitHits *ret) {
        _cleanup_(limit_hits_done) LimitHits h = {};
        uint64_t now;
        int r = cgroup_oom_kills(root, w->path, &now);
        if (r < 0)
                return r;
        h.oom_kills = now >= w->oom_kills ? now - w->oom_kills : 0;
        _cleanup_free_ char *pids = strdup_printf("%s/sys/fs/cgroup%s/pids.events", streq(root, "/") ? "" : root, w->path);
        if (pids && w->forks_refused != UINT64_MAX && read_key(pids, "max", &now) >= 0 && now > w->forks_refused)
                h.forks_refused = true;
        /* One record per read; EPIPE: records were overwritten before we
         * read them, the next read goes on with the oldest one left. */
        char buf[8192];
        for (int budget = 100000; w->kmsg_fd >= 0 && budget > 0; budget--) {
                ssize_t n = read(w->kmsg_fd, buf, sizeof buf);
                if (n < 0 && (errno == EPIPE || errno == EINTR))
                        continue;
                if (n <= 0)
                        break;
                cgroup_kmsg_record(buf, (size_t) n, w->path, &h);
        }
        *ret = h;
        h = (LimitHits) {};
        return 0;
}

/* "tail" or "bash (4 times), head" in the order the kernel logged them. */
static void append_names(StrBuf *b, char *const *names) {
        _cleanup_strv_free_ char **seen = NULL;
        for (size_t i = 0; names && names[i]; i++) {
                if (strv_contains(seen, names[i]))
                        continue;
                size_t count = 0;
                for (size_t j = i; names[j]; j++)
                        count += streq(names[j], names[i]);
                if (seen)
                        strbuf_append(b, ", ");
                strbuf_append(b, names[i]);
                if (count > 1)
                        strbuf_appendf(b, " (%zu times)", count);
                (void) strv_extend(&seen, names[i]);
        }
}

bool limit_hits_any(const LimitHits *h) {
        return h->oom_kills > 0 || h->forks_refused;
}

char *limit_hits_message(const LimitHits *h, const char *name, uint64_t memory_max, uint64_t tasks_max) {
        if (!limit_hits_any(h))
                return NULL;
        StrBuf b = {};
        if (h->oom_kills > 0) {
                char m[32] = "?";
                if (memory_max != UINT64_MAX)
                        format_size(memory_max, m);
                size_t named = 0;
                while (h->killed && h->killed[named])
                        named++;
                strbuf_appendf(&b, "nspawn-cage: cage %s: the memory limit (Memory=%s) killed %" PRIu64 " process%s while the command ran",
                               name, m, h->oom_kills, h->oom_kills == 1 ? "" : "es");
                if (named > 0) {
                        strbuf_append(&b, ": ");
                        append_names(&b, h->killed);
                        if (named < h->oom_kills)
                                strbuf_appendf(&b, " and %" PRIu64 " the kernel did not name", h->oom_kills - named);
                }
                if (h->thrashed > 0)
                        strbuf_appendf(&b, " (%" PRIu64 " of them by nspawn-cage: the cage had thrashed at the limit for 10 s and the kernel's "
                                       "OOM killer had not acted)", h->thrashed);
                strbuf_append(&b, "; the cage runs on\n");
        }
        if (h->forks_refused) {
                char t[32] = "?";
                if (tasks_max != UINT64_MAX)
                        snprintf(t, sizeof t, "%" PRIu64, tasks_max);
                strbuf_appendf(&b, "nspawn-cage: cage %s: the task limit (Tasks=%s) refused new processes while the command ran "
                               "(fork: Resource temporarily unavailable)\n", name, t);
        }
        char *text = NULL;
        return strbuf_steal(&b, &text) < 0 ? NULL : text;
}
