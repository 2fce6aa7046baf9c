/* tools.c: where the programs nspawn-cage runs are (fixed by configure, see
 * tools.h), and running ip(8) and nft(8) by absolute path with argv, never
 * through a shell, optionally inside a cage's network namespace. */

#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools.h"
#include "util.h"

/* The paths come from the compiler's command line (Makefile.am), not from
 * autoconfig.h, so that the unit test of this file can build it with paths
 * of its own fakes. */
#if !defined(TOOL_XAUTH_PATH) || !defined(TOOL_NFT_PATH) || !defined(TOOL_IP_PATH) || !defined(TOOL_NIX_BUILD_PATH) || \
        !defined(TOOL_NIX_STORE_PATH) || !defined(TOOL_NSPAWN_PATH)
#error "tools.c needs -DTOOL_<NAME>_PATH for every tool (see Makefile.am)"
#endif

static const struct {
        const char *name;
        const char *path;
        const char *package; /* what to install when it is missing */
} tool_table[_TOOL_MAX] = {
        [TOOL_XAUTH] = { "xauth", TOOL_XAUTH_PATH, "xauth" },
        [TOOL_NFT] = { "nft", TOOL_NFT_PATH, "nftables" },
        [TOOL_IP] = { "ip", TOOL_IP_PATH, "iproute2" },
        [TOOL_NIX_BUILD] = { "nix-build", TOOL_NIX_BUILD_PATH, "Nix" },
        [TOOL_NIX_STORE] = { "nix-store", TOOL_NIX_STORE_PATH, "Nix" },
        [TOOL_NSPAWN] = { "systemd-nspawn", TOOL_NSPAWN_PATH, "systemd-container" },
};

const char *tool_to_string(Tool t) {
        return t >= 0 && t < _TOOL_MAX ? tool_table[t].name : NULL;
}

Tool tool_from_string(const char *s) {
        for (Tool t = 0; s && t < _TOOL_MAX; t++)
                if (streq(s, tool_table[t].name))
                        return t;
        return _TOOL_INVALID;
}

const char *tool_configured_path(Tool t) {
        return t >= 0 && t < _TOOL_MAX ? tool_table[t].path : NULL;
}

int tool_find(Tool t, char **ret_path) {
        if (t < 0 || t >= _TOOL_MAX)
                return -EINVAL;
        const char *fixed = tool_table[t].path;
        if (fixed[0]) {
                if (access(fixed, X_OK) < 0)
                        return -errno;
                char *p = strdup(fixed);
                if (!p)
                        return -ENOMEM;
                *ret_path = p;
                return 0;
        }
        for (const char *p = TOOLS_NIX_SEARCH_PATH; *p;) {
                size_t n = strcspn(p, ":");
                char *exe = strdup_printf("%.*s/%s", (int) n, p, tool_table[t].name);
                if (!exe)
                        return -ENOMEM;
                if (access(exe, X_OK) == 0) {
                        *ret_path = exe;
                        return 0;
                }
                free(exe);
                p += n + (p[n] == ':');
        }
        return -ENOENT;
}

int tool_run(Tool t, const char *const *args, int netns_fd, const char *input, CageError *error) {
        _cleanup_free_ char *exe = NULL;
        int r = tool_find(t, &exe);
        if (r == -ENOMEM || r == -EINVAL)
                return r;
        if (r < 0) {
                if (!error)
                        return r;
                return tool_table[t].path[0]
                        ? cage_error_set(error, r, "%s: %s (nspawn-cage was built with --with-%s=%s): install %s",
                                         tool_table[t].path, strerror(-r), tool_table[t].name, tool_table[t].path, tool_table[t].package)
                        : cage_error_set(error, r, "%s is not installed (looked in %s): install %s",
                                         tool_table[t].name, TOOLS_NIX_SEARCH_PATH, tool_table[t].package);
        }
        const char *argv[16] = { tool_table[t].name };
        size_t n = 1;
        for (; args[n - 1] && n < ELEMENTSOF(argv) - 1; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        _cleanup_close_ int in = -1;
        if (input) {
                in = memfd_create("nspawn-cage-input", MFD_CLOEXEC);
                if (in < 0 || write(in, input, strlen(input)) != (ssize_t) strlen(input) || lseek(in, 0, SEEK_SET) < 0)
                        return -errno ?: -EIO;
        }
        int pipefd[2];
        pid_t pid;
        int rf = fork_with_pipe(pipefd, &pid);
        if (rf < 0)
                return rf;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
                        _exit(126);
                if (dup2(in >= 0 ? in : null, 0) < 0 || dup2(null, 1) < 0 || dup2(pipefd[1], 2) < 0)
                        _exit(126);
                char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
                execve(exe, (char *const *) argv, envp);
                _exit(127);
        }
        close(pipefd[1]);
        char err[1024];
        size_t len = 0;
        ssize_t k;
        while ((k = read(pipefd[0], err + len, sizeof err - 1 - len)) > 0 || (k < 0 && errno == EINTR))
                len += k > 0 ? (size_t) k : 0;
        close(pipefd[0]);
        err[len] = 0;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (error) {
                while (len > 0 && isspace((unsigned char) err[len - 1]))
                        err[--len] = 0;
                _cleanup_free_ char *cmd = NULL;
                StrBuf b = {};
                for (size_t i = 0; argv[i]; i++)
                        strbuf_appendf(&b, "%s%s", i ? " " : "", argv[i]);
                (void) strbuf_steal(&b, &cmd);
                return cage_error_set(error, -EIO, "'%s'%s failed: %s", strempty(cmd), netns_fd >= 0 ? " (in the cage)" : "",
                                      len ? err : WIFEXITED(status) && WEXITSTATUS(status) == 126 ? "cannot enter the cage's network namespace" : "no message");
        }
        return -EIO;
}
