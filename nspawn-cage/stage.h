/* stage.h: handing a file the user owns (a socket, a config file or
 * directory) to systemd-nspawn without letting it resolve a path the user
 * controls: the fd verified as the user is bind mounted into a root-only
 * directory of the cage's state, and nspawn binds it from there. Shared by
 * display.c (X11, Wayland) and forward.c (ssh-agent, git configuration). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pathfd.h"
#include "spec.h"

/* Why opening a user's file failed, as the end of a sentence naming it
 * ("is or passes through a symbolic link; give the real path"). */
const char *stage_open_reason(int r);

/* Mount source_fd at dirfd/name (a directory or an empty file made for it,
 * like the source), through an idmapped mount in which the user's uid and
 * gid are the agent's where the source's file system allows one, else as
 * it is (*ret_idmapped says which). `dir` is dirfd's path. The mount is
 * private: the cage keeps its copy when the host's is detached. */
int stage_user_fd(int dirfd, const char *dir, const char *name, int source_fd, const CageSpec *s, bool *ret_idmapped);

/* Add a bind of staged `source` (taken, even on failure) to the spec. */
int stage_add_bind(CageSpec *s, char *source, const char *destination, bool read_only);

/* Detach every mount on the entries of directory cage_fd/subdir; fine
 * when it does not exist. */
int stage_unmount_dir(int cage_fd, const char *subdir);

/* NAME=VALUE lines of cage_fd/path (written by a stage step) as a list;
 * nothing (and 0) when the file does not exist. */
int stage_read_environment(int cage_fd, const char *path, char ***ret);
