/* plan.h: the CagePlan, built once from the resolved configuration before
 * anything of the cage is made: its closure (Toplevel=, --closure or Nix:
 * one code path), its rootfs plan and listing, its .nspawn text, its
 * staging list and its unit's properties. `render` prints a plan; `run`
 * and `start` execute one (launch.h). What `render` shows is what `run`
 * writes, byte for byte (tests/integration/cages.inner.sh checks it). */
#pragma once

#include "bus.h"
#include "error.h"
#include "layers.h"
#include "rootfs.h"

typedef struct PlanOptions {
        const char *closure_file; /* --closure FILE, or NULL */
        const char *data_dir;     /* Nix expressions */
        const char *gcroot;       /* where to register the closure's GC root, NULL for none (render) */
} PlanOptions;

typedef struct CagePlan {
        char **closure;  /* store paths, the top-level first */
        RootfsPlan rootfs;
        char *listing;   /* the rootfs plan as text (NAME.rootfs) */
        char *settings;  /* the .nspawn text (NAME.nspawn) */
        char **staging;  /* "STAGED <- SOURCE" for the project and each staged bind */
        char *unit;      /* nspawn-cage-NAME.service */
        char *rootfs_path; /* STATE_DIR/cages/NAME/rootfs */
} CagePlan;

void cage_plan_done(CagePlan *p);

/* The closure: Toplevel= (built at system build time), the --closure list
 * (read as the user), or Nix. With o->gcroot, a GC root is registered
 * there and every --closure path must be in the store. */
int plan_closure(const Cage *cage, const PlanOptions *o, char ***ret, CageError *err);

/* The closure of a start: Toplevel= and --closure as plan_closure(); from
 * Nix through the closure cache (closurecache.h) in cache_fd: reused when
 * its key matches (unless rebuild), else built into it. The entry stays
 * locked in *ret_lock_fd until the cage's record names its top-level;
 * *ret_previous is the top-level a rebuilt entry held before, if another. */
int plan_closure_cached(const Cage *cage, const PlanOptions *o, int cache_fd, bool rebuild, char ***ret, int *ret_lock_fd, char **ret_previous,
                        CageError *err);

/* From a spec whose closure, binds and uid range are set: the rootfs plan,
 * the listing, the .nspawn text, the staging list and the unit's name. */
int cage_plan_render(const Cage *cage, CagePlan *p, CageError *err);

/* ProtectGit=: the project's .git seen as the user, never following links. */
int plan_protect_git(Cage *cage, CageError *err);
