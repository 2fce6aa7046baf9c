/* agentstate.h: an agent's state kept across cages, per user and per
 * preset, in the user's own ~/.local/state/nspawn-cage/PRESET: made and
 * written with the user's rights, never through a symbolic link. [State]
 * Directory= entries are bound into the cage (spec.c); File= entries are
 * copied into the cage's home at start and back out when it ends, because
 * agents rewrite them by rename and a bound file would break. */
#pragma once

#include <sys/types.h>

#include "error.h"
#include "spec.h"
#include "state.h"
#include "user.h"

/* The largest File= copied in or out: bigger ones stay where they are. */
#define AGENT_STATE_FILE_MAX (UINT32_C(16) << 20)

/* Open, creating what is missing (mode 0700; ~/.local 0755), the user's
 * state directory of `preset`, as the user, along the canonical home path
 * without following any link. The home and the two directories nspawn-cage
 * owns (nspawn-cage/, PRESET/) must be the user's (-EPERM). Returns an fd
 * and the path. */
int agent_state_open(const HostUser *u, const char *preset, int *ret_fd, char **ret_path);

/* Make each of dirs (relative paths) below state_fd, as the user, 0700, no
 * links. On failure *err names the entry. */
int agent_state_make_dirs(const HostUser *u, int state_fd, char *const *dirs, CageError *err);

/* The hash copy-out compares against: 16 hex digits (FNV-1a 64). Pure. */
void agent_state_hash(const void *data, size_t size, char buf[static 17]);

/* Warnings for files left alone (a link, a FIFO, too big, unreadable):
 * path is relative to the home, why says what was found. */
typedef void (*AgentStateWarn)(const char *path, const char *why, void *userdata);

/* Copy each of files from state_fd (read as the user; regular files only)
 * into home_fd, the cage's home in its rootfs (written as root: owned by
 * the user's uid:gid, 0600, missing parents made the user's). Returns one
 * "HASH:PATH" entry per file ("-:PATH" when there was none to copy), for
 * agent_state_copy_out(). On failure *err names the entry. */
int agent_state_copy_in(const HostUser *u, int state_fd, int home_fd, char *const *files, AgentStateWarn warn,
                        void *userdata, char ***ret_entries, CageError *err);

/* A copy-out that found the user's copy changed since the copy-in goes to
 * PATH.nspawn-cage-conflict-ASIDE instead (see agent_state_copy_out). */
#define AGENT_STATE_ASIDE ".nspawn-cage-conflict-"

/* Copy back what the agent changed: each entry's file is read from home_fd
 * (as root, relative to it, never through a link; regular files of at most
 * AGENT_STATE_FILE_MAX bytes), and, if its hash differs from what was
 * copied in, written as the user into state_fd atomically (0600; without
 * CAP_SETUID, as root with the user's ids given to each new file and
 * directory before it is named, which needs CAP_CHOWN). A file
 * the agent removed leaves the user's copy as it is. No lost update: with
 * state_fd locked (flock, cages of one preset end one at a time), a file
 * whose user copy is no longer what was copied in (another cage ended
 * first) is written beside it as PATH AGENT_STATE_ASIDE ASIDE and warned
 * about, never over it. Returns the number copied; errors writing are
 * returned after trying every file. */
int agent_state_copy_out(const HostUser *u, int home_fd, int state_fd, char *const *entries, const char *aside, AgentStateWarn warn,
                         void *userdata, unsigned *ret_copied);

/* [State] Directory=: made in the user's state directory, as the user, and
 * bound into the cage's home (none without [State] Persist=). */
int agent_state_prepare(CageSpec *s, CageError *err);
/* [State] File=: from the user's state directory into the cage's home in
 * its fresh rootfs (rootfd), before the cage first starts. Returns the
 * state directory's path and the entries for the cage's record. */
int agent_state_stage_in(const CageSpec *s, int rootfd, char **ret_path, char ***ret_entries, CageError *err);
/* [State] File=: back out of a stopped cage's home (below state_dir_fd,
 * STATE_DIR) into the state directory its record names, as its user. */
int agent_state_restore(int state_dir_fd, const CageRecord *rec, CageError *err);
