/* test-projectaudit.c: what an agent could leave in a project to make the
 * user's git run code, or a set-id file, is found at the end and made
 * harmless (renamed, bits dropped), and what the user had at the start,
 * or a normal commit, is left alone. Each case: a fresh project, a
 * snapshot, the agent's change (a shell line), the check. */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "projectaudit.h"
#include "tap.h"
#include "util.h"

static char root[] = "/tmp/test-projectaudit.XXXXXX";

_printf_(1, 2) static int sh(const char *fmt, ...) {
        va_list ap;
        char *cmd = NULL;
        va_start(ap, fmt);
        int k = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -1;
        char *full = strdup_printf("set -e; cd '%s'; %s", root, cmd);
        int r = full ? system(full) : -1;
        free(cmd);
        free(full);
        return r;
}

/* A repository as git init makes it, in p/.git. */
#define MAKE_REPO "mkdir -p p/.git/objects p/.git/refs/heads p/.git/hooks && echo 'ref: refs/heads/main' > p/.git/HEAD && " \
                  "printf '[core]\\n' > p/.git/config && echo sample > p/.git/hooks/pre-commit.sample && echo x > p/f"

typedef struct Result {
        int r;
        ProjectAuditReport rep;
        char *all; /* every line of the report, joined */
} Result;

static Result run_case(const char *before, const char *agent, const ProjectAuditOptions *o) {
        Result res = {};
        sh("rm -rf p && mkdir p && %s", before);
        char *path = strdup_printf("%s/p", root);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(path);
        char *snap = NULL;
        bool trunc = false;
        res.r = project_audit_snapshot(fd, o, &snap, &trunc);
        if (res.r >= 0) {
                sh("cd p && %s", agent);
                res.r = project_audit_check(fd, o, snap, "T", &res.rep);
        }
        StrBuf b = {};
        char **lists[] = { res.rep.neutralised, res.rep.failed, res.rep.moved };
        const char *labels[] = { "N:", "F:", "M:" };
        for (size_t k = 0; k < 3; k++)
                for (size_t i = 0; lists[k] && lists[k][i]; i++)
                        strbuf_appendf(&b, "%s%s\n", labels[k], lists[k][i]);
        strbuf_append(&b, "");
        (void) strbuf_steal(&b, &res.all);
        free(snap);
        close(fd);
        return res;
}

static void result_done(Result *r) {
        project_audit_report_done(&r->rep);
        free(r->all);
}

static bool has(const Result *r, const char *needle) { return r->all && strstr(r->all, needle); }
static bool exists(const char *rel) {
        char *p = strdup_printf("%s/p/%s", root, rel);
        struct stat st;
        bool e = p && lstat(p, &st) == 0;
        free(p);
        return e;
}
static mode_t mode_of(const char *rel) {
        char *p = strdup_printf("%s/p/%s", root, rel);
        struct stat st;
        mode_t m = p && lstat(p, &st) == 0 ? st.st_mode & 07777 : 0;
        free(p);
        return m;
}

int main(void) {
        if (!mkdtemp(root)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        ProjectAuditOptions o = { .uid = getuid(), .git = true };
        Result r;

        r = run_case(MAKE_REPO, "echo y > f && mkdir -p .git/objects/ab && echo o > .git/objects/ab/cd && echo c > .git/COMMIT_EDITMSG "
                                "&& echo 'ref: refs/heads/other' > .git/HEAD.lock && mv .git/HEAD.lock .git/HEAD", &o);
        ok(r.r == 0 && !r.all[0], "a normal commit (objects, HEAD, work tree) is left alone");
        result_done(&r);

        r = run_case(MAKE_REPO, "mv .git .git.orig && mkdir -p .git/hooks .git/objects .git/refs && echo 'ref: refs/heads/main' > .git/HEAD "
                                "&& printf '#!/bin/sh\\ntouch canary\\n' > .git/hooks/pre-commit", &o);
        ok(r.r == 0 && has(&r, "N:.git -> .git.nspawn-cage-quarantine-T (a git repository") && !exists(".git") &&
           exists(".git.nspawn-cage-quarantine-T/hooks/pre-commit") && has(&r, "M:.git.orig (was .git)") && exists(".git.orig/HEAD") &&
           exists(".git.orig/config"),
           "a replaced .git is renamed out of git's reach, and where the original went is said");
        result_done(&r);

        r = run_case(MAKE_REPO, "mkdir -p sub/.git/objects sub/.git/refs sub/.git/hooks && echo 'ref: refs/heads/m' > sub/.git/HEAD "
                                "&& printf '[core]\\nfsmonitor = touch canary\\n' > sub/.git/config", &o);
        ok(r.r == 0 && has(&r, "N:sub/.git -> sub/.git.nspawn-cage-quarantine-T") && !exists("sub/.git") && !has(&r, "F:"),
           "a nested repository made in the cage is renamed whole");
        result_done(&r);

        r = run_case(MAKE_REPO, "mkdir -p .git/modules/evil/objects .git/modules/evil/refs .git/modules/evil/hooks "
                                "&& echo 'ref: refs/heads/m' > .git/modules/evil/HEAD && echo x > .git/modules/evil/hooks/pre-commit "
                                "&& mkdir sub && echo 'gitdir: ../.git/modules/evil' > sub/.git", &o);
        ok(r.r == 0 && !exists("sub/.git") && !exists(".git/modules/evil/HEAD") && has(&r, "N:sub/.git -> sub/.git.nspawn-cage-quarantine-T") &&
           has(&r, "N:.git/modules/evil/HEAD -> .git/modules/evil/HEAD.nspawn-cage-quarantine-T") && !has(&r, "F:"),
           "a gitfile into a new .git/modules/NAME: the gitfile renamed, the git directory no longer one");
        result_done(&r);

        r = run_case(MAKE_REPO, "echo 'touch canary' > .git/hooks/pre-commit && echo ../elsewhere > .git/commondir", &o);
        ok(r.r == 0 && !exists(".git/hooks/pre-commit") && !exists(".git/commondir") && exists(".git/hooks/pre-commit.nspawn-cage-quarantine-T") &&
           exists(".git/hooks/pre-commit.sample") && exists(".git/config") && exists(".git/HEAD"),
           "a hook and a commondir added to the project's .git are renamed; the rest stays");
        result_done(&r);

        r = run_case(MAKE_REPO, "echo '[core]' >> .git/config", &o);
        ok(r.r == 0 && !exists(".git/config") && has(&r, "N:.git/config -> .git/config.nspawn-cage-quarantine-T"), "a changed config is renamed");
        result_done(&r);

        r = run_case("echo x > p/f", "mkdir -p .git/objects .git/refs && echo 'ref: refs/heads/m' > .git/HEAD", &o);
        ok(r.r == 0 && !exists(".git") && exists(".git.nspawn-cage-quarantine-T/HEAD"), "a .git where the project had none is renamed");
        result_done(&r);

        r = run_case(MAKE_REPO, "mkdir -p src/objects src/refs && echo 'ref: refs/heads/m' > src/HEAD && printf '[core]\\nfsmonitor=x\\n' > src/config", &o);
        ok(r.r == 0 && !exists("src/HEAD") && exists("src/HEAD.nspawn-cage-quarantine-T"), "a directory made to look like a bare repository is no longer one");
        result_done(&r);

        r = run_case(MAKE_REPO, "ln -s /tmp sub-link && mkdir s && ln -s ../.git.evil s/.git", &o);
        ok(r.r == 0 && !exists("s/.git") && exists("s/.git.nspawn-cage-quarantine-T") && exists("sub-link"),
           "a .git link is renamed itself, never followed");
        result_done(&r);

        r = run_case(MAKE_REPO " && echo old > p/olds && chmod 4755 p/olds",
                     "echo x > tool && chmod 4755 tool && echo y > gtool && chmod 2755 gtool && mkdir -p .git/objects/x && "
                     "echo z > .git/objects/x/hidden && chmod 6755 .git/objects/x/hidden", &o);
        ok(r.r == 0 && mode_of("tool") == 0755 && mode_of("gtool") == 0755 && mode_of(".git/objects/x/hidden") == 0755 &&
           mode_of("olds") == 04755 && has(&r, "N:tool: set-uid bit removed (4755 -> 0755)"),
           "set-uid and set-gid bits made in the cage are dropped (also inside .git), the user's own are kept");
        result_done(&r);

        r = run_case(MAKE_REPO " && echo old > p/olds && chmod 4755 p/olds", "echo more >> olds", &o);
        ok(r.r == 0 && mode_of("olds") == 0755, "a set-uid file of the start written to in the cage loses its bit");
        result_done(&r);

        ProjectAuditOptions off = o;
        off.git = false;
        r = run_case(MAKE_REPO, "echo x > .git/hooks/pre-commit && echo x > tool && chmod 4755 tool", &off);
        ok(r.r == 0 && exists(".git/hooks/pre-commit") && mode_of("tool") == 0755, "ProtectGit=no: git is left alone, set-id bits are not");
        result_done(&r);

        ProjectAuditOptions small = o;
        small.max_entries = 5;
        r = run_case("mkdir p/d && touch p/d/1 p/d/2 p/d/3 p/d/4 p/d/5 p/d/6", "true", &small);
        ok(r.r == 0 && r.rep.truncated, "past the bound the report says not everything was checked");
        result_done(&r);
        small = o;
        small.max_depth = 3;
        r = run_case("mkdir -p p/a/b/c/d", "true", &small);
        ok(r.r == 0 && r.rep.truncated, "so it does past the depth bound");
        result_done(&r);

        char *path = strdup_printf("%s/p", root);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ProjectAuditReport rep = {};
        ok(project_audit_check(fd, &o, "not a snapshot\n", "T", &rep) == -EBADMSG, "a damaged snapshot is refused");
        ok(project_audit_check(fd, &o, "nspawn-cage project audit 1 git=1\n", "a/b", &rep) == -EINVAL, "a tag with '/' is refused");
        close(fd);
        free(path);

        sh("cd / && rm -rf '%s'", root);
        return tap_done();
}
