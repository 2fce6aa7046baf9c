/* projectaudit.h: what a cage leaves in the project that could run code as
 * its user on the host. One walk when the cage starts records it, one when
 * it ends compares; what is new or changed is renamed out of git's reach or
 * loses its set-uid/set-gid bits and file capabilities. Nothing is deleted,
 * nothing created, no link followed, no mount crossed.
 *
 * What counts (with git on):
 * - every entry named .git anywhere in the project (directory, gitfile,
 *   link): git finds it from any directory below;
 * - every directory git would take for a git directory (HEAD beside
 *   objects/, refs/ or commondir: a .git, .git/modules/NAME,
 *   .git/worktrees/NAME, a bare repository anywhere);
 * - in each of those, what names commands or other git directories:
 *   config, config.worktree, commondir, hooks/ and each hook.
 * Always: regular files of the user with S_ISUID, S_ISGID or a
 * security.capability attribute. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* The walk stops there; what lies beyond is reported, not checked. */
#define PROJECT_AUDIT_MAX_ENTRIES 4000000UL
#define PROJECT_AUDIT_MAX_DEPTH 256U

typedef struct ProjectAuditOptions {
        uid_t uid;     /* the project's user: only their files are touched */
        bool git;      /* ProtectGit=: look at git repositories too */
        unsigned long max_entries; /* 0: PROJECT_AUDIT_MAX_ENTRIES */
        unsigned max_depth;        /* 0: PROJECT_AUDIT_MAX_DEPTH */
        char *const *only; /* NULL: everything; else only the directories on the way to, or below,
                            * these relative paths are walked (a worktree's repository: its
                            * objects/, refs/, ..., worktrees/NAME, not the other worktrees) */
} ProjectAuditOptions;

typedef struct ProjectAuditReport {
        char **neutralised; /* "OLD -> NEW (why)" or "PATH: set-uid bit removed (4755 -> 0755)" */
        char **failed;      /* "PATH: why it could not be neutralised" */
        char **moved;       /* "PATH" where a .git recorded at the start is now */
        bool truncated;     /* the bound was reached: not everything was checked */
        unsigned long entries;
} ProjectAuditReport;

void project_audit_report_done(ProjectAuditReport *r);

/* Walk the project (a directory fd) and return the record to keep until
 * the check (text, one entry a line). *ret_truncated: the bound was reached. */
int project_audit_snapshot(int project_fd, const ProjectAuditOptions *o, char **ret_text, bool *ret_truncated);

/* Walk the project again and neutralise, against the snapshot, what is new
 * or changed (o->git is the snapshot's). tag makes the quarantine names: NAME.nspawn-cage-quarantine-TAG
 * (a file name part: no '/'). Paths in the report are relative to the
 * project. -EBADMSG: the snapshot is not one. */
int project_audit_check(int project_fd, const ProjectAuditOptions *o, const char *snapshot, const char *tag,
                        ProjectAuditReport *ret);

#define PROJECT_AUDIT_QUARANTINE ".nspawn-cage-quarantine-"
/* Where a cage keeps its snapshot, in its state directory. */
#define PROJECT_AUDIT_FILE "project-audit"
