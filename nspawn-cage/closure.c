/* closure.c: talks to Nix through its command line tools (nix-build and
 * nix-store), which every Nix since 2.0 has, Debian's 2.8 included. Nothing
 * here goes through a shell: arguments are validated names handed over as
 * separate argv words, and Nix sees only --argstr values. */
#include "autoconfig.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "closure.h"
#include "tools.h"
#include "spec.h"

int closure_read_list(int fd, char **ret_data, size_t *ret_size) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        return read_fd_bounded(fd, CLOSURE_LIST_MAX, ret_data, ret_size);
}

int closure_parse_list(const char *data, size_t size, char ***ret_paths, CageError *err) {
        _cleanup_strv_free_ char **l = NULL;
        unsigned line = 0;
        const char *p = data, *end = data + size;
        size_t lines = 1, k = 0;
        for (const char *q = data; q < end && (q = memchr(q, '\n', (size_t) (end - q))); q++)
                lines++;
        l = calloc(lines + 1, sizeof(char *)); /* one allocation, not one per path */
        if (!l)
                return -ENOMEM;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                line++;
                if (n > 0) {
                        _cleanup_free_ char *s = strndup(p, n);
                        if (!s)
                                return -ENOMEM;
                        if (!store_path_is_valid(s))
                                return cage_error_set_at(err, -EINVAL, NULL, line, "not a store path (expected /nix/store/HASH-NAME, one a line, top-level first)");
                        l[k++] = TAKE_PTR(s);
                }
                p += n + 1;
        }
        if (k == 0)
                return cage_error_set_at(err, -EINVAL, NULL, line ? line : 1, "not a store path (expected /nix/store/HASH-NAME, one a line, top-level first)");
        *ret_paths = TAKE_PTR(l);
        return 0;
}

/* Run argv with a clean environment; capture stdout, let stderr through
 * (Nix's progress and errors are for the user). */
static int run_capture(Tool tool, char *const *argv, char **ret_out, int *ret_status) {
        pid_t parent = getpid();
        int pipefd[2];
        pid_t pid;
        int r = fork_with_pipe(pipefd, &pid);
        if (r < 0)
                return r;
        if (pid == 0) {
                char *envp[] = { "PATH=" TOOLS_NIX_SEARCH_PATH, "HOME=/root", NULL, NULL };
                /* Running as root: let Nix use the daemon when it is there. */
                if (access("/nix/var/nix/daemon-socket/socket", F_OK) == 0)
                        envp[2] = "NIX_REMOTE=daemon";
                (void) signal(SIGPIPE, SIG_DFL);
                /* If nspawn-cage dies (kill -9), Nix must not go on and
                 * register a GC root after gc has looked. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(127);
                if (dup2(pipefd[1], STDOUT_FILENO) < 0)
                        _exit(127);
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (devnull >= 0)
                        (void) dup2(devnull, STDIN_FILENO);
                _cleanup_free_ char *exe = NULL;
                if (tool_find(tool, &exe) >= 0)
                        execve(exe, argv, envp);
                if (tool_configured_path(tool)[0])
                        fprintf(stderr, "nspawn-cage: cannot run %s (nspawn-cage was built with --with-%s=%s); install Nix\n",
                                tool_configured_path(tool), argv[0], tool_configured_path(tool));
                else
                        fprintf(stderr, "nspawn-cage: %s not found in %s; install Nix\n", argv[0], TOOLS_NIX_SEARCH_PATH);
                _exit(127);
        }
        close(pipefd[1]);
        _cleanup_free_ char *out = NULL;
        size_t n;
        r = read_fd_bounded(pipefd[0], CLOSURE_LIST_MAX, &out, &n);
        close(pipefd[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r < 0)
                return r;
        *ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        *ret_out = TAKE_PTR(out);
        return 0;
}

int closure_query(const char *path, char ***ret_paths) {
        char *argv[20] = { "nix-store", "--query", "--requisites", "--", (char *) path, NULL };
        _cleanup_free_ char *out = NULL;
        int status, r = run_capture(TOOL_NIX_STORE, argv, &out, &status);
        if (r < 0)
                return r;
        if (status != 0)
                return -EIO;
        _cleanup_(cage_error_done) CageError err = {};
        return closure_parse_list(out, strlen(out), ret_paths, &err);
}

int closure_realise(const ClosureRequest *req, const char *gcroot, char ***ret_paths, CageError *error) {
        _cleanup_free_ char *expr = strdup_printf("%s/nix/cage.nix", req->data_dir);
        StrBuf pk = {};
        for (size_t i = 0; req->packages && req->packages[i]; i++) {
                if (!package_name_is_valid(req->packages[i])) {
                        strbuf_done(&pk);
                        return -EINVAL;
                }
                strbuf_appendf(&pk, "%s%s", i ? " " : "", req->packages[i]);
        }
        _cleanup_free_ char *packages = NULL;
        int r = strbuf_steal(&pk, &packages);
        if (r < 0 || !expr)
                return -ENOMEM;
        char *argv[20] = {
                "nix-build", expr,
                "--argstr", "nixpkgs", (char *) req->nixpkgs,
                "--argstr", "packages", packages,
        };
        size_t n = 8;
        /* Without a name the top-level is the same for every project with
         * the same packages (what the closure cache shares). */
        if (req->name) {
                argv[n++] = "--argstr";
                argv[n++] = "name";
                argv[n++] = (char *) req->name;
        }
        /* Only the administrator names req->nixpkgs (config.c); Packages= and
         * the name are validated strings Nix sees as --argstr. Nix's
         * restrict-eval is not used: with -I limited to the package set and
         * nix/, the local set tests/pkgs fails (it reads /var/lib/dpkg/info
         * at evaluation), <channel> and flake sets need more paths, and it
         * would fence in the administrator's own code, not a user's. */
        /* A flake reference needs Nix's flakes feature; paths and <channels> do not. */
        if (req->nixpkgs[0] != '/' && req->nixpkgs[0] != '<') {
                argv[n++] = "--extra-experimental-features";
                argv[n++] = "nix-command flakes";
        }
        if (gcroot) {
                argv[n++] = "--out-link";
                argv[n++] = (char *) gcroot;
        } else
                argv[n++] = "--no-out-link";
        argv[n] = NULL;
        _cleanup_free_ char *out = NULL;
        int status;
        if ((r = run_capture(TOOL_NIX_BUILD, argv, &out, &status)) < 0)
                return r;
        if (status != 0) {
                cage_error_set(error, -EIO, "nix-build exited with status %d (its messages are above)", status);
                return -EIO;
        }
        /* nix-build prints the out path as the last line. */
        char *nl;
        while ((nl = strrchr(out, '\n')) && nl[1] == 0)
                *nl = 0;
        char *top = strrchr(out, '\n');
        top = top ? top + 1 : out;
        if (!store_path_is_valid(top)) {
                cage_error_set(error, -EIO, "nix-build printed '%s', not a store path", top);
                return -EIO;
        }
        _cleanup_strv_free_ char **closure = NULL;
        if ((r = closure_query(top, &closure)) < 0) {
                cage_error_set(error, r, "nix-store --query --requisites failed");
                return r;
        }
        _cleanup_strv_free_ char **l = NULL;
        if (strv_extend(&l, top) < 0)
                return -ENOMEM;
        for (size_t i = 0; closure[i]; i++)
                if (!streq(closure[i], top) && strv_extend(&l, closure[i]) < 0)
                        return -ENOMEM;
        *ret_paths = TAKE_PTR(l);
        return 0;
}

int closure_add_root(const char *path, const char *link) {
        char *argv[20] = { "nix-store", "--realise", "--add-root", (char *) link, "--indirect", "--", (char *) path, NULL };
        _cleanup_free_ char *out = NULL;
        int status, r = run_capture(TOOL_NIX_STORE, argv, &out, &status);
        if (r < 0)
                return r;
        return status == 0 ? 0 : -EIO;
}
