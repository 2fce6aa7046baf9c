/* verb-host.c: the verbs about every cage of the host: `list` and `gc`. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "closurecache.h"
#include "idmap.h"
#include "network.h"
#include "teardown.h"
#include "verbs.h"

int verb_list(const Args *a) {
        _cleanup_(host_done) Host h = HOST_NULL;
        _cleanup_(host_user_done) HostUser user = {};
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(cage_error_done) CageError err = {};
        if (require_root(&err) < 0 || host_open(&h, &err) < 0 || invoking_user(a->load.sudo_uid, &user, &err) < 0)
                return cage_error_print(&err);
        if (state_list(h.state_fd, &names) < 0)
                return verb_fail("%s/cages: cannot list", STATE_DIR);
        _cleanup_(strbuf_done) StrBuf b = {};
        if (a->json)
                strbuf_append(&b, "[");
        else
                strbuf_appendf(&b, "%-32s %-10s %-10s %s\n", "NAME", "USER", "STATE", "PROJECT");
        bool first = true;
        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_(cage_record_done) CageRecord rec = {};
                if (state_read_record(h.state_fd, names[i], &rec) < 0 || (user.uid != 0 && rec.uid != user.uid))
                        continue;
                const char *state = cage_running(&h, &rec) ? "running" : "stale";
                if (!a->json) {
                        strbuf_appendf(&b, "%-32s %-10s %-10s %s%s%s%s\n", rec.name, rec.user, state, rec.project, rec.branch ? " [" : "",
                                       strempty(rec.branch), rec.branch ? "]" : "");
                        continue;
                }
                const char *const keys[] = { "name", "user", "state", "project", "unit", "branch" };
                const char *const values[] = { rec.name, rec.user, state, rec.project, rec.unit, rec.branch };
                for (size_t k = 0; k < ELEMENTSOF(keys) && values[k]; k++) {
                        strbuf_appendf(&b, "%s\"%s\":", k ? "," : first ? "\n  {" : ",\n  {", keys[k]);
                        strbuf_append_json(&b, values[k]);
                }
                strbuf_append(&b, "}");
                first = false;
        }
        if (a->json)
                strbuf_append(&b, first ? "]\n" : "\n]\n");
        _cleanup_free_ char *text = NULL;
        if (strbuf_steal(&b, &text) < 0)
                return 1;
        fputs(text, stdout);
        return 0;
}

/* Unlocked cages whose unit is gone (or that were not to be kept). */
static int gc_cages(Host *h, int *removed, CageError *err) {
        _cleanup_strv_free_ char **names = NULL;
        int ret = 0;
        (void) state_list(h->state_fd, &names);
        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_(cage_record_done) CageRecord rec = {};
                bool bad = state_read_record(h->state_fd, names[i], &rec) < 0;
                if (!bad && (cage_locked(h, names[i]) || (cage_running(h, &rec) && rec.keep)))
                        continue;
                if (cage_teardown(h, names[i], err) < 0)
                        ret = -1;
                else {
                        printf("removed cage %s\n", names[i]);
                        (*removed)++;
                }
        }
        return ret;
}

/* Temporary directories of starts that did not finish. */
static int gc_temporary(Host *h, int *removed, CageError *err) {
        _cleanup_strv_free_ char **tmps = NULL;
        int ret = 0;
        (void) state_list_temporary(h->state_fd, &tmps);
        for (size_t i = 0; tmps && tmps[i]; i++) {
                _cleanup_free_ char *rel = strdup_printf("cages/%s", tmps[i]), *busy = NULL;
                _cleanup_close_ int fd = rel ? openat(h->state_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
                if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue; /* a start in progress */
                if (state_remove_dir(h->state_fd, rel, &busy) < 0)
                        ret = cage_error_add(err, -EBUSY, "%s/%s: cannot remove%s%s", STATE_DIR, rel, busy ? ", mounted: " : "", strempty(busy));
                else
                        (*removed)++;
        }
        return ret;
}

/* Is dir/file a settings file nspawn-cage wrote? Its first line says so. */
static bool settings_ours(const char *dir, const char *file) {
        _cleanup_free_ char *p = strdup_printf("%s/%s", dir, file), *head = NULL;
        _cleanup_close_ int fd = p ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) : -1;
        size_t size;
        if (fd < 0 || read_regular_fd(fd, CONFIG_FILE_MAX, &head, &size) < 0)
                return false;
        head[strcspn(head, "\n")] = 0;
        return strstr(head, "written by nspawn-cage");
}

/* Settings files and GC roots of cages that no longer exist. */
static void gc_orphans(Host *h, const char *dir, bool settings, int *removed) {
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                _cleanup_free_ char *name = strdup(de->d_name);
                if (!name || name[0] == '.')
                        continue;
                size_t l = strlen(name);
                if (settings && (l < 8 || !streq(name + l - 7, ".nspawn") || !settings_ours(dir, de->d_name)))
                        continue;
                if (settings)
                        name[l - 7] = 0;
                _cleanup_free_ char *cdir = strdup_printf("cages/%s", name), *p = strdup_printf("%s/%s", dir, de->d_name);
                struct stat st;
                if (!cdir || fstatat(h->state_fd, cdir, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        continue;
                if (p && unlink(p) == 0)
                        (*removed)++;
        }
        if (d)
                closedir(d);
}

/* Closure cache entries that are stale, broken or long unused, and their
 * GC roots; those whose top-level a remaining cage runs on stay. */
static int gc_closure_cache(Host *h, int *removed, CageError *err) {
        _cleanup_strv_free_ char **names = NULL, **in_use = NULL;
        _cleanup_close_ int cache_fd = -1;
        unsigned n = 0;
        int r = state_dir_open(h->state_fd, CLOSURE_CACHE_DIR, &cache_fd);
        if (r < 0)
                return cage_error_add(err, r, "%s/%s: %s", STATE_DIR, CLOSURE_CACHE_DIR, strerror(-r));
        (void) state_list(h->state_fd, &names);
        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_(cage_record_done) CageRecord rec = {};
                if (state_read_record(h->state_fd, names[i], &rec) >= 0 && rec.toplevel && strv_extend(&in_use, rec.toplevel) < 0)
                        return cage_error_add(err, -ENOMEM, "out of memory");
        }
        r = closure_cache_gc(cache_fd, in_use, CLOSURE_CACHE_MAX_IDLE_USEC, &n, err);
        if (n > 0)
                printf("removed %u closure cache entr%s\n", n, n == 1 ? "y" : "ies");
        *removed += (int) n;
        return r;
}

/* Remove what crashed helpers and killed cages left: unlocked cages whose
 * unit is gone (or that were not to be kept), network leases, uid range
 * locks, temporary directories, orphaned settings files and GC roots. */
int verb_gc(const Args *a) {
        _cleanup_(host_done) Host h = HOST_NULL;
        _cleanup_(cage_error_done) CageError err = {};
        int ret = 0, removed = 0;
        (void) a;
        if (require_root(&err) < 0 || host_open(&h, &err) < 0)
                return cage_error_print(&err);
        if (invoked_through_sudo())
                return verb_fail("gc acts on every user's cages: run it as root, not through sudo");
        ret = gc_cages(&h, &removed, &err);
        /* Network leases (and their nftables tables) of cages that are gone. */
        unsigned n_leases = 0, n_locks = 0;
        int r = network_gc(NULL, cage_dir_exists, &h, &n_leases);
        if (r < 0)
                ret = cage_error_add(&err, r, "%s: cannot clean up: %s", NETWORK_LEASE_DIR, strerror(-r));
        /* Lock files of uid ranges whose cage is gone (nobody holds them). */
        if ((r = idmap_gc_locks(NULL, &n_locks)) < 0)
                ret = cage_error_add(&err, r, "%s: cannot clean up: %s", IDMAP_LOCK_DIR, strerror(-r));
        removed += (int) (n_leases + n_locks);
        if (gc_temporary(&h, &removed, &err) < 0)
                ret = -1;
        gc_orphans(&h, SETTINGS_DIR, true, &removed);
        gc_orphans(&h, STATE_DIR "/gcroots", false, &removed);
        if (gc_closure_cache(&h, &removed, &err) < 0)
                ret = -1;
        if (ret < 0)
                (void) cage_error_print(&err);
        printf("%d item%s removed\n", removed, removed == 1 ? "" : "s");
        return ret < 0 ? 1 : 0;
}
