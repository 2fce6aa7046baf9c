/* test-worktree.c: what a linked worktree's .git file may name (worktree.c):
 * the binds of a real layout, and the refusals of a crafted one, as an
 * unprivileged user on a scratch tree. */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "util.h"
#include "worktree.h"

static char top[64];

static void put(const char *rel, const char *text) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", top, rel);
        FILE *f = fopen(p, "we");
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

static void dir(const char *rel) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", top, rel);
        mkdir(p, 0755);
}

/* worktree_add_binds() on project top/rel: its result, *ret_err the message. */
static int try(const char *rel, CageSpec **ret, char **ret_err) {
        CageSpec *s = calloc(1, sizeof *s);
        HostUser me = { .name = (char *) "me", .uid = geteuid(), .gid = getegid(), .home = (char *) "/" };
        CageError err = {};
        if (!s || host_user_copy(&me, &s->user) < 0 || !(s->project = strdup_printf("%s/%s", top, rel)))
                return -ENOMEM;
        int fd = open(s->project, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int r = worktree_add_binds(s, fd, &err);
        close(fd);
        *ret_err = strdup(cage_error_message(&err, r));
        cage_error_done(&err);
        *ret = s;
        return r;
}

static bool has_bind(const CageSpec *s, const char *rel, bool read_only) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", top, rel);
        for (size_t i = 0; i < s->n_binds; i++)
                if (streq(s->binds[i].source, p) && streq(s->binds[i].destination, p) && s->binds[i].read_only == read_only)
                        return true;
        return false;
}

int main(void) {
        static const struct { const char *in, *out; } norm[] = {
                { "/a/b/../c", "/a/c" }, { "/a//b/./c/", "/a/b/c" }, { "/..", "/" }, { "/a/../../b", "/b" }, { "/", "/" },
        };
        for (size_t i = 0; i < ELEMENTSOF(norm); i++) {
                char *n = worktree_path_normalise(norm[i].in);
                ok(n && streq(n, norm[i].out), "normalise %s -> %s (got %s)", norm[i].in, norm[i].out, strempty(n));
                free(n);
        }
        ok(!worktree_path_normalise("a/b"), "a relative path is not normalised");
        ok(worktree_branch_is_valid("feat/one") && worktree_branch_is_valid("fix-1.2_x"), "branch names taken");
        static const char *const bad[] = { "", "-b", "../x", "a/../b", "/a", "a/", "a..b", "a//b", "x.lock", ".x", "a/.x", "a b", "a\nb", "HEAD",
                                           "a:b", "a~1" };
        bool all = true;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                all = all && !worktree_branch_is_valid(bad[i]);
        ok(all, "branch names refused: empty, leading - . /, '..', '//', '/.', .lock, spaces, controls, HEAD, ':' '~'");

        strcpy(top, "/tmp/test-worktree.XXXXXX");
        ok(mkdtemp(top) != NULL, "scratch directory");
        char buf[512];
        dir("repo");
        dir("repo/.git");
        put("repo/.git/HEAD", "ref: refs/heads/main\n");
        put("repo/.git/config", "[core]\n");
        dir("repo/.git/objects");
        dir("repo/.git/refs");
        dir("repo/.git/hooks");
        dir("repo/.git/logs");
        dir("repo/.git/worktrees");
        dir("repo/.git/worktrees/wt");
        put("repo/.git/worktrees/wt/HEAD", "ref: refs/heads/fa\n");
        put("repo/.git/worktrees/wt/commondir", "../..\n");
        snprintf(buf, sizeof buf, "%s/wt/.git\n", top);
        put("repo/.git/worktrees/wt/gitdir", buf);
        dir("wt");
        snprintf(buf, sizeof buf, "gitdir: %s/repo/.git/worktrees/wt\n", top);
        put("wt/.git", buf);

        CageSpec *s = NULL;
        char *msg = NULL;
        int r = try("wt", &s, &msg);
        ok(r == 1 && has_bind(s, "repo/.git/objects", false) && has_bind(s, "repo/.git/refs", false) && has_bind(s, "repo/.git/logs", false) &&
           has_bind(s, "repo/.git/worktrees/wt", false) && has_bind(s, "repo/.git/config", true) && has_bind(s, "repo/.git/hooks", true) &&
           has_bind(s, "repo/.git/HEAD", true) && has_bind(s, "repo/.git/worktrees/wt/commondir", true) &&
           has_bind(s, "repo/.git/worktrees/wt/gitdir", true) && !has_bind(s, "repo", false) && !has_bind(s, "repo/.git", false),
           "a linked worktree: objects, refs, logs and its own directory read-write; config, hooks, HEAD, commondir, gitdir read-only; "
           "nothing else of the repository (%d: %s)", r, strempty(msg));
        ok(s && s->git_branch && streq(s->git_branch, "fa") && s->git_worktree && streq(s->git_worktree, "wt"), "its branch and name are known");
        cage_spec_free(s);
        free(msg);

        put("wt/.git", "gitdir: ../repo/.git/worktrees/wt\n");
        r = try("wt", &s, &msg);
        ok(r == 1, "a relative gitdir (worktree.useRelativePaths) works the same (%d: %s)", r, strempty(msg));
        cage_spec_free(s);
        free(msg);

        static const struct { const char *gitfile, *project, *needle; } refused[] = {
                { "gitdir: /etc\n", "wt", "not a worktree's git directory" },
                { "gitdir: /root/.git/worktrees/x\n", "wt", "/root/.git/worktrees/x" },
                { "gitdir: @/link/.git/worktrees/wt\n", "wt", "symbolic link" },
                { "gitdir: @/repo/.git/worktrees/wt\n", "other", "not this project" },
                { "gitdir: @/repo/.git/worktrees/nope\n", "wt", "does not exist" },
                { "gitdir: @/repo/.git/worktrees/wt\n", "repo/.git/refs", "inside that repository" },
        };
        symlinkat("repo", open(top, O_PATH | O_DIRECTORY | O_CLOEXEC), "link");
        dir("other");
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                const char *at = strchr(refused[i].gitfile, '@');
                if (at)
                        snprintf(buf, sizeof buf, "%.*s%s%s", (int) (at - refused[i].gitfile), refused[i].gitfile, top, at + 1);
                else
                        snprintf(buf, sizeof buf, "%s", refused[i].gitfile);
                char rel[64];
                snprintf(rel, sizeof rel, "%s/.git", refused[i].project);
                put(rel, buf);
                r = try(refused[i].project, &s, &msg);
                ok(r < 0 && msg && strstr(msg, refused[i].needle) && s->n_binds == 0,
                   "refused: %.*s in %s (%d: %s)", (int) strcspn(refused[i].gitfile, "\n"), refused[i].gitfile, refused[i].project, r, strempty(msg));
                cage_spec_free(s);
                free(msg);
        }
        snprintf(buf, sizeof buf, "rm -rf '%s'", top);
        (void) !system(buf);
        return tap_done();
}
