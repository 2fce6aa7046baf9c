/* builders.c: NixDaemon= and Containers= (builders.h): the checks before a
 * cage gets the host's nix-daemon or a container engine's needs, and what
 * it then gets. */
#include "autoconfig.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>

#include "builders.h"

int nix_conf_trusts(const char *text, const char *user, char *const *groups, char **ret_word) {
        for (const char *p = text; p && *p;) {
                size_t n = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, n);
                p += n + (p[n] == '\n');
                if (!line)
                        return -ENOMEM;
                line[strcspn(line, "#")] = 0;
                char *save = NULL, *key = strtok_r(line, " \t=", &save);
                if (!key || !(streq(key, "trusted-users") || streq(key, "extra-trusted-users")))
                        continue;
                for (char *w = strtok_r(NULL, " \t=", &save); w; w = strtok_r(NULL, " \t", &save)) {
                        bool hit = streq(w, "*") || streq(w, user) || (w[0] == '@' && strv_contains(groups, w + 1));
                        if (hit) {
                                *ret_word = strdup(w);
                                return *ret_word ? 1 : -ENOMEM;
                        }
                }
        }
        return 0;
}

/* The names of the user's groups, as the daemon would see them. */
static int user_groups(const HostUser *u, char ***ret) {
        int n = 64;
        gid_t gids[64];
        if (getgrouplist(u->name, u->gid, gids, &n) < 0)
                n = 64; /* more than 64: the first 64 are checked */
        _cleanup_strv_free_ char **l = NULL;
        for (int i = 0; i < n; i++) {
                struct group *g = getgrgid(gids[i]);
                if (g && strv_extend(&l, g->gr_name) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int builders_add_nix_daemon(CageSpec *s, const char *nix_conf, const char *socket, CageError *err) {
        if (!s->nix_daemon)
                return 0;
        _cleanup_free_ char *text = NULL, *word = NULL;
        _cleanup_strv_free_ char **groups = NULL;
        size_t size;
        _cleanup_close_ int fd = open(nix_conf, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        int r = fd < 0 ? (errno == ENOENT ? 0 : -errno) : read_regular_fd(fd, 1u << 20, &text, &size);
        if (r < 0)
                return cage_error_set(err, r, "NixDaemon=yes: %s: %s; cannot tell whether %s is a trusted Nix user", nix_conf, strerror(-r),
                                      s->user.name);
        if ((r = user_groups(&s->user, &groups)) < 0 || (r = nix_conf_trusts(text, s->user.name, groups, &word)) < 0)
                return cage_error_set(err, r, "out of memory");
        if (r > 0)
                return cage_error_set(err, -EPERM, "NixDaemon=yes is refused: %s is a trusted Nix user (trusted-users ... %s in %s), and a trusted "
                                      "user's client may make the daemon run anything as root; remove NixDaemon=, or take %s out of "
                                      "trusted-users", s->user.name, word, nix_conf, s->user.name);
        struct stat st;
        int k = stat(socket, &st) < 0 ? -errno : S_ISSOCK(st.st_mode) ? 0 : -ENOTSOCK;
        if (k < 0)
                return cage_error_set(err, k, "NixDaemon=yes: %s is not the socket of a running nix-daemon (%s); start it "
                                      "(systemctl start nix-daemon.socket) or remove NixDaemon=", socket, strerror(-k));
        BindSpec *b = cage_spec_add_bind(s, strdup(socket), strdup(NIX_DAEMON_SOCKET));
        if (!b || strv_extend(&s->set, "NIX_REMOTE=daemon") < 0)
                return cage_error_set(err, -ENOMEM, "out of memory");
        b->as_is = true; /* the daemon's socket, root's: by its fixed path, like the display's */
        return 0;
}

int builders_add_containers(CageSpec *s, const char *fuse, CageError *err) {
        if (s->containers == CONTAINERS_NO)
                return 0;
        struct stat st;
        int k = stat(fuse, &st) < 0 ? -errno : S_ISCHR(st.st_mode) ? 0 : -ENODEV;
        if (k < 0)
                return cage_error_set(err, k, "Containers=%s: %s is not the FUSE device (%s); load the fuse module (modprobe fuse) or "
                                      "remove Containers=", containers_to_string(s->containers), fuse, strerror(-k));
        BindSpec *b = cage_spec_add_bind(s, strdup(fuse), strdup(FUSE_DEVICE));
        if (!b || strv_extend(&s->devices, fuse) < 0)
                return cage_error_set(err, -ENOMEM, "out of memory");
        b->as_is = true; /* a device node, root's: by its fixed path, like the GPU's */
        return 0;
}

uint64_t builders_agent_namespaces(const CageSpec *s) {
        return s->containers == CONTAINERS_PODMAN ? CONTAINERS_NAMESPACES : 0;
}
