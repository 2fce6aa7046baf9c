/* spec.h: the fully resolved description of one cage (name, project, user,
 * limits, binds, environment names, closure). It is the only input of the
 * renderers (settings, rootfs) and of the launch; resolving it touches no
 * file beyond what the caller hands in. */
#pragma once

#include <sys/types.h>

#include "config.h"
#include "network.h"
#include "user.h"

typedef struct BindSpec {
        char *source;
        char *destination;
        bool read_only;
        Origin origin;  /* the file and line that asked for it (file owned here; NULL: ProtectGit=);
                         * an administrator's are opened as root, all others as the user */
        bool no_idmap;  /* read-only on a file system without idmapped mounts: staged as a plain
                         * read-only clone */
        char *staged;   /* where nspawn binds it from (a staging mount, made from the fd the
                         * source was checked on); NULL: source, for as_is binds only */
        bool own_mount; /* staged is a mount of its own (every bind but as_is ones) */
        bool as_is;     /* writable but bound as it is: a socket, a device node, or nspawn-cage's
                         * own staging owned by the cage's range (display.c); never a user's files */
        bool as_user;   /* the agent's state ([State] Directory=): the directories on the way to
                         * its destination in the cage's home are the user's (rootfs.c) */
} BindSpec;

typedef struct CageSpec {
        char *name;
        char *project;
        HostUser user;
        char *preset;
        char **command;  /* argv of the agent */
        char **packages; /* sorted, unique */
        char *nixpkgs;
        uint64_t cpus, memory, swap, tasks;
        NetworkMode network;
        NetworkAllow *allow; /* [Network] Allow= (or the policy's AllowEgress=): only these, with Mode=private */
        size_t n_allow;
        NetworkLease lease;  /* Mode=private: the cage's /30, taken before its rootfs is built */
        bool leased;
        NetworkPort *publish;       /* [Network] Publish= */
        size_t n_publish;
        NetworkPort *host_services; /* [Network] HostService= */
        size_t n_host_services;
        bool x11, wayland, gpu;
        bool protect_git;
        bool persist;       /* [State] Persist= and the preset agree, and there is state */
        char **state_dirs;  /* [State] Directory=, relative to the home: bound from the state dir */
        char **state_files; /* [State] File=: copied in at start, out when the cage ends */
        BindSpec *binds;
        size_t n_binds;
        char **pass; /* names of variables passed to the agent */
        char **set;  /* NAME=VALUE for the agent */
        char *env_file;       /* [Environment] File=: Pass= values are taken from it first */
        bool env_file_as_root; /* set by a declared cage's (root's) file, not the user's */
        bool ssh_agent, git_config; /* [Forward] */
        bool nix_daemon;      /* NixDaemon=: the host's daemon socket, the whole store read-only (builders.h) */
        Containers containers; /* Containers=: nested namespaces and /dev/fuse for that engine (builders.h) */
        uid_t uid_base;       /* the cage's 64K range on the host (PrivateUsers=); 0 until picked */
        char *project_staged; /* the project's idmapped staging mount, bound by nspawn */
        char *store_dir;      /* the rootfs's own /nix/store directory: bound read-only over
                               * itself, so cage root cannot add entries beside the closure */
        char **devices;     /* device nodes allowed in the cage (GPU=), set by display_stage() */
        char *toplevel;     /* the closure's top-level store path, NULL until known */
        char **store_paths; /* its closure, sorted */
        char **ca_files;    /* the administrator's CA certificates, added to the closure's bundle */
        char *git_common;   /* a linked worktree's main git directory (worktree.h), NULL if none */
        char *git_worktree; /* and the worktree's NAME in COMMON/worktrees/ */
        char *git_branch;   /* and the branch its HEAD names at the start, NULL if detached */
} CageSpec;

/* A preset: the packages and command an agent needs (templates/presets). */
typedef struct Preset {
        char *command;
        char **packages;
        char **wants_pass; /* what the agent needs passed; informative */
        NetworkMode wants_network;
        char **state_dirs;  /* [State] Directory= */
        char **state_files; /* [State] File= */
        int persist;        /* [State] Persist=: -1 unset, 0 no, 1 yes */
} Preset;

CageSpec *cage_spec_free(CageSpec *s);
static inline void cage_spec_freep(CageSpec **s) { cage_spec_free(*s); }

void preset_done(Preset *p);
/* Parse a preset file's contents ([Cage] Command=, Packages=, [Environment]
 * Pass=, [Network] Mode=, [State] Directory=, File=, Persist=). */
int preset_parse(const char *label, const char *data, size_t size, Preset *ret, CageError *err);

/* Default machine name: the project directory's name, cleaned, plus 8 hex
 * digits of a hash of the user and the full path: stable and unique. */
int cage_default_name(const char *project, uid_t uid, char **ret);

/* Resolve one cage. `project` must already be canonical (realpath()), the
 * preset already loaded (NULL for none). Errors name the config line. */
int cage_spec_resolve(const Config *c, const char *project, const HostUser *user, const char *name,
                      const Preset *preset, CageSpec **ret, CageError *err);

/* Do the [State] paths overlap (one equal to or below another)? 0 if not;
 * -EINVAL with the two paths that do. Pure. */
int state_paths_check(char *const *dirs, char *const *files, const char **ret_a, const char **ret_b);

/* The user's state directory of the preset on the host:
 * HOME/.local/state/nspawn-cage/PRESET (never $XDG_STATE_HOME: the caller's
 * environment is not trusted). `home` should be canonical. */
char *state_dir_path(const char *home, const char *preset);

/* Append a bind of source to destination (both taken, even on failure),
 * all else zero for the caller to set. NULL when out of memory. */
BindSpec *cage_spec_add_bind(CageSpec *s, char *source, char *destination);

/* Bind each [State] Directory= read-write from state_dir/DIR to ~/DIR (as_user:
 * staged through an idmapped mount of its own). Call before
 * cage_spec_set_userns(); a no-op without persistence. */
int cage_spec_add_state_binds(CageSpec *s, const char *state_dir);

/* The administrator's CA certificates: the regular files named *.crt or
 * *.pem in `dir` (ADMIN_DIR/ca-certificates), sorted, into s->ca_files. A
 * missing directory is none. The cage's /etc/ssl/certs/ca-certificates.crt
 * is then the closure's bundle followed by them (rootfs.c). */
int cage_spec_add_ca_files(CageSpec *s, const char *dir);

/* With ProtectGit=: the project's .git directory bound onto itself (a
 * mount point: it cannot be renamed, removed or replaced; a gitfile .git is
 * bound read-only), and read-only over themselves its hooks/, config,
 * config.worktree and commondir, and those of each git directory below
 * .git/modules and .git/worktrees (at most 64), where they are a real
 * directory or file (checked without following any symbolic link, relative
 * to the project directory fd, opened as the user). What appears later is
 * for projectaudit.c at the cage's end. */
int cage_spec_protect_git(CageSpec *s, int project_fd);

/* The cage's private user namespace: range base on the host, and the
 * project bound from an idmapped staging mount at STAGING_DIR/project. Every
 * bind but as_is ones (below the project too) gets a staging mount of its
 * own, STAGING_DIR/bind-N (N: its index), so nspawn is handed only
 * root-owned paths. The caller makes those mounts. */
int cage_spec_set_userns(CageSpec *s, uid_t base, const char *staging_dir);

/* Validate and attach the closure: `paths` lists store paths, the first
 * being the top-level one. */
int cage_spec_set_closure(CageSpec *s, char *const *paths, CageError *err);


/* A project directory a cage may be built on: refuses "/", system
 * directories, the Nix store and the user's home itself; *err says why. */
int project_path_check(const char *canonical, const HostUser *user, CageError *err);
