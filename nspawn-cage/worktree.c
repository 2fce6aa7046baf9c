/* worktree.c: a linked worktree's repository, found from the project's .git
 * file as the user and bound into the cage piece by piece (worktree.h).
 * The .git file is the agent's to write: what it names is trusted only once
 * it is, along no link, COMMON/worktrees/NAME of a repository of the user's
 * whose NAME/gitdir names this very project back. */
#include "autoconfig.h"

#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pathfd.h"
#include "worktree.h"

#define GITFILE_MAX 4096

char *worktree_path_normalise(const char *path) {
        if (!path || path[0] != '/')
                return NULL;
        char *out = malloc(strlen(path) + 2);
        if (!out)
                return NULL;
        size_t o = 0;
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                const char *e = strchrnul(p, '/');
                size_t l = (size_t) (e - p);
                if (l == 2 && p[0] == '.' && p[1] == '.') {
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--;
                } else if (!(l == 1 && p[0] == '.')) {
                        out[o++] = '/';
                        memcpy(out + o, p, l);
                        o += l;
                }
                p = e;
        }
        if (o == 0)
                out[o++] = '/';
        out[o] = 0;
        return out;
}

static bool path_is_under(const char *path, const char *top) {
        const char *rest = startswith(path, top);
        return rest && (*rest == 0 || *rest == '/');
}

/* dirfd/name, no link followed: a regular file of uid's; its first line. */
static int read_line_beneath(int dirfd, const char *name, uid_t uid, char **ret) {
        _cleanup_close_ int fd = path_open_nofollow(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY, RESOLVE_BENEATH);
        struct stat st;
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_uid != uid)
                return -EPERM;
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = read_regular_fd(fd, GITFILE_MAX, &data, &size);
        if (r < 0)
                return r;
        if (memchr(data, 0, size))
                return -EBADMSG;
        data[strcspn(data, "\r\n")] = 0;
        *ret = TAKE_PTR(data);
        return 0;
}

/* dirfd/name, no link followed: its type (0 if absent or a link) and owner. */
static mode_t type_beneath(int dirfd, const char *name, uid_t *ret_uid) {
        _cleanup_close_ int fd = path_open_nofollow(dirfd, name, O_PATH, RESOLVE_BENEATH);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || S_ISLNK(st.st_mode))
                return 0;
        if (ret_uid)
                *ret_uid = st.st_uid;
        return st.st_mode & S_IFMT;
}

/* A relative line of a git file is relative to the directory holding it. */
static char *resolve_line(const char *dir, const char *line) {
        _cleanup_free_ char *joined = line[0] == '/' ? strdup(line) : strdup_printf("%s/%s", dir, line);
        return joined ? worktree_path_normalise(joined) : NULL;
}

static const char *open_reason(int r) {
        switch (r) {
        case -ELOOP: return "a symbolic link is on its path, and nspawn-cage follows none there";
        case -ENOENT: return "it does not exist (a worktree removed, or moved without 'git worktree repair'?)";
        case -EACCES: return "you cannot reach it";
        case -ENOTDIR: return "it is not a directory";
        case -EPERM: return "it is not yours";
        case -EBADFD: return "it is not a regular file";
        default: return strerror(-r);
        }
}

static int bind_part(CageSpec *s, const char *dir, const char *name, bool read_only) {
        BindSpec *b = cage_spec_add_bind(s, strdup_printf("%s/%s", dir, name), strdup_printf("%s/%s", dir, name));
        if (!b)
                return -ENOMEM;
        b->read_only = read_only;
        return 0;
}

/* The repository's directory common (common_fd) and the worktree's admin
 * directory in it: checked, as the user, to be what git worktree add makes. */
static int check_repository(const CageSpec *s, int common_fd, const char *common, const char *name, const char *admin, int *ret_admin_fd,
                            const char **ret_why) {
        static const struct { const char *name; mode_t type; } needed[] = {
                { "HEAD", S_IFREG }, { "config", S_IFREG }, { "objects", S_IFDIR }, { "refs", S_IFDIR },
        };
        uid_t uid = s->user.uid, owner = (uid_t) -1;
        struct stat st;
        if (fstat(common_fd, &st) < 0 || st.st_uid != uid)
                return *ret_why = "its repository's git directory is not yours", -EPERM;
        for (size_t i = 0; i < ELEMENTSOF(needed); i++)
                if (type_beneath(common_fd, needed[i].name, &owner) != needed[i].type || owner != uid)
                        return *ret_why = "its repository's git directory lacks HEAD, config, objects/ or refs/ of yours: not a git directory", -EPERM;
        _cleanup_free_ char *rel = strdup_printf("worktrees/%s", name), *commondir = NULL, *gitdir = NULL;
        if (!rel)
                return -ENOMEM;
        _cleanup_close_ int admin_fd = path_open_nofollow(common_fd, rel, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH);
        if (admin_fd < 0)
                return *ret_why = open_reason(admin_fd), admin_fd;
        if (fstat(admin_fd, &st) < 0 || st.st_uid != uid || type_beneath(admin_fd, "HEAD", NULL) != S_IFREG)
                return *ret_why = "the worktree's git directory is not yours, or has no HEAD", -EPERM;
        int r = read_line_beneath(admin_fd, "commondir", uid, &commondir);
        if (r < 0)
                return *ret_why = "the worktree's commondir file is missing or not yours", r;
        _cleanup_free_ char *c = resolve_line(admin, commondir);
        if (!c || !streq(c, common))
                return *ret_why = "the worktree's commondir names another repository", -EPERM;
        if ((r = read_line_beneath(admin_fd, "gitdir", uid, &gitdir)) < 0)
                return *ret_why = "the worktree's gitdir file is missing or not yours", r;
        _cleanup_free_ char *g = resolve_line(admin, gitdir), *mine = strdup_printf("%s/.git", s->project);
        if (!g || !mine || !streq(g, mine))
                return *ret_why = "that worktree is not this project: its gitdir file names another .git ('git worktree repair' fixes a moved one)", -EPERM;
        *ret_admin_fd = TAKE_FD(admin_fd);
        return 0;
}

int worktree_add_binds(CageSpec *s, int project_fd, CageError *err) {
        _cleanup_free_ char *line = NULL;
        int r = read_line_beneath(project_fd, ".git", s->user.uid, &line);
        if (r == -ENOMEM)
                return cage_error_set(err, r, "out of memory");
        const char *target = r < 0 ? NULL : startswith(line, "gitdir: ");
        if (isempty(target))
                return 0; /* a directory, a link, not a gitfile of the user's: not followed, as before */
        _cleanup_free_ char *admin = resolve_line(s->project, target);
        if (!admin)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if (path_is_under(admin, s->project))
                return 0; /* a git directory inside the project: project content */
#define REFUSE(why) cage_error_set(err, -EPERM, "project %s: its .git file names %s: %s; nspawn-cage gives a cage only the git directory " \
                                   "of a linked worktree of yours ('git worktree add'), COMMON/worktrees/NAME; fix or remove %s/.git", \
                                   s->project, admin, (why), s->project)
        const char *slash = strrchr(admin, '/');
        _cleanup_free_ char *parent = strndup(admin, (size_t) (slash - admin));
        if (!parent)
                return cage_error_set(err, -ENOMEM, "out of memory");
        const char *pslash = strrchr(parent, '/'), *name = slash + 1;
        if (!pslash || pslash == parent || !streq(pslash + 1, "worktrees"))
                return REFUSE("it is not a worktree's git directory (a submodule's checkout, or 'git init --separate-git-dir'? start the cage "
                              "on the superproject, or keep the repository inside the project)");
        _cleanup_free_ char *common = strndup(parent, (size_t) (pslash - parent));
        if (!common)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if (path_is_under(s->project, common))
                return REFUSE("the project lies inside that repository's git directory");
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return cage_error_set(err, -errno, "/: %s", strerror(errno));
        _cleanup_close_ int common_fd = path_open_nofollow(root, common + 1, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH), admin_fd = -1;
        const char *why = NULL;
        if (common_fd < 0)
                return REFUSE(open_reason(common_fd));
        if ((r = check_repository(s, common_fd, common, name, admin, &admin_fd, &why)) < 0)
                return r == -ENOMEM ? cage_error_set(err, r, "out of memory") : REFUSE(why);
#undef REFUSE
        /* What git reads and writes to commit on this branch; the rest of
         * the repository (its work tree, the other worktrees) stays out. */
        static const struct { const char *name; mode_t type; bool read_only; } common_parts[] = {
                { "objects", S_IFDIR, false }, { "refs", S_IFDIR, false }, { "logs", S_IFDIR, false }, { "reftable", S_IFDIR, false },
                { "HEAD", S_IFREG, true }, { "packed-refs", S_IFREG, true }, { "shallow", S_IFREG, true },
                { "config", S_IFREG, true }, { "hooks", S_IFDIR, true }, { "info", S_IFDIR, true },
        }, admin_parts[] = {
                { "commondir", S_IFREG, true }, { "gitdir", S_IFREG, true }, { "config.worktree", S_IFREG, true },
        };
        for (size_t i = 0; i < ELEMENTSOF(common_parts); i++)
                if (type_beneath(common_fd, common_parts[i].name, NULL) == common_parts[i].type &&
                    (r = bind_part(s, common, common_parts[i].name, common_parts[i].read_only)) < 0)
                        return cage_error_set(err, r, "out of memory");
        BindSpec *b = cage_spec_add_bind(s, strdup(admin), strdup(admin));
        if (!b)
                return cage_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < ELEMENTSOF(admin_parts); i++)
                if (type_beneath(admin_fd, admin_parts[i].name, NULL) == admin_parts[i].type &&
                    (r = bind_part(s, admin, admin_parts[i].name, admin_parts[i].read_only)) < 0)
                        return cage_error_set(err, r, "out of memory");
        /* For `list`: the branch, if HEAD names one. */
        _cleanup_free_ char *head = NULL;
        const char *branch = read_line_beneath(admin_fd, "HEAD", s->user.uid, &head) < 0 ? NULL : startswith(head, "ref: refs/heads/");
        free(s->git_branch);
        s->git_branch = !isempty(branch) && !string_has_cc(branch) ? strdup(branch) : NULL;
        free(s->git_common);
        free(s->git_worktree);
        s->git_common = TAKE_PTR(common);
        s->git_worktree = strdup(name);
        if (!s->git_worktree)
                return cage_error_set(err, -ENOMEM, "out of memory");
        return 1;
}

bool worktree_branch_is_valid(const char *b) {
        /* A conservative part of git check-ref-format: what is also a safe
         * piece of a directory name once '/' becomes '-'. */
        size_t n = b ? strlen(b) : 0;
        if (n == 0 || n > 100 || b[0] == '-' || b[0] == '/' || b[0] == '.' || b[n - 1] == '/' || b[n - 1] == '.' || strstr(b, "..") ||
            strstr(b, "//") || strstr(b, "/.") || (n >= 5 && streq(b + n - 5, ".lock")) || streq(b, "HEAD"))
                return false;
        for (const char *p = b; *p; p++)
                if (!(isalnum((unsigned char) *p) || strchr("._-/", *p)))
                        return false;
        return true;
}

/* git ARGS in dir, as the user (all ids, their groups), with an
 * environment of its own; git's output goes to the caller's terminal.
 * Returns git's exit status, or -errno. */
static int git_as_user(const HostUser *u, const char *dir, char *const *args) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, STDIN_FILENO) < 0 || initgroups(u->name, u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
                    setresuid(u->uid, u->uid, u->uid) < 0 || chdir(dir) < 0)
                        _exit(127);
                (void) clearenv();
                if (setenv("HOME", u->home, 1) < 0 || setenv("USER", u->name, 1) < 0 || setenv("LOGNAME", u->name, 1) < 0 ||
                    setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1) < 0 || setenv("LANG", "C.UTF-8", 1) < 0)
                        _exit(127);
                execvp("git", args);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int worktree_create(const HostUser *u, const char *project, const char *branch, char **ret_path, CageError *err) {
        if (!worktree_branch_is_valid(branch))
                return cage_error_set(err, -EINVAL, "--worktree %s: not a branch name nspawn-cage takes (letters, digits, '.', '_', '-', '/'; "
                                      "no '..', no leading '-', '.' or '/')", strempty(branch));
        FsIdentity id;
        int r = user_fs_enter(u, &id);
        if (r < 0)
                return cage_error_set(err, r, "cannot take the file system identity of %s", u->name);
        char canon[PATH_MAX];
        bool found = realpath(project, canon);
        int saved = errno;
        _cleanup_free_ char *path = NULL, *flat = strdup(branch);
        const char *slash = found ? strrchr(canon, '/') : NULL;
        for (char *p = flat; p && *p; p++)
                if (*p == '/')
                        *p = '-';
        if (found && slash && slash != canon && flat)
                path = strdup_printf("%.*s/%s-%s", (int) (slash - canon), canon, slash + 1, flat);
        struct stat st, gst;
        _cleanup_free_ char *gitfile = path ? strdup_printf("%s/.git", path) : NULL;
        bool exists = gitfile && lstat(path, &st) == 0, is_worktree = exists && lstat(gitfile, &gst) == 0 && S_ISREG(gst.st_mode);
        user_fs_leave(&id);
        if (!found)
                return cage_error_set(err, -saved, "project %s: %s", project, strerror(saved));
        if (!slash || slash == canon)
                return cage_error_set(err, -EINVAL, "project %s: a worktree is made beside the project; not for a top-level directory", canon);
        if (!gitfile)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if (exists && !is_worktree)
                return cage_error_set(err, -EEXIST, "--worktree %s: %s exists and is not a git worktree; move it away or choose another branch",
                                      branch, path);
        if (!exists) {
                _cleanup_free_ char *ref = strdup_printf("refs/heads/%s", branch);
                char *verify[] = { "git", "rev-parse", "--verify", "--quiet", ref, NULL };
                r = ref ? git_as_user(u, canon, verify) : -ENOMEM;
                char *add_new[] = { "git", "worktree", "add", "-b", (char *) branch, path, NULL },
                     *add_old[] = { "git", "worktree", "add", path, (char *) branch, NULL };
                if (r >= 0)
                        r = git_as_user(u, canon, r == 0 ? add_old : add_new);
                if (r != 0)
                        return cage_error_set(err, r < 0 ? r : -EIO, "--worktree %s: 'git worktree add' in %s as %s failed%s%s; see above", branch,
                                              canon, u->name, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
        }
        *ret_path = TAKE_PTR(path);
        return 0;
}
