/* verb-run.c: `run` (a cage on a project, the agent on this terminal) and
 * `start` (a declared cage, left running). */
#include "autoconfig.h"

#include <time.h>

#include "envfile.h"
#include "launch.h"
#include "teardown.h"
#include "verbs.h"
#include "worktree.h"

static LaunchOptions launch_options(const Args *a, bool keep, bool declared) {
        return (LaunchOptions) { .closure_file = a->closure, .data_dir = load_data_dir(&a->load), .keep = keep, .declared = declared,
                                 .rebuild = a->rebuild, .timeout_usec = a->timeout_usec, .env = &a->env };
}

/* A second `run` on a running cage of the user's attaches to it, with the
 * closure its record names. */
static int attach_running(Host *h, const Args *a, Cage *cage, char *const *command, CageError *err) {
        CageSpec *s = cage->spec;
        if (!s->toplevel) {
                _cleanup_(cage_record_done) CageRecord rec = {};
                _cleanup_strv_free_ char **p = NULL;
                _cleanup_(cage_error_done) CageError ignored = {};
                if (state_read_record(h->state_fd, s->name, &rec) >= 0 && rec.toplevel && strv_extend(&p, rec.toplevel) >= 0)
                        (void) cage_spec_set_closure(s, p, &ignored);
        }
        _cleanup_(strv_free_erasep) char **passed = NULL;
        int r = agent_passed_environment(s, &cage->config->settings[SETTING_ENV_FILE], &a->env, &passed, err);
        return r < 0 ? r : cage_attach(h, s, command, passed, host_env_get(&a->env, "TERM"), err);
}

/* What is left of an earlier cage of that name: attached to when it runs
 * (returns 1 and *ret_status), removed when it is stale. */
static int earlier_cage(Host *h, const Args *a, Cage *cage, char *const *command, int *ret_status, CageError *err) {
        CageSpec *s = cage->spec;
        _cleanup_(cage_record_done) CageRecord rec = {};
        if (state_read_record(h->state_fd, s->name, &rec) < 0)
                return 0;
        if (rec.uid != s->user.uid)
                return cage_error_set(err, -EEXIST, "a cage named %s belongs to another user; choose another --name", s->name);
        if (cage_running(h, &rec)) {
                int st = attach_running(h, a, cage, command, err);
                if (st < 0)
                        return st;
                *ret_status = st;
                return 1;
        }
        if (cage_locked(h, s->name))
                return cage_error_set(err, -EBUSY, "cage %s is being started or stopped by another nspawn-cage; try again", s->name);
        int r = cage_teardown(h, s->name, err);
        if (r < 0)
                return cage_error_add(err, r, "cage %s left state that could not be removed; see above, then run 'nspawn-cage gc'", s->name);
        return 0;
}

/* --worktree BRANCH: the worktree beside the project, made as the user. */
static int run_worktree(const Args *a, char **ret_path, CageError *err) {
        _cleanup_(host_user_done) HostUser user = {};
        int r = invoking_user(a->load.sudo_uid, &user, err);
        if (r < 0)
                return r;
        if (user.uid == 0)
                return cage_error_set(err, -EPERM, "the cage's user would be root; run nspawn-cage through sudo as the user who owns the project");
        return worktree_create(&user, a->load.project, a->worktree, ret_path, err);
}

int verb_run(const Args *a) {
        _cleanup_(cage_done) Cage cage = CAGE_NULL;
        _cleanup_(host_done) Host h = HOST_NULL;
        _cleanup_(cage_error_done) CageError err = {};
        char *shell[] = { "bash", "-l", NULL };
        int r, status = 0;
        LoadOptions lo = a->load;
        _cleanup_free_ char *worktree = NULL;
        if (require_root(&err) < 0 || (a->worktree && run_worktree(a, &worktree, &err) < 0))
                return cage_error_print(&err);
        lo.project = worktree ? worktree : lo.project;
        if (cage_load(&cage, &lo, &err) < 0)
                return cage_error_print(&err);
        CageSpec *s = cage.spec;
        if (s->user.uid == 0)
                return verb_fail("the cage's user would be root; run nspawn-cage through sudo as the user who owns the project");
        if (declared_name_refuse(load_admin_dir(&a->load), s->name, &err) < 0 || host_open(&h, &err) < 0 || host_check_machined(&h, &err) < 0)
                return cage_error_print(&err);
        char *const *command = a->command ? a->command : a->shell ? shell : s->command;
        if ((r = earlier_cage(&h, a, &cage, command, &status, &err)) != 0)
                return r < 0 ? cage_error_print(&err) : status;

        _cleanup_(strv_free_erasep) char **passed = NULL;
        _cleanup_close_ int lock_fd = -1;
        LaunchOptions o = launch_options(a, a->keep, false);
        struct timespec started;
        (void) clock_gettime(CLOCK_REALTIME, &started);
        if (cage_launch(&h, &cage, &o, &passed, &lock_fd, &err) < 0)
                return cage_error_print(&err);
        status = cage_attach(&h, s, command, passed, host_env_get(&a->env, "TERM"), &err);
        if (status < 0)
                (void) cage_error_print(&err);
        if (s->n_allow > 0)
                egress_print_summary(s->name, (uint64_t) started.tv_sec * 1000000 + (uint64_t) started.tv_nsec / 1000);
        if (a->keep) {
                cage_record_detached(&h, s->name, lock_fd);
                cage_notice("cage %s keeps running: 'nspawn-cage shell %s', 'machinectl shell %s@%s', 'nspawn-cage stop %s'", s->name, s->name,
                            s->user.name, s->name, s->name);
        } else if (cage_teardown(&h, s->name, &err) < 0) {
                (void) cage_error_print(&err);
                status = status ? status : 1;
        }
        return status < 0 ? 1 : status;
}

/* Only this declared cage (kind and user) is "already running": anything
 * else of that name is not the administrator's. Returns 1 if it runs. */
static int declared_running(Host *h, const Cage *cage, const char *file, CageError *err) {
        _cleanup_(cage_record_done) CageRecord rec = {};
        if (state_read_record(h->state_fd, cage->spec->name, &rec) < 0)
                return 0;
        bool running = cage_running(h, &rec);
        if (running && !(rec.declared && rec.uid == cage->spec->user.uid))
                return cage_error_set(err, -EEXIST, "a cage named %s is running, but it is %s's %s cage (uid %u, project %s), not the one declared "
                                      "in %s (User=%s); not taking it for that: stop it with 'nspawn-cage stop %s', then start again", rec.name,
                                      rec.user, rec.declared ? "declared" : "ad hoc", (unsigned) rec.uid, rec.project, file,
                                      cage->spec->user.name, rec.name);
        if (running)
                return 1;
        int r = cage_teardown(h, cage->spec->name, err);
        return r < 0 ? r : 0;
}

int verb_start(const Args *a) {
        _cleanup_(cage_done) Cage cage = CAGE_NULL;
        _cleanup_(host_done) Host h = HOST_NULL;
        _cleanup_(cage_error_done) CageError err = {};
        const char *name = a->load.project;
        if (require_root(&err) < 0)
                return cage_error_print(&err);
        if (invoked_through_sudo())
                return verb_fail("start is for declared cages and runs as root (systemctl start nspawn-cage@%s)", name);
        if (!machine_name_is_valid(name))
                return verb_fail("start NAME: '%s' is not a valid cage name", name);
        _cleanup_free_ char *file = declared_file(load_admin_dir(&a->load), name);
        if (!file)
                return verb_fail("out of memory");
        if (access(file, F_OK) < 0)
                return verb_fail("no declared cage %s: %s does not exist", name, file);
        LoadOptions lo = a->load;
        lo.declared = file;
        lo.name = name;
        lo.project = NULL;
        if (cage_load(&cage, &lo, &err) < 0 || host_open(&h, &err) < 0 || host_check_machined(&h, &err) < 0)
                return cage_error_print(&err);
        if (cage.spec->user.uid == 0)
                return verb_fail("%s: User=root is refused; a cage's user must not be root", file);
        int r = declared_running(&h, &cage, file, &err);
        if (r < 0)
                return cage_error_print(&err);
        if (r > 0) {
                printf("cage %s is already running\n", cage.spec->name);
                return 0;
        }
        /* The values of Pass= (from File= or EnvironmentFile= of the
         * unit) are kept for the shells opened into the cage later. */
        _cleanup_(strv_free_erasep) char **kept = NULL;
        _cleanup_close_ int lock_fd = -1;
        LaunchOptions o = launch_options(a, true, true);
        if (cage_launch(&h, &cage, &o, &kept, &lock_fd, &err) < 0)
                return cage_error_print(&err);
        cage_record_detached(&h, cage.spec->name, lock_fd);
        printf("cage %s started: 'machinectl shell %s@%s', 'nspawn-cage stop %s'\n", cage.spec->name, cage.spec->user.name, cage.spec->name,
               cage.spec->name);
        return 0;
}
