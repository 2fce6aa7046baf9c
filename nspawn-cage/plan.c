/* plan.c: building a CagePlan (plan.h). Nothing here changes the host but
 * a GC root, when asked for one. */
#include "autoconfig.h"

#include <fcntl.h>

#include "closure.h"
#include "closurecache.h"
#include "host.h"
#include "plan.h"
#include "settings.h"
#include "state.h"
#include "worktree.h"

void cage_plan_done(CagePlan *p) {
        strv_free(p->closure);
        rootfs_plan_done(&p->rootfs);
        free(p->listing);
        free(p->settings);
        strv_free(p->staging);
        free(p->unit);
        free(p->rootfs_path);
        *p = (CagePlan) {};
}

static int read_closure_file(const Cage *cage, const char *path, char ***ret, CageError *err) {
        FsIdentity id;
        int r = user_fs_enter(&cage->user, &id);
        if (r < 0)
                return cage_error_set(err, r, "cannot take the file system identity of %s: %s", cage->user.name, strerror(-r));
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        int saved = errno;
        user_fs_leave(&id);
        if (fd < 0)
                return cage_error_set(err, -saved, "--closure %s: %s", path, strerror(saved));
        _cleanup_free_ char *data = NULL;
        size_t size;
        if ((r = closure_read_list(fd, &data, &size)) < 0)
                return cage_error_set(err, r, "--closure %s: %s", path, r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
        if ((r = closure_parse_list(data, size, ret, err)) < 0) {
                free(err->file);
                err->file = strdup(path);
        }
        return r;
}

/* Toplevel=: built at system build time, no Nix evaluation now. */
static int toplevel_closure(const Setting *top, char ***ret, CageError *err) {
        _cleanup_strv_free_ char **closure = NULL, **paths = NULL;
        if (access(top->string, F_OK) < 0)
                return cage_error_set(err, -ENOENT, "%s:%u: Toplevel=%s is not in the Nix store; rebuild the system", top->origin.file,
                                      top->origin.line, top->string);
        if (closure_query(top->string, &closure) < 0)
                return cage_error_set(err, -EIO, "nix-store --query --requisites %s failed", top->string);
        if (strv_extend(&paths, top->string) < 0)
                return cage_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; closure[i]; i++)
                if (!streq(closure[i], top->string) && strv_extend(&paths, closure[i]) < 0)
                        return cage_error_set(err, -ENOMEM, "out of memory");
        *ret = TAKE_PTR(paths);
        return 0;
}

int plan_closure(const Cage *cage, const PlanOptions *o, char ***ret, CageError *err) {
        const Setting *top = &cage->config->settings[SETTING_TOPLEVEL];
        _cleanup_strv_free_ char **paths = NULL;
        int r;
        if (!top->set && !o->closure_file) {
                const CageSpec *s = cage->spec;
                ClosureRequest req = { .nixpkgs = s->nixpkgs, .packages = s->packages, .data_dir = o->data_dir };
                if ((r = closure_realise(&req, o->gcroot, ret, err)) < 0) {
                        if (o->gcroot)
                                (void) unlink(o->gcroot);
                        return cage_error_wrap(err, r, "building the closure failed");
                }
                return 0;
        }
        if ((r = top->set ? toplevel_closure(top, &paths, err) : read_closure_file(cage, o->closure_file, &paths, err)) < 0)
                return r;
        for (size_t i = 0; o->gcroot && !top->set && paths[i]; i++)
                if (access(paths[i], F_OK) < 0)
                        return cage_error_set(err, -ENOENT, "--closure %s: %s is not in the Nix store", o->closure_file, paths[i]);
        if (o->gcroot && closure_add_root(paths[0], o->gcroot) < 0)
                return cage_error_set(err, -EIO, "registering the GC root %s failed", o->gcroot);
        *ret = TAKE_PTR(paths);
        return 0;
}

int plan_closure_cached(const Cage *cage, const PlanOptions *o, int cache_fd, bool rebuild, char ***ret, int *ret_lock_fd, char **ret_previous,
                        CageError *err) {
        const CageSpec *s = cage->spec;
        if (cage->config->settings[SETTING_TOPLEVEL].set || o->closure_file)
                return plan_closure(cage, o, ret, err);
        ClosureRequest req = { .nixpkgs = s->nixpkgs, .packages = s->packages, .data_dir = o->data_dir };
        _cleanup_(closure_key_done) ClosureKey k = {};
        int r = closure_cache_key(&req, &k, err);
        if (r < 0)
                return cage_error_wrap(err, r, "the closure cache's key");
        if (k.uncacheable) {
                cage_notice("note: the closure is not cached (%s): Nix evaluates at every start", k.uncacheable);
                return plan_closure(cage, o, ret, err);
        }
        if (!rebuild && closure_cache_lookup(cache_fd, &k, true, ret, ret_lock_fd) >= 0)
                return 0;
        if ((r = closure_cache_build(cache_fd, STATE_DIR "/" CLOSURE_CACHE_DIR, &req, &k, ret, ret_lock_fd, ret_previous, err)) < 0)
                return cage_error_wrap(err, r, "building the closure failed");
        return 0;
}

int plan_protect_git(Cage *cage, CageError *err) {
        CageSpec *s = cage->spec;
        FsIdentity id;
        if (user_fs_enter(&s->user, &id) < 0)
                return cage_error_set(err, -EPERM, "cannot take the file system identity of %s", s->user.name);
        int r = cage_spec_protect_git(s, cage->project_fd);
        /* A linked worktree's repository, whatever ProtectGit= says: its
         * config and hooks are bound read-only in any case. */
        int k = r < 0 ? 0 : worktree_add_binds(s, cage->project_fd, err);
        user_fs_leave(&id);
        if (r < 0)
                return cage_error_set(err, r, "project %s: %s", s->project, strerror(-r));
        return k < 0 ? k : 0;
}

static int staging_list(const CageSpec *s, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r = strv_push(&l, strdup_printf("%s <- %s", s->project_staged, s->project));
        for (size_t i = 0; r >= 0 && i < s->n_binds; i++)
                if (s->binds[i].own_mount)
                        r = strv_push(&l, strdup_printf("%s <- %s", s->binds[i].staged, s->binds[i].source));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

int cage_plan_render(const Cage *cage, CagePlan *p, CageError *err) {
        const CageSpec *s = cage->spec;
        int r;
        free(p->settings);
        p->settings = NULL;
        if ((r = settings_render(s, &p->settings, err)) < 0)
                return r;
        rootfs_plan_done(&p->rootfs);
        free(p->listing);
        p->listing = NULL;
        if ((r = rootfs_plan_build(s, &p->rootfs)) < 0 || (r = rootfs_plan_format(&p->rootfs, s->user.name, &p->listing)) < 0)
                return cage_error_set(err, r, "rootfs plan: %s", strerror(-r));
        strv_free(p->staging);
        p->staging = NULL;
        free(p->unit);
        free(p->rootfs_path);
        p->unit = unit_name(s->name);
        p->rootfs_path = strdup_printf("%s/cages/%s/rootfs", STATE_DIR, s->name);
        if (staging_list(s, &p->staging) < 0 || !p->unit || !p->rootfs_path)
                return cage_error_set(err, -ENOMEM, "out of memory");
        return 0;
}
