/* launch.c: a cage from its plan to a running unit, and the agent attached
 * to it (launch.h). The only place that knows the order of the start. */
#include "autoconfig.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "agentstate.h"
#include "builders.h"
#include "bus.h"
#include "caps.h"
#include "cgroup.h"
#include "closure.h"
#include "closurecache.h"
#include "display.h"
#include "egress.h"
#include "nflog.h"
#include "envfile.h"
#include "forward.h"
#include "idmap.h"
#include "launch.h"
#include "network.h"
#include "oomguard.h"
#include "pathfd.h"
#include "plan.h"
#include "projectaudit.h"
#include "settings.h"
#include "tools.h"
#include "stage.h"
#include "staging.h"
#include "teardown.h"
#include "worktree.h"

/* What a failed start must take away, newest last. */
typedef enum UndoKind {
        UNDO_GCROOT,   /* the closure's GC root */
        UNDO_TEMP_DIR, /* the rootfs under its temporary name */
        UNDO_CAGE,     /* the published cage: directory, mounts, settings, unit (its range's lock stays with the starter) */
        _UNDO_MAX,
        _UNDO_INVALID = -EINVAL,
} UndoKind;

typedef struct Undo {
        UndoKind steps[_UNDO_MAX];
        size_t n;
        Host *host;
        const char *name;
        char *gcroot, *temp_dir;
} Undo;

static void undo_push(Undo *u, UndoKind k) {
        if (u->n < ELEMENTSOF(u->steps))
                u->steps[u->n++] = k;
}

/* Remove what was made, newest first; failures are added to *err. */
static void undo_run(Undo *u, CageError *err) {
        while (u->n > 0) {
                _cleanup_free_ char *busy = NULL;
                switch (u->steps[--u->n]) {
                case UNDO_GCROOT: (void) unlink(u->gcroot); break;
                case UNDO_TEMP_DIR: (void) state_remove_dir(u->host->state_fd, u->temp_dir, &busy); break;
                case UNDO_CAGE: (void) cage_teardown_full(u->host, u->name, false, err); break;
                default: break;
                }
        }
}

static void undo_done(Undo *u) {
        free(u->gcroot);
        free(u->temp_dir);
}

/* What in the project could make git run code, or is set-id, as the cage
 * starts: walked as root (what the user cannot read, the agent could still
 * hide a file in) beneath the project fd, no link followed, no mount
 * crossed, nothing changed. */
static int project_audit_start(const Cage *cage, char **ret_text, CageError *err) {
        const CageSpec *s = cage->spec;
        FsIdentity id;
        if (user_fs_enter(&s->user, &id) < 0)
                return cage_error_set(err, -EPERM, "cannot take the file system identity of %s", s->user.name);
        _cleanup_close_ int pfd = openat(cage->project_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int saved = errno;
        user_fs_leave(&id);
        if (pfd < 0)
                return cage_error_set(err, -saved, "project %s: %s", s->project, strerror(saved));
        ProjectAuditOptions o = { .uid = s->user.uid, .git = s->protect_git };
        bool truncated = false;
        int r = project_audit_snapshot(pfd, &o, ret_text, &truncated);
        if (r < 0)
                return cage_error_set(err, r, "project %s: looking for git repositories and set-id files: %s", s->project, strerror(-r));
        if (truncated)
                cage_notice("warning: project %s has more than %lu entries or is deeper than %u directories: the check at the cage's end (git "
                            "repositories, set-id files) covers only what lies within", s->project, PROJECT_AUDIT_MAX_ENTRIES, PROJECT_AUDIT_MAX_DEPTH);
        return 0;
}

/* A linked worktree's repository (worktree.h): the same record, of what
 * the cage has of it (its other worktrees are not walked: parallel cages
 * add and change them), kept as "COMMON\nNAME\n" then the snapshot. */
static int worktree_audit_start(const CageSpec *s, char **ret_text, CageError *err) {
        if (!s->git_common)
                return 0;
        FsIdentity id;
        if (user_fs_enter(&s->user, &id) < 0)
                return cage_error_set(err, -EPERM, "cannot take the file system identity of %s", s->user.name);
        _cleanup_close_ int fd = path_open_nofollow(AT_FDCWD, s->git_common, O_RDONLY | O_DIRECTORY, 0);
        user_fs_leave(&id);
        _cleanup_free_ char *admin = strdup_printf("worktrees/%s", s->git_worktree), *text = NULL;
        char *only[] = { "objects", "refs", "logs", "reftable", "info", admin, NULL };
        ProjectAuditOptions o = { .uid = s->user.uid, .git = true, .only = only };
        int r = fd < 0 ? fd : !admin ? -ENOMEM : project_audit_snapshot(fd, &o, &text, NULL);
        if (r < 0)
                return cage_error_set(err, r, "the worktree's repository %s: looking for hooks, configuration and set-id files: %s", s->git_common,
                                      strerror(-r));
        if (!(*ret_text = strdup_printf("%s\n%s\n%s", s->git_common, s->git_worktree, text)))
                return cage_error_set(err, -ENOMEM, "out of memory");
        return 0;
}

/* The plan of a start: closure (with its GC root), ProtectGit= binds, the
 * project's audit, the idmap checks, the paths of uid_base. */
static int plan_start(Cage *cage, const LaunchOptions *o, uid_t uid_base, int cache_fd, CagePlan *plan, char **ret_audit, char **ret_wt_audit,
                      int *ret_cache_lock, char **ret_previous, Undo *u, CageError *err) {
        CageSpec *s = cage->spec;
        PlanOptions po = { .closure_file = o->closure_file, .data_dir = o->data_dir, .gcroot = u->gcroot };
        int r = plan_closure_cached(cage, &po, cache_fd, o->rebuild, &plan->closure, ret_cache_lock, ret_previous, err);
        if (r < 0)
                return r;
        undo_push(u, UNDO_GCROOT);
        if ((r = cage_spec_set_closure(s, plan->closure, err)) < 0 || (r = plan_protect_git(cage, err)) < 0 ||
            (r = project_audit_start(cage, ret_audit, err)) < 0 || (r = worktree_audit_start(s, ret_wt_audit, err)) < 0)
                return r;
        /* The binds below the project were added just now: check them too. */
        if ((r = staging_check(s, cage->project_fd, err)) < 0 || (r = staging_set_paths(s, uid_base, err)) < 0)
                return r;
        return cage_plan_render(cage, plan, err);
}

/* The rootfs under a temporary name, its record, then published. */
static int build_rootfs(Host *h, Cage *cage, const LaunchOptions *o, CagePlan *plan, const char *audit, const char *wt_audit, uid_t uid_base,
                        int *ret_cage_fd, Undo *u, CageError *err) {
        CageSpec *s = cage->spec;
        _cleanup_close_ int cage_fd = -1;
        _cleanup_free_ char *bad = NULL, *state_path = NULL;
        _cleanup_strv_free_ char **state_entries = NULL;
        int r = state_begin_cage(h->state_fd, s->name, &cage_fd, &u->temp_dir);
        if (r < 0)
                return cage_error_set(err, r, "%s: preparing the cage: %s", STATE_DIR, strerror(-r));
        undo_push(u, UNDO_TEMP_DIR);
        (void) flock(cage_fd, LOCK_EX);
        _cleanup_close_ int rootfd = openat(cage_fd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        r = rootfd < 0 ? -errno : rootfs_apply(&plan->rootfs, rootfd, &bad);
        CageRecord rec = { .name = s->name, .project = s->project, .user = s->user.name, .uid = s->user.uid, .unit = plan->unit,
                           .toplevel = s->toplevel, .helper = getpid(), .keep = o->keep, .declared = o->declared,
                           .created_usec = (uint64_t) time(NULL) * 1000000ULL, .n_store_paths = (unsigned) strv_length(s->store_paths),
                           .uid_base = uid_base, .branch = s->git_branch };
        if (r >= 0 && s->persist && s->state_files) {
                if ((r = agent_state_stage_in(s, rootfd, &state_path, &state_entries, err)) < 0)
                        return r;
                rec.state_dir = state_path;
                rec.state_home = s->user.home;
                rec.state_files = state_entries;
        }
        if (r >= 0)
                r = write_file_atomic_at(cage_fd, PROJECT_AUDIT_FILE, audit, 0600);
        if (r >= 0 && wt_audit)
                r = write_file_atomic_at(cage_fd, WORKTREE_AUDIT_FILE, wt_audit, 0600);
        if (r >= 0)
                r = state_write_record(cage_fd, &rec);
        if (r >= 0)
                r = state_commit_cage(h->state_fd, u->temp_dir, s->name);
        if (r < 0)
                return cage_error_set(err, r, "rendering the rootfs%s%s: %s", bad ? " at " : "", strempty(bad),
                                      r == -EEXIST ? "a cage of that name appeared meanwhile" : strerror(-r));
        u->n--; /* published: the cage's teardown takes it from here */
        undo_push(u, UNDO_CAGE);
        *ret_cage_fd = TAKE_FD(cage_fd);
        return 0;
}

/* The staging mounts, the display and the forwards (whose binds join the
 * plan's), then the .nspawn file, root's only. */
static int wire_cage(Cage *cage, const Display *display, Forward *fwd, int cage_fd, CagePlan *plan, CageError *err) {
        CageSpec *s = cage->spec;
        size_t n_binds = s->n_binds;
        _cleanup_free_ char *cage_dir = strdup_printf("%s/cages/%s", STATE_DIR, s->name), *sname = strdup_printf("%s.nspawn", s->name);
        if (!cage_dir || !sname)
                return cage_error_set(err, -ENOMEM, "out of memory");
        int r = staging_mount(s, cage->project_fd, err);
        if (r < 0)
                return r;
        if ((r = display_stage(display, cage_fd, cage_dir, s)) < 0)
                return cage_error_set(err, r, "%s/display: forwarding the display: %s", cage_dir, strerror(-r));
        if ((r = forward_stage(fwd, cage_fd, cage_dir, s, err)) < 0)
                return cage_error_wrap(err, r, "%s/forward", cage_dir);
        /* What the caller's session brought: the plan's text with its binds. */
        if (s->n_binds != n_binds && (r = cage_plan_render(cage, plan, err)) < 0)
                return r;
        (void) mkdir("/run/systemd", 0755);
        (void) mkdir(SETTINGS_DIR, 0755);
        _cleanup_close_ int sfd = open(SETTINGS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        /* nspawn reads it as root; nobody else needs the cage's paths and ids. */
        r = sfd < 0 ? -errno : write_file_atomic_at(sfd, sname, plan->settings, 0600);
        if (r < 0)
                return cage_error_set(err, r, "%s/%s: %s", SETTINGS_DIR, sname, strerror(-r));
        return 0;
}

/* Mode=private: the cage runs (its init is machined's leader) and nothing
 * of it but PID 1 has started yet that the agent depends on; wire its veth,
 * address, route and NAT before the agent is attached. */
static int network_up(Host *h, const CageSpec *s, CageError *err) {
        pid_t leader;
        int r = bus_machine_leader(h->bus, s->name, &leader);
        if (r < 0)
                return cage_error_set(err, r, "cage %s: cannot find its init to set up its network: %s", s->name, strerror(-r));
        NetworkOpenings o = { .publish = s->publish, .n_publish = s->n_publish, .host_services = s->host_services, .n_host_services = s->n_host_services };
        if ((r = network_setup(s->name, &s->lease, s->user.uid, s->allow, s->n_allow, &o, leader, err)) < 0)
                return cage_error_wrap(err, r, "cage %s: setting up its network (Mode=private)", s->name);
        return 0;
}

/* Mode=private: the cage's /30, before its rootfs is built (its
 * resolv.conf names the egress proxy there). */
static int network_lease(CageSpec *s, CageError *err) {
        _cleanup_free_ char *routes = NULL;
        size_t size;
        int r;
        _cleanup_close_ int fd = open("/proc/net/route", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (r = read_fd_bounded(fd, CONFIG_FILE_MAX, &routes, &size)) < 0)
                return cage_error_set(err, fd < 0 ? -errno : r, "/proc/net/route: cannot read the host's routes: %s", strerror(fd < 0 ? errno : -r));
        if ((r = network_lease_take(NULL, s->name, routes, &s->lease)) < 0)
                return cage_error_set(err, r, "%s: no free /30 for cage %s in 10.231.0.0/16: %s", NETWORK_LEASE_DIR, s->name,
                                      r == -EBUSY ? "all in use or overlapping the host's routes" : strerror(-r));
        s->leased = true;
        return 0;
}

/* Mode=private: the egress process, the second process a cage makes
 * nspawn-cage leave on the host, in its own scope bound to the cage's unit
 * like the ssh-agent relay. It records the nft table's drops (nflog.h);
 * with Allow= names, Publish= or HostService= it is also the proxy, and the
 * agent gets the proxy variables. */
static int egress_up(Host *h, const CageSpec *s, const char *cage_unit, int cage_fd, CageError *err) {
        _cleanup_(egress_done) Egress e = EGRESS_NULL;
        _cleanup_free_ char *scope = strdup_printf(EGRESS_SCOPE_FMT, s->name), *env = NULL,
                            *desc = strdup_printf("nspawn-cage %s: egress proxy for %s", s->name, s->user.name);
        pid_t leader;
        int r;
        if (!scope || !desc)
                return cage_error_set(err, -ENOMEM, "out of memory");
        NetworkOpenings o = { .publish = s->publish, .n_publish = s->n_publish, .host_services = s->host_services, .n_host_services = s->n_host_services };
        bool proxy = egress_needed(s->allow, s->n_allow, &o);
        if ((r = egress_open(&s->lease, proxy, &o, &e)) < 0)
                return cage_error_set(err, r, "cage %s: the egress process's sockets (NFLOG group %u%s%s%s): %s", s->name,
                                      (unsigned) nflog_group(s->lease.slot), proxy ? ", proxy on " : "", proxy ? s->lease.host_addr : "",
                                      s->n_publish ? " and 127.0.0.1 (Publish=)" : "", strerror(-r));
        if ((r = bus_machine_leader(h->bus, s->name, &leader)) < 0 ||
            (r = egress_fork(&e, &s->user, s->name, leader, &s->lease, s->allow, s->n_allow, &o)) < 0)
                return cage_error_set(err, r, "cage %s: starting the egress proxy ([Network] Allow=): %s", s->name, strerror(-r));
        CageScope c = { .unit = scope, .bound_to = cage_unit, .description = desc, .pid = e.pid,
                        .tasks_max = EGRESS_TASKS_MAX, .memory_max = EGRESS_MEMORY_MAX };
        if ((r = bus_start_scope(h->bus, h->event, &c, UINT64_C(30000000), err)) < 0)
                return cage_error_wrap(err, r, "cage %s: the egress proxy's scope ([Network] Allow=)", s->name);
        if ((r = egress_release(&e)) < 0)
                return cage_error_set(err, r, "cage %s: the egress proxy did not start: %s", s->name, strerror(-r));
        /* Only with names to proxy: without an allowlist the cage goes out directly. */
        if (!egress_has_names(s->allow, s->n_allow))
                return 0;
        if ((r = egress_environment(&s->lease, &env)) < 0 || (r = write_file_atomic_at(cage_fd, EGRESS_ENVIRONMENT_FILE, env, 0600)) < 0)
                return cage_error_set(err, r, "%s/cages/%s/" EGRESS_ENVIRONMENT_FILE ": %s", STATE_DIR, s->name, strerror(-r));
        return 0;
}

/* SSHAgent=yes: the relay is the one process a cage makes nspawn-cage leave
 * on the host. It runs in its own scope bound to the cage's unit, so the
 * host's systemd counts and limits it and stops it with the cage. */
static int relay_up(Host *h, const CageSpec *s, const char *cage_unit, Forward *fwd, CageError *err) {
        pid_t leader;
        _cleanup_free_ char *scope = strdup_printf(FORWARD_RELAY_SCOPE_FMT, s->name),
                            *desc = strdup_printf("nspawn-cage %s: ssh-agent relay for %s", s->name, s->user.name);
        int r;
        if (!scope || !desc)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if ((r = bus_machine_leader(h->bus, s->name, &leader)) < 0 || (r = forward_fork_relay(fwd, &s->user, s->name, leader)) < 0)
                return cage_error_set(err, r, "cage %s: starting the ssh-agent relay (SSHAgent=yes): %s", s->name, strerror(-r));
        CageScope c = { .unit = scope, .bound_to = cage_unit, .description = desc, .pid = fwd->relay_pid,
                        .tasks_max = FORWARD_RELAY_TASKS_MAX, .memory_max = FORWARD_RELAY_MEMORY_MAX };
        if ((r = bus_start_scope(h->bus, h->event, &c, UINT64_C(30000000), err)) < 0)
                return cage_error_wrap(err, r, "cage %s: the ssh-agent relay's scope (SSHAgent=yes)", s->name);
        if ((r = forward_release_relay(fwd)) < 0)
                return cage_error_set(err, r, "cage %s: the ssh-agent relay did not start: %s", s->name, strerror(-r));
        return 0;
}

/* The unit, its network and relay; then the host lets go of what nspawn
 * has bound into the cage. */
static int start_unit(Host *h, const CageSpec *s, const LaunchOptions *o, const CagePlan *plan, int uid_lock_fd, Forward *fwd, int cage_fd,
                      CageError *err) {
        CageUnit cu = { .spec = s, .unit = plan->unit, .nspawn = tool_configured_path(TOOL_NSPAWN), .rootfs = plan->rootfs_path, .unified_cgroup = true,
                        .uid_lock_fd = uid_lock_fd };
        if (!cgroup_is_unified("/"))
                cage_notice("note: this host has cgroup v1 controllers: Swap= (MemorySwapMax=) cannot be enforced here; "
                            "Memory=, CPUs= and Tasks= are, by the v1 memory, cpu and pids controllers.");
        int r = bus_start_cage(h->bus, h->event, &cu, o->timeout_usec, err);
        if (r < 0)
                return cage_error_wrap(err, r, "starting cage %s", s->name);
        if (s->network == NETWORK_PRIVATE && (r = network_up(h, s, err)) < 0)
                return r;
        if (s->network == NETWORK_PRIVATE && (r = egress_up(h, s, plan->unit, cage_fd, err)) < 0)
                return r;
        if (fwd->ssh_listen_fd >= 0 && (r = relay_up(h, s, plan->unit, fwd, err)) < 0)
                return r;
        /* nspawn has bound them into the cage: the host needs them no more. */
        if ((r = staging_umount(s->name)) < 0)
                cage_notice("note: %s: cannot detach a staging mount (%s); stop or gc removes it", s->project_staged, strerror(-r));
        if ((r = display_unstage(cage_fd)) < 0 || (r = forward_unstage(cage_fd)) < 0)
                return cage_error_set(err, r, "%s/cages/%s: detaching the staged sockets and files: %s", STATE_DIR, s->name, strerror(-r));
        return 0;
}

/* A rebuilt closure cache entry let go of the top-level it held: running
 * cages still on it get a GC root of their own (gc or stop removes it). */
static void hold_previous_toplevel(Host *h, const char *previous) {
        _cleanup_strv_free_ char **names = NULL;
        (void) state_list(h->state_fd, &names);
        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_(cage_record_done) CageRecord rec = {};
                if (state_read_record(h->state_fd, names[i], &rec) < 0 || !streq_ptr(rec.toplevel, previous))
                        continue;
                _cleanup_free_ char *root = strdup_printf("%s/gcroots/%s", STATE_DIR, names[i]);
                if (!root || closure_add_root(previous, root) < 0)
                        cage_notice("warning: cage %s runs on %s, which no GC root holds any more", names[i], previous);
        }
}

/* Plan, then execute with the undo list. Returns the locked cage dir fd. */
static int cage_start_locked(Host *h, Cage *cage, const LaunchOptions *o, const Display *display, Forward *fwd, uid_t uid_base,
                             int uid_lock_fd, int *ret_lock_fd, CageError *err) {
        CageSpec *s = cage->spec;
        _cleanup_(undo_done) Undo u = { .host = h, .name = s->name, .gcroot = strdup_printf("%s/gcroots/%s", STATE_DIR, s->name) };
        _cleanup_(cage_plan_done) CagePlan plan = {};
        _cleanup_free_ char *etc_settings = NULL, *audit = NULL, *wt_audit = NULL;
        _cleanup_close_ int cage_fd = -1;
        if (!u.gcroot || settings_path(SETTINGS_ETC_DIR, s->name, &etc_settings) < 0)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if (access(etc_settings, F_OK) == 0)
                return cage_error_set(err, -EEXIST, "%s exists and would override the cage's settings; remove it (nspawn-cage never reads it)",
                                      etc_settings);
        /* The closure cache's entry stays locked until the record names its top-level. */
        _cleanup_close_ int cache_fd = -1, cache_lock = -1;
        _cleanup_free_ char *previous = NULL;
        int r = state_dir_open(h->state_fd, CLOSURE_CACHE_DIR, &cache_fd);
        if (r < 0)
                return cage_error_set(err, r, "%s/%s: %s", STATE_DIR, CLOSURE_CACHE_DIR, strerror(-r));
        r = plan_start(cage, o, uid_base, cache_fd, &plan, &audit, &wt_audit, &cache_lock, &previous, &u, err);
        if (r >= 0 && previous)
                hold_previous_toplevel(h, previous);
        if (r >= 0)
                r = build_rootfs(h, cage, o, &plan, audit, wt_audit, uid_base, &cage_fd, &u, err);
        if (r >= 0)
                r = wire_cage(cage, display, fwd, cage_fd, &plan, err);
        if (r >= 0)
                r = start_unit(h, s, o, &plan, uid_lock_fd, fwd, cage_fd, err);
        if (r < 0) {
                undo_run(&u, err);
                return r;
        }
        *ret_lock_fd = TAKE_FD(cage_fd);
        return 0;
}

/* [Network] Allow=: each name as the host resolves it now, before anything
 * of the cage is made; the answers are pinned in its /etc/hosts and its
 * nftables set, and stay until it stops. */
static int resolve_allow(CageSpec *s, CageError *err) {
        /* The caller's environment (sudo --preserve-env) must not steer the
         * host's resolver: an administrator's AllowEgress= names are his. */
        static const char *const resolver_env[] = { "LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES" };
        for (size_t i = 0; s->n_allow > 0 && i < ELEMENTSOF(resolver_env); i++)
                (void) unsetenv(resolver_env[i]);
        for (size_t i = 0; i < s->n_allow; i++) {
                NetworkAllow *a = &s->allow[i];
                _cleanup_(cage_error_done) CageError why = {};
                if (allow_host_is_name(a->host))
                        continue; /* the egress proxy resolves it at each connection */
                int r = network_resolve_ipv4(a->host, &a->addrs, &why);
                if (r == -ENOMEM)
                        return cage_error_set(err, r, "out of memory");
                if (r < 0)
                        return cage_error_set(err, r, "%s: Allow=%s:%u: %s does not resolve on the host (%s)%s; nothing was started: fix the name or "
                                              "remove it", a->where, a->host, (unsigned) a->port, a->host, cage_error_message(&why, r),
                                              r == -EAGAIN ? ", for now" : "");
        }
        return 0;
}

/* The cage gets a 64K uid range of its own, locked from the pick until the
 * unit holds the lock (as nspawn's stdin) and dropped on any failure. */
static int cage_start(Host *h, Cage *cage, const LaunchOptions *o, const Display *display, Forward *fwd, int *ret_lock_fd, CageError *err) {
        uid_t base;
        int uid_lock = -1;
        /* Fail early, before any build. */
        int r = agent_state_prepare(cage->spec, err);
        if (r < 0 || (r = builders_add_nix_daemon(cage->spec, NIX_CONF, NIX_DAEMON_SOCKET, err)) < 0 ||
            (r = builders_add_containers(cage->spec, FUSE_DEVICE, err)) < 0 ||
            (r = staging_check(cage->spec, cage->project_fd, err)) < 0 || (r = resolve_allow(cage->spec, err)) < 0)
                return r;
        if (cage->spec->network == NETWORK_HOST)
                cage_notice("warning: Mode=host: cage %s shares the host's network namespace: every service listening on the host's loopback "
                            "and the host's abstract UNIX sockets (X11's @/tmp/.X11-unix/X0, D-Bus session buses, ...) are reachable from it",
                            cage->spec->name);
        if ((r = idmap_pick_range(NULL, cage->spec->name, &base, &uid_lock)) < 0)
                return cage_error_set(err, r, "%s: no free 64K uid range for the cage's user namespace: %s", IDMAP_LOCK_DIR,
                                      r == -EBUSY ? "all tried are in use" : strerror(-r));
        if (cage->spec->network == NETWORK_PRIVATE && (r = network_lease(cage->spec, err)) < 0) {
                idmap_release_range(NULL, base, uid_lock);
                return r;
        }
        r = cage_start_locked(h, cage, o, display, fwd, base, uid_lock, ret_lock_fd, err);
        if (r < 0 && cage->spec->leased)
                (void) network_release(NULL, cage->spec->name);
        if (r < 0)
                idmap_release_range(NULL, base, uid_lock);
        else
                close(uid_lock);
        return r;
}

/* X11=, Wayland=, GPU=: find and verify the user's session from the
 * environment sudo kept (DISPLAY and XAUTHORITY by default; WAYLAND_DISPLAY
 * and XDG_RUNTIME_DIR with --preserve-env), before anything is made. */
static int open_display(const Cage *cage, const HostEnv *env, Display *ret, CageError *err) {
        const CageSpec *s = cage->spec;
        if (!s->x11 && !s->wayland && !s->gpu)
                return 0;
        char host[256] = "";
        (void) gethostname(host, sizeof host - 1);
        DisplayEnv de = { .display = host_env_get(env, "DISPLAY"), .xauthority = host_env_get(env, "XAUTHORITY"),
                          .wayland_display = host_env_get(env, "WAYLAND_DISPLAY"), .xdg_runtime_dir = host_env_get(env, "XDG_RUNTIME_DIR"),
                          .hostname = host };
        const Setting *trusted = &cage->config->settings[SETTING_X11_TRUSTED];
        return display_open(s, &de, trusted->number, ret, err);
}

/* SSHAgent=, GitConfig=: open what is forwarded as the user, before
 * anything is made; errors name the line that asked for it. */
static int open_forward(const Cage *cage, const HostEnv *env, Forward *f, CageError *err) {
        const CageSpec *s = cage->spec;
        int r;
        if (s->ssh_agent && (r = forward_open_ssh_agent(&s->user, host_env_get(env, "SSH_AUTH_SOCK"), f, err)) < 0) {
                const Origin *or = &cage->config->settings[SETTING_SSH_AGENT].origin;
                return cage_error_wrap(err, r, "%s:%u: SSHAgent=yes", strempty(or->file), or->line);
        }
        if (s->git_config && (r = forward_open_git(&s->user, f, err)) < 0) {
                const Origin *or = &cage->config->settings[SETTING_GIT_CONFIG].origin;
                return cage_error_wrap(err, r, "%s:%u", strempty(or->file), or->line);
        }
        return 0;
}

int cage_launch(Host *h, Cage *cage, const LaunchOptions *o, char ***ret_passed, int *ret_lock_fd, CageError *err) {
        _cleanup_(strv_free_erasep) char **passed = NULL;
        _cleanup_(display_done) Display display = DISPLAY_NULL;
        _cleanup_(forward_done) Forward fwd = FORWARD_NULL;
        _cleanup_close_ int lock_fd = -1;
        const CageSpec *s = cage->spec;
        int r = agent_passed_environment(s, &cage->config->settings[SETTING_ENV_FILE], o->env, &passed, err);
        if (r < 0 || (r = open_display(cage, o->env, &display, err)) < 0 || (r = open_forward(cage, o->env, &fwd, err)) < 0 ||
            (r = cage_start(h, cage, o, &display, &fwd, &lock_fd, err)) < 0)
                return r;
        display_done(&display); /* the cage holds what it needs: drop the sockets and the cookie */
        forward_done(&fwd);
        /* The values of Pass= for the shells opened into the cage later
         * (root's, 0600, on tmpfs; removed with the cage). */
        if ((r = state_save_environment(ENVIRONMENT_DIR, s->name, passed)) < 0) {
                cage_error_set(err, r, "%s/%s: keeping the environment for later shells: %s", ENVIRONMENT_DIR, s->name, strerror(-r));
                (void) cage_teardown(h, s->name, err);
                return r;
        }
        *ret_passed = TAKE_PTR(passed);
        *ret_lock_fd = TAKE_FD(lock_fd);
        return 0;
}

/* What display_stage and forward_stage wrote for this cage. */
static int staged_environment(Host *h, const char *name, char ***ret, CageError *err) {
        _cleanup_strv_free_ char **display = NULL, **forward = NULL;
        _cleanup_free_ char *dir = strdup_printf("cages/%s", name);
        _cleanup_close_ int cage_fd = dir ? openat(h->state_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
        int k = cage_fd >= 0 ? display_read_environment(cage_fd, &display) : 0;
        if (k < 0)
                return cage_error_set(err, k, "%s/%s/display/environment: %s", STATE_DIR, dir, strerror(-k));
        k = cage_fd >= 0 ? forward_read_environment(cage_fd, &forward) : 0;
        for (size_t i = 0; k >= 0 && forward && forward[i]; i++)
                k = strv_extend(&display, forward[i]);
        _cleanup_strv_free_ char **egress = NULL;
        if (k >= 0 && cage_fd >= 0)
                k = stage_read_environment(cage_fd, EGRESS_ENVIRONMENT_FILE, &egress);
        for (size_t i = 0; k >= 0 && egress && egress[i]; i++)
                k = strv_extend(&display, egress[i]);
        if (k < 0)
                return cage_error_set(err, k, "%s/%s/forward/environment: %s", STATE_DIR, dir, strerror(-k));
        *ret = TAKE_PTR(display);
        return 0;
}

/* What the cage's limits do while a command runs: watched from before the
 * capabilities go (the kernel's log needs CAP_SYSLOG to open, the guard
 * CAP_KILL). */
static void watch_limits(Host *h, const char *name, LimitWatch *ret, OomGuard *guard) {
        _cleanup_free_ char *unit = unit_name(name), *cgroup = NULL;
        if (unit && bus_unit_control_group(h->bus, unit, &cgroup) >= 0 && cgroup && cgroup_watch_begin("/", cgroup, ret) >= 0)
                (void) oomguard_start(cgroup, guard);
}

/* ... and told at its end, on stderr and in the journal of the cage's unit. */
static void report_limits(Host *h, const char *name, LimitWatch *w, OomGuard *guard) {
        _cleanup_(limit_hits_done) LimitHits hits = {};
        _cleanup_strv_free_ char **thrashed = NULL;
        _cleanup_free_ char *unit = unit_name(name), *text = NULL;
        (void) oomguard_stop(guard, &thrashed);
        if (!w->path || !unit || cgroup_watch_end("/", w, &hits) < 0)
                return;
        for (size_t i = 0; thrashed && thrashed[i]; i++, hits.thrashed++)
                (void) strv_extend(&hits.killed, thrashed[i]);
        /* Nothing to tell (the common case): no need to ask for the limits. */
        if (!limit_hits_any(&hits))
                return;
        UnitUsage u = {};
        if (bus_unit_usage(h->bus, unit, &u) < 0)
                u.memory_max = u.tasks_max = UINT64_MAX;
        free(u.control_group);
        if (!(text = limit_hits_message(&hits, name, u.memory_max, u.tasks_max)))
                return;
        fputs(text, stderr);
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                (void) sd_journal_send("MESSAGE=%s", line, "PRIORITY=%i", LOG_WARNING, "OBJECT_SYSTEMD_UNIT=%s", unit, NULL);
}

int cage_attach(Host *h, const CageSpec *s, char *const *command, char *const *kept, const char *term, CageError *err) {
        _cleanup_strv_free_ char **argv = NULL, **staged = NULL;
        _cleanup_(strv_free_erasep) char **env = NULL;
        int r = staged_environment(h, s->name, &staged, err);
        if (r < 0 || (r = agent_command(s, command, &argv, err)) < 0 || (r = agent_environment(s, term, kept, staged, &env, err)) < 0)
                return r;
        AgentRun run = { .machine = s->name, .argv = argv, .environ = env, .user = s->user.name, .directory = s->project,
                         .namespaces = builders_agent_namespaces(s) };
        _cleanup_(agent_session_done) AgentSession session = { .master = -1 };
        int status = 0;
        if ((r = bus_open_agent_session(h->bus, h->event, s->name, &session, err)) < 0)
                return cage_error_wrap(err, r, "attaching to cage %s", s->name);
        _cleanup_(limit_watch_done) LimitWatch watch = LIMIT_WATCH_NULL;
        _cleanup_(oomguard_stopp) OomGuard guard = OOM_GUARD_NULL;
        watch_limits(h, s->name, &watch, &guard);
        /* From here on: D-Bus as uid 0 and removing the cage's files. */
        if ((r = caps_drop_for_session(s->network == NETWORK_PRIVATE, s->persist && s->state_files)) < 0)
                return cage_error_set(err, r, "dropping capabilities: %s", strerror(-r));
        if ((r = bus_run_agent(&session, h->event, &run, &status, err)) < 0)
                return cage_error_wrap(err, r, "running the command in cage %s", s->name);
        report_limits(h, s->name, &watch, &guard);
        return status;
}
