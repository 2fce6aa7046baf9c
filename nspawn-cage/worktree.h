/* worktree.h: a project that is a linked git worktree (`git worktree add`):
 * its .git is a file naming COMMON/worktrees/NAME, a directory of the main
 * repository the cage would not otherwise have. Found and checked as the
 * user, never through a link; what git needs of COMMON to commit on the
 * worktree's branch is then bound into the cage at the same paths. */
#pragma once

#include "error.h"
#include "spec.h"

/* Look at PROJECT/.git (project_fd; call with the user's file system
 * identity). 0: not a linked worktree (no .git file, or one naming a
 * directory inside the project: project content, as before). 1: one, and
 * s->git_common, s->git_worktree are set and the binds added: the admin
 * directory read-write with its commondir, gitdir, config.worktree
 * read-only over them; COMMON's objects/, refs/, logs/, reftable/
 * read-write; COMMON's config, hooks/, info/, HEAD, packed-refs, shallow
 * read-only. < 0: refused, *err says why and how to fix it: the .git file
 * names anything but COMMON/worktrees/NAME of a repository of the user's
 * (owner checked on every directory and file used) whose gitdir file
 * names this project's .git back. */
int worktree_add_binds(CageSpec *s, int project_fd, CageError *err);

/* Lexical normalisation of an absolute path ("//", ".", ".." removed),
 * enough where no link is followed after. NULL if not absolute or out of
 * memory. Pure. */
char *worktree_path_normalise(const char *path);

/* --worktree BRANCH: is it a branch name nspawn-cage takes (a
 * conservative part of git's rules, safe in a directory name)? Pure. */
bool worktree_branch_is_valid(const char *branch);

/* `run --worktree BRANCH PROJECT`: the worktree PROJECT-BRANCH ('/' in
 * BRANCH as '-') beside PROJECT, made with 'git worktree add' (on BRANCH,
 * new from HEAD if it does not exist) run as the user, or reused if it is
 * there. Returns its path. */
int worktree_create(const HostUser *u, const char *project, const char *branch, char **ret_path, CageError *err);

/* Where a cage keeps the common directory's snapshot (projectaudit.h), in
 * its state directory: "COMMON\nNAME\n" then the snapshot. */
#define WORKTREE_AUDIT_FILE "worktree-audit"
