/* teardown.c: what `stop`, `gc` and a failed or finished `run` do to take
 * a cage away (teardown.h). Each step is tried whatever the others did. */
#include "autoconfig.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "agentstate.h"
#include "bus.h"
#include "display.h"
#include "forward.h"
#include "idmap.h"
#include "network.h"
#include "pathfd.h"
#include "projectaudit.h"
#include "staging.h"
#include "teardown.h"
#include "worktree.h"

static void report_audit(const CageRecord *rec, const char *where, const ProjectAuditReport *rep) {
        if (rep->neutralised) {
                cage_notice("cage %s left in %s what could run code as you; made harmless:", rec->name, where);
                for (size_t i = 0; rep->neutralised[i]; i++)
                        fprintf(stderr, "  %s\n", rep->neutralised[i]);
                cage_notice("nothing was deleted. Look at a renamed entry (its hooks/, config) before you rename it back with "
                            "mv, and run no git inside it until then; cage root's set-id bits are not restored.");
        }
        for (size_t i = 0; rep->moved && rep->moved[i]; i++)
                cage_notice("cage %s: a git directory of the start is now at %s/%s: move it back with mv once you have looked at it",
                            rec->name, where, rep->moved[i]);
}

/* Once its unit has stopped; as root with what the helper kept (after the
 * agent's session: CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER),
 * beneath the project, no link followed, no mount crossed, and only the
 * user's files changed: renamed in their directory, or their mode reduced. */
static int project_check_end(Host *h, const CageRecord *rec, const char *tag, CageError *err) {
        _cleanup_free_ char *rel = strdup_printf("cages/%s/" PROJECT_AUDIT_FILE, rec->name), *text = NULL;
        if (!rel)
                return cage_error_set(err, -ENOMEM, "out of memory");
        _cleanup_close_ int fd = openat(h->state_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT)
                return 0; /* the start did not get so far: the agent never ran */
        size_t size;
        int r = fd < 0 ? -errno : read_regular_fd(fd, 256u << 20, &text, &size);
        if (r < 0)
                return cage_error_set(err, r, "cage %s: %s/%s: %s; project %s was NOT checked for git repositories and set-id files the cage left",
                                      rec->name, STATE_DIR, rel, strerror(-r), rec->project);
        _cleanup_close_ int pfd = path_open_nofollow(AT_FDCWD, rec->project, O_RDONLY | O_DIRECTORY, 0);
        struct stat st;
        if (pfd == -ENOENT)
                return 0; /* removed: nothing of it is left to run */
        if (pfd < 0 || fstat(pfd, &st) < 0 || st.st_uid != rec->uid)
                return cage_error_set(err, pfd < 0 ? pfd : -EPERM, "cage %s: project %s: %s; it was NOT checked for git repositories and set-id "
                                      "files the cage left", rec->name, rec->project, pfd < 0 ? strerror(-pfd) : "no longer its user's");
        ProjectAuditOptions o = { .uid = rec->uid };
        _cleanup_(project_audit_report_done) ProjectAuditReport rep = {};
        if ((r = project_audit_check(pfd, &o, text, tag, &rep)) < 0)
                return cage_error_set(err, r, "cage %s: project %s: checking for git repositories and set-id files the cage left: %s",
                                      rec->name, rec->project, strerror(-r));
        report_audit(rec, rec->project, &rep);
        int ret = 0;
        for (size_t i = 0; rep.failed && rep.failed[i]; i++)
                ret = cage_error_add(err, -EPERM, "cage %s: %s/%s: NOT made harmless; do not run git in %s nor anything there until you have looked",
                                     rec->name, rec->project, rep.failed[i], rec->project);
        if (rep.truncated)
                ret = cage_error_add(err, -EFBIG, "cage %s: project %s has more than %lu entries or is deeper than %u directories: what lies beyond "
                                     "was NOT checked for git repositories and set-id files the cage left", rec->name, rec->project,
                                     PROJECT_AUDIT_MAX_ENTRIES, PROJECT_AUDIT_MAX_DEPTH);
        return ret;
}

/* A linked worktree's repository (worktree.h): what the cage had of it,
 * checked as the project is, with the same tag. */
static int worktree_check_end(Host *h, const CageRecord *rec, const char *tag, CageError *err) {
        _cleanup_free_ char *rel = strdup_printf("cages/%s/" WORKTREE_AUDIT_FILE, rec->name), *text = NULL;
        if (!rel)
                return cage_error_set(err, -ENOMEM, "out of memory");
        _cleanup_close_ int fd = openat(h->state_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT)
                return 0; /* no worktree, or the start did not get so far */
        size_t size;
        int r = fd < 0 ? -errno : read_regular_fd(fd, 256u << 20, &text, &size);
        char *name = r < 0 ? NULL : strchr(text, '\n'), *snapshot = name ? strchr(name + 1, '\n') : NULL;
        if (!snapshot || text[0] != '/')
                return cage_error_set(err, r < 0 ? r : -EBADMSG, "cage %s: %s/%s: %s; the worktree's repository was NOT checked for hooks, "
                                      "configuration and set-id files the cage left", rec->name, STATE_DIR, rel, strerror(r < 0 ? -r : EBADMSG));
        *name++ = 0;
        *snapshot++ = 0;
        _cleanup_close_ int pfd = path_open_nofollow(AT_FDCWD, text, O_RDONLY | O_DIRECTORY, 0);
        struct stat st;
        if (pfd == -ENOENT)
                return 0;
        if (pfd < 0 || fstat(pfd, &st) < 0 || st.st_uid != rec->uid || isempty(name) || strchr(name, '/'))
                return cage_error_set(err, pfd < 0 ? pfd : -EPERM, "cage %s: the worktree's repository %s: %s; it was NOT checked for hooks, "
                                      "configuration and set-id files the cage left", rec->name, text,
                                      pfd < 0 ? strerror(-pfd) : "no longer its user's");
        _cleanup_free_ char *admin = strdup_printf("worktrees/%s", name);
        char *only[] = { "objects", "refs", "logs", "reftable", "info", admin, NULL };
        ProjectAuditOptions o = { .uid = rec->uid, .only = only };
        _cleanup_(project_audit_report_done) ProjectAuditReport rep = {};
        if (!admin || (r = project_audit_check(pfd, &o, snapshot, tag, &rep)) < 0)
                return cage_error_set(err, admin ? r : -ENOMEM, "cage %s: the worktree's repository %s: checking what the cage left: %s", rec->name,
                                      text, strerror(admin ? -r : ENOMEM));
        report_audit(rec, text, &rep);
        int ret = 0;
        for (size_t i = 0; rep.failed && rep.failed[i]; i++)
                ret = cage_error_add(err, -EPERM, "cage %s: %s/%s: NOT made harmless; do not run git in %s nor its worktrees until you have looked",
                                     rec->name, text, rep.failed[i], text);
        return ret;
}

int project_audit_end(Host *h, const CageRecord *rec, CageError *err) {
        /* Readable (the cage and when), and unique: two checks in one second never meet. */
        uint16_t rnd = 0;
        (void) !getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        _cleanup_free_ char *tag = strdup_printf("%s-%lld-%04x", rec->name, (long long) time(NULL), (unsigned) rnd);
        if (!tag)
                return cage_error_set(err, -ENOMEM, "out of memory");
        _cleanup_(cage_error_done) CageError e = {};
        int r = project_check_end(h, rec, tag, err), k = worktree_check_end(h, rec, tag, &e);
        if (k < 0 && r < 0)
                return cage_error_add(err, k, "%s", cage_error_message(&e, k)), r;
        if (k < 0)
                return cage_error_set(err, k, "%s", cage_error_message(&e, k));
        return r;
}

/* The unit stopped, the agent's state back, the project checked. */
static int teardown_unit(Host *h, const char *name, const CageRecord *rec, CageError *err) {
        _cleanup_free_ char *unit = unit_name(name);
        int ret = 0;
        if (!unit)
                return cage_error_add(err, -ENOMEM, "out of memory");
        int r = bus_stop_unit(h->bus, h->event, unit, 30 * 1000000ULL);
        if (r < 0 && r != -ENOENT)
                ret = cage_error_add(err, r, "stopping %s: %s", unit, strerror(-r));
        bus_reset_failed_unit(h->bus, unit);
        /* The agent has stopped writing: [State] File= back to the user. */
        _cleanup_(cage_error_done) CageError e = {};
        if (rec->name && (r = agent_state_restore(h->state_fd, rec, &e)) < 0)
                ret = cage_error_add(err, r, "%s", cage_error_message(&e, r));
        cage_error_done(&e);
        if (rec->name && rec->project && (r = project_audit_end(h, rec, &e)) < 0)
                ret = cage_error_add(err, r, "%s", cage_error_message(&e, r));
        return ret;
}

/* The range's lock file: free once systemd has let go of the unit. */
static int teardown_lock(const char *name, uid_t base, CageError *err) {
        int r = 0;
        for (unsigned i = 0; base && i < 50; i++) {
                r = idmap_remove_lock(NULL, base, name);
                if (r != -EBUSY)
                        break;
                usleep(100 * 1000);
        }
        if (base && r < 0 && r != -ESRCH)
                return cage_error_add(err, r, "%s/%u: %s", IDMAP_LOCK_DIR, (unsigned) base,
                                      r == -EBUSY ? "still locked; 'nspawn-cage gc' removes it later" : strerror(-r));
        return 0;
}

/* Settings file, GC root, staged sockets, kept environment, directory. */
static int teardown_files(Host *h, const char *name, const char *dir, CageError *err) {
        _cleanup_free_ char *settings = NULL, *root = strdup_printf("gcroots/%s", name), *busy = NULL;
        int r, ret = 0;
        if (!root || settings_path(SETTINGS_DIR, name, &settings) < 0)
                return cage_error_add(err, -ENOMEM, "out of memory");
        if (unlink(settings) < 0 && errno != ENOENT)
                ret = cage_error_add(err, -errno, "%s: %s", settings, strerror(errno));
        if (unlinkat(h->state_fd, root, 0) < 0 && errno != ENOENT)
                ret = cage_error_add(err, -errno, "%s/%s: %s", STATE_DIR, root, strerror(errno));
        _cleanup_close_ int cage_fd = openat(h->state_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (cage_fd >= 0 && (r = display_unstage(cage_fd)) < 0)
                ret = cage_error_add(err, r, "%s/%s/display: %s", STATE_DIR, dir, strerror(-r));
        if (cage_fd >= 0 && (r = forward_unstage(cage_fd)) < 0)
                ret = cage_error_add(err, r, "%s/%s/forward: %s", STATE_DIR, dir, strerror(-r));
        if ((r = state_remove_environment(ENVIRONMENT_DIR, name)) < 0)
                ret = cage_error_add(err, r, "%s/%s: %s", ENVIRONMENT_DIR, name, strerror(-r));
        if ((r = state_remove_dir(h->state_fd, dir, &busy)) < 0)
                ret = cage_error_add(err, r, "%s/%s: %s%s%s", STATE_DIR, dir, strerror(-r), busy ? ": something is mounted at " : "",
                                     strempty(busy));
        return ret;
}

int cage_teardown_full(Host *h, const char *name, bool remove_lock, CageError *err) {
        _cleanup_free_ char *dir = strdup_printf("cages/%s", name);
        if (!dir)
                return cage_error_add(err, -ENOMEM, "out of memory");
        _cleanup_(cage_record_done) CageRecord rec = {};
        uid_t base = state_read_record(h->state_fd, name, &rec) >= 0 ? rec.uid_base : 0;
        int r, ret = teardown_unit(h, name, &rec, err);
        /* With the unit stopped the cage's namespace is gone, and the veth with it. */
        if ((r = network_release(NULL, name)) < 0)
                ret = cage_error_add(err, r, "%s: the network of cage %s (nftables table inet nspawn-cage-%s, interface " NETWORK_IFNAME_PREFIX
                                     "N): %s; 'nspawn-cage gc' tries again", NETWORK_LEASE_DIR, name, name, strerror(-r));
        if ((r = staging_umount(name)) < 0)
                ret = cage_error_add(err, r, "%s/%s/" STAGING_SUBDIR ": cannot detach a staging mount: %s", STATE_DIR, dir, strerror(-r));
        if (remove_lock && (r = teardown_lock(name, base, err)) < 0)
                ret = r;
        if ((r = teardown_files(h, name, dir, err)) < 0)
                ret = r;
        return ret < 0 ? ret : 0;
}
