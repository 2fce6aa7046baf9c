/* settings.c: writes NAME.nspawn. Paths are emitted only when they need no
 * escaping at all (spec and config refuse ':', '\\', quotes and control
 * characters); environment assignments are double-quoted. The output is a
 * pure function of the spec: same input, same bytes. */
#include "autoconfig.h"

#include "settings.h"

int settings_quote_env(const char *a, char **ret) {
        if (string_has_cc(a) || strpbrk(a, "\"\\'"))
                return -EINVAL;
        char *q = strdup_printf("\"%s\"", a);
        if (!q)
                return -ENOMEM;
        *ret = q;
        return 0;
}

/* A value the format cannot carry: refused with what it was. */
static int unsafe(CageError *err, const char *value) {
        return cage_error_set(err, -EINVAL, "cannot write '%s' safely into a .nspawn file", strempty(value));
}

static int check_path(const char *p, CageError *err) {
        return path_is_safe_absolute(p) ? 0 : unsafe(err, p);
}

static int render_exec(const CageSpec *s, StrBuf *b, CageError *err) {
        strbuf_appendf(b, "# systemd.nspawn(5) settings of cage %s, written by nspawn-cage %s.\n", s->name, PACKAGE_VERSION);
        strbuf_append(b, "# Regenerated at every start; edit the nspawn-cage configuration instead.\n\n");

        strbuf_append(b, "[Exec]\n");
        strbuf_append(b, "Boot=yes\n");
        strbuf_append(b, "Parameters=systemd.show_status=error\n");
        strbuf_appendf(b, "Hostname=%s\n", s->name);
        strbuf_append(b, "NoNewPrivileges=yes\n");
        /* Cage root is root of its own 64K ids only: host root and the
         * invoking user are outside the range. */
        strbuf_appendf(b, "PrivateUsers=%u:65536\n", (unsigned) s->uid_base);
        /* nspawn's default bounding set, less what neither the cage's
         * systemd nor an agent needs. No configuration reaches these lines,
         * nor SystemCallFilter= (nspawn's default filter stays). */
        strbuf_append(b, "DropCapability=CAP_AUDIT_CONTROL CAP_IPC_OWNER CAP_LEASE CAP_LINUX_IMMUTABLE CAP_MKNOD "
                         "CAP_NET_BROADCAST CAP_SYS_PTRACE CAP_SYS_TTY_CONFIG\n");
        strbuf_append(b, "LinkJournal=no\n");
        strbuf_append(b, "ResolvConf=off\n");
        strbuf_append(b, "Timezone=off\n");
        /* Only non-secret markers reach PID 1; the agent's own environment
         * (Set=, Pass=) is handed over when it is started, never here. */
        _cleanup_free_ char *proj = strdup_printf("NSPAWN_CAGE_PROJECT=%s", s->project);
        const char *markers[] = { "NSPAWN_CAGE=1", proj };
        for (size_t i = 0; i < ELEMENTSOF(markers); i++) {
                _cleanup_free_ char *q = NULL;
                int r = markers[i] ? settings_quote_env(markers[i], &q) : -ENOMEM;
                if (r == -ENOMEM)
                        return cage_error_set(err, r, "out of memory");
                if (r < 0)
                        return unsafe(err, markers[i]);
                strbuf_appendf(b, "Environment=%s\n", q);
        }
        return 0;
}

static int render_binds(const CageSpec *s, StrBuf *b, CageError *err) {
        int r;
        for (size_t i = 0; i < s->n_binds; i++) {
                const BindSpec *bs = &s->binds[i];
                const char *from = bs->staged ? bs->staged : bs->source;
                if ((r = check_path(from, err)) < 0 || (r = check_path(bs->destination, err)) < 0)
                        return r;
                /* A configured bind by its own path would be resolved again
                 * by nspawn, along whatever link is there by then: only from
                 * its staging mount, made from the fd that was checked. */
                if (!bs->staged && !bs->as_is)
                        return cage_error_set(err, -EPERM, "Bind=%s: a bind must come from its staging mount, and it has none", bs->source);
                if (streq(from, bs->destination))
                        strbuf_appendf(b, "%s=%s\n", bs->read_only ? "BindReadOnly" : "Bind", from);
                else
                        strbuf_appendf(b, "%s=%s:%s\n", bs->read_only ? "BindReadOnly" : "Bind", from, bs->destination);
        }
        /* NixDaemon=: the host's whole store, read-only; what the daemon
         * builds for the agent appears in it. */
        if (s->nix_daemon) {
                strbuf_append(b, "BindReadOnly=/nix/store\n");
                return 0;
        }
        /* nspawn mounts parents first: /nix/store, read-only, then each path
         * of the closure on its mount point below it. */
        if (s->store_dir) {
                if ((r = check_path(s->store_dir, err)) < 0)
                        return r;
                strbuf_appendf(b, "BindReadOnly=%s:/nix/store\n", s->store_dir);
        }
        for (size_t i = 0; s->store_paths && s->store_paths[i]; i++) {
                if (!store_path_is_valid(s->store_paths[i]))
                        return unsafe(err, s->store_paths[i]);
                strbuf_appendf(b, "BindReadOnly=%s\n", s->store_paths[i]);
        }
        return 0;
}

static int render_network(const CageSpec *s, StrBuf *b, CageError *err) {
        strbuf_append(b, "\n[Network]\n");
        switch (s->network) {
        case NETWORK_OFF:
        case NETWORK_PRIVATE:
                /* Mode=private: the veth is made by nspawn-cage (network.c)
                 * once the cage runs; no networkd is needed on either side. */
                strbuf_append(b, "Private=yes\n");
                strbuf_append(b, "VirtualEthernet=no\n");
                return 0;
        case NETWORK_HOST:
                strbuf_append(b, "Private=no\n");
                strbuf_append(b, "VirtualEthernet=no\n");
                return 0;
        default:
                return cage_error_set(err, -EINVAL, "network mode %d cannot be written into a .nspawn file", (int) s->network);
        }
}

int settings_render(const CageSpec *s, char **ret_text, CageError *err) {
        _cleanup_(strbuf_done) StrBuf b = {};
        int r;
        if (!s->toplevel)
                return cage_error_set(err, -ENODATA, "the cage's closure is not known yet");
        if (!machine_name_is_valid(s->name))
                return unsafe(err, s->name);
        if ((r = check_path(s->project, err)) < 0)
                return r;
        /* Never a cage without its own user namespace. */
        if (s->uid_base == 0 || s->uid_base % 0x10000 != 0 || !s->project_staged)
                return cage_error_set(err, -ENODATA, "the cage has no user namespace picked yet");
        if ((r = check_path(s->project_staged, err)) < 0)
                return r;
        if ((r = render_exec(s, &b, err)) < 0)
                return r;
        strbuf_append(&b, "\n[Files]\n");
        strbuf_append(&b, "ReadOnly=no\n");
        /* The rendered rootfs is shifted into the range on first start. */
        strbuf_append(&b, "PrivateUsersOwnership=chown\n");
        /* From the idmapped staging mount: only the user's uid and gid are
         * mapped there, so nothing else can be written into the project. */
        strbuf_appendf(&b, "Bind=%s:%s\n", s->project_staged, s->project);
        /* /run/lock, root's, 0755 (no systemd-tmpfiles-setup.service in the
         * cage's boot): small, and charged to the cage's memory. */
        strbuf_append(&b, "TemporaryFileSystem=/run/lock:mode=0755,size=5m\n");
        if ((r = render_binds(s, &b, err)) < 0 || (r = render_network(s, &b, err)) < 0)
                return r;
        if ((r = strbuf_steal(&b, ret_text)) < 0)
                return cage_error_set(err, r, "out of memory");
        return 0;
}
