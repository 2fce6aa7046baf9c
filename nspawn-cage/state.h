/* state.h: what nspawn-cage keeps about cages, all under one root-owned
 * directory outside any project: cages/NAME/ (the record and the rootfs),
 * gcroots/NAME (the Nix GC root). Rendered under a temporary name and
 * renamed, so half-made state is never mistaken for a cage. */
#pragma once

#include <sys/types.h>

#include "util.h"

#define STATE_DIR LOCALSTATEDIR "/lib/nspawn-cage"
#define SETTINGS_DIR "/run/systemd/nspawn"
#define SETTINGS_ETC_DIR "/etc/systemd/nspawn"
/* The values of Pass= variables a declared cage was started with, kept for
 * the shells opened into it later: root-only, on tmpfs, never in the
 * .nspawn file or on disk, removed with the cage. */
#define RUNTIME_DIR "/run/nspawn-cage"
#define ENVIRONMENT_DIR RUNTIME_DIR "/env"
/* cages/NAME/mnt: the idmapped staging mounts nspawn binds from. */
#define STAGING_SUBDIR "mnt"

typedef struct CageRecord {
        char *name;
        char *project;
        char *user;
        uid_t uid;
        char *unit;
        char *toplevel;
        pid_t helper; /* the nspawn-cage that started it, 0 once detached */
        bool keep;
        bool declared; /* started by `start NAME` from /etc/nspawn-cage/cages/NAME.conf */
        uint64_t created_usec;
        unsigned n_store_paths;
        uid_t uid_base; /* its user namespace's range (and lock file name), 0 if none */
        char *branch;   /* a linked worktree's branch (worktree.h), NULL if none */
        /* Agent state ([State] File=) to copy out when the cage ends: */
        char *state_dir;    /* the user's state directory on the host, NULL: none */
        char *state_home;   /* the user's home inside the cage */
        char **state_files; /* "HASH:PATH": PATH relative to both, HASH (16 hex digits, or
                             * "-" if there was none) of what was copied in */
} CageRecord;

void cage_record_done(CageRecord *r);
char *cage_record_format(const CageRecord *r);
int cage_record_parse(const char *text, CageRecord *ret);

/* Open (creating) the state directory, its cages/ and gcroots/, each
 * through state_dir_open(). */
int state_open(const char *dir, int *ret_fd);
/* Open (creating) dirfd/name as a directory of ours, mode 0700 (tightened
 * if an older version made it wider); -EPERM if it is not ours or is
 * writable by others. For the state and runtime directories. */
int state_dir_open(int dirfd, const char *name, int *ret_fd);
/* Open dirfd/name (made 0700 first if create) as a directory of ours that
 * nobody else may even read; -EPERM otherwise (nothing is tightened). */
int state_private_dir_open(int dirfd, const char *name, bool create, int *ret_fd);
/* Make cages/.NAME.XXXXXX with a rootfs/ below; returns its fd and name. */
int state_begin_cage(int state_fd, const char *name, int *ret_fd, char **ret_tmp);
/* Publish it as cages/NAME; -EEXIST if a cage of that name exists. */
int state_commit_cage(int state_fd, const char *tmp, const char *name);
int state_read_record(int state_fd, const char *name, CageRecord *ret);
int state_write_record(int cage_fd, const CageRecord *r);
/* Names of published cages, sorted. */
int state_list(int state_fd, char ***ret);
/* Remove cages/NAME (or a temporary dir) without following links or
 * crossing into mounts (-EBUSY then, with the path). */
int state_remove_dir(int state_fd, const char *relative, char **ret_busy_path);
/* Temporary dirs left by a crash, for gc. */
int state_list_temporary(int state_fd, char ***ret);
/* Keep NAME=VALUE assignments for cage `name` in dir/NAME (dir made 0700,
 * the file 0600, both root's; written under a temporary name, renamed). An
 * empty list removes the file. Values with control characters: -EINVAL. */
int state_save_environment(const char *dir, const char *name, char *const *assignments);
/* The kept assignments (an empty list when there are none). Refuses a file
 * not owned by root or readable by others (-EPERM). */
int state_load_environment(const char *dir, const char *name, char ***ret);
int state_remove_environment(const char *dir, const char *name);
