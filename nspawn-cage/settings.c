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

static int check_path(const char *p, char **ret_bad_value) {
        if (path_is_safe_absolute(p))
                return 0;
        *ret_bad_value = strdup(p);
        return -EINVAL;
}

int settings_render(const CageSpec *s, char **ret_text, char **ret_bad_value) {
        StrBuf b = {};
        int r;
        *ret_bad_value = NULL;
        if (!s->toplevel)
                return -ENODATA;
        if (!machine_name_is_valid(s->name)) {
                *ret_bad_value = strdup(s->name);
                return -EINVAL;
        }
        if ((r = check_path(s->project, ret_bad_value)) < 0)
                return r;
        /* Never a cage without its own user namespace. */
        if (s->uid_base == 0 || s->uid_base % 0x10000 != 0 || !s->project_staged)
                return -ENODATA;
        if ((r = check_path(s->project_staged, ret_bad_value)) < 0)
                return r;

        strbuf_appendf(&b, "# systemd.nspawn(5) settings of cage %s, written by nspawn-cage %s.\n", s->name, PACKAGE_VERSION);
        strbuf_append(&b, "# Regenerated at every start; edit the nspawn-cage configuration instead.\n\n");

        strbuf_append(&b, "[Exec]\n");
        strbuf_append(&b, "Boot=yes\n");
        strbuf_append(&b, "Parameters=systemd.show_status=error\n");
        strbuf_appendf(&b, "Hostname=%s\n", s->name);
        strbuf_append(&b, "NoNewPrivileges=yes\n");
        /* Cage root is root of its own 64K ids only: host root and the
         * invoking user are outside the range. */
        strbuf_appendf(&b, "PrivateUsers=%u:65536\n", (unsigned) s->uid_base);
        /* nspawn's default bounding set, less what neither the cage's
         * systemd nor an agent needs. No configuration reaches these lines,
         * nor SystemCallFilter= (nspawn's default filter stays). */
        strbuf_append(&b, "DropCapability=CAP_AUDIT_CONTROL CAP_IPC_OWNER CAP_LEASE CAP_LINUX_IMMUTABLE CAP_MKNOD "
                          "CAP_NET_BROADCAST CAP_SYS_PTRACE CAP_SYS_TTY_CONFIG\n");
        strbuf_append(&b, "LinkJournal=no\n");
        strbuf_append(&b, "ResolvConf=off\n");
        strbuf_append(&b, "Timezone=off\n");
        /* Only non-secret markers reach PID 1; the agent's own environment
         * (Set=, Pass=) is handed over when it is started, never here. */
        const char *markers[] = { "NSPAWN_CAGE=1", NULL, NULL };
        _cleanup_free_ char *proj = strdup_printf("NSPAWN_CAGE_PROJECT=%s", s->project);
        markers[1] = proj;
        for (size_t i = 0; markers[i]; i++) {
                _cleanup_free_ char *q = NULL;
                if (!markers[i] || (r = settings_quote_env(markers[i], &q)) < 0) {
                        strbuf_done(&b);
                        if (markers[i])
                                *ret_bad_value = strdup(markers[i]);
                        return markers[i] ? r : -ENOMEM;
                }
                strbuf_appendf(&b, "Environment=%s\n", q);
        }

        strbuf_append(&b, "\n[Files]\n");
        strbuf_append(&b, "ReadOnly=no\n");
        /* The rendered rootfs is shifted into the range on first start. */
        strbuf_append(&b, "PrivateUsersOwnership=chown\n");
        /* From the idmapped staging mount: only the user's uid and gid are
         * mapped there, so nothing else can be written into the project. */
        strbuf_appendf(&b, "Bind=%s:%s\n", s->project_staged, s->project);
        for (size_t i = 0; i < s->n_binds; i++) {
                const BindSpec *bs = &s->binds[i];
                const char *from = bs->staged ? bs->staged : bs->source;
                if ((r = check_path(from, ret_bad_value)) < 0 || (r = check_path(bs->destination, ret_bad_value)) < 0) {
                        strbuf_done(&b);
                        return r;
                }
                /* A configured bind by its own path would be resolved again
                 * by nspawn, along whatever link is there by then: only from
                 * its staging mount, made from the fd that was checked. */
                if (!bs->staged && !bs->as_is) {
                        strbuf_done(&b);
                        *ret_bad_value = strdup(bs->source);
                        return -EPERM;
                }
                if (streq(from, bs->destination))
                        strbuf_appendf(&b, "%s=%s\n", bs->read_only ? "BindReadOnly" : "Bind", from);
                else
                        strbuf_appendf(&b, "%s=%s:%s\n", bs->read_only ? "BindReadOnly" : "Bind", from, bs->destination);
        }
        /* nspawn mounts parents first: /nix/store, read-only, then each path
         * of the closure on its mount point below it. */
        if (s->store_dir) {
                if ((r = check_path(s->store_dir, ret_bad_value)) < 0) {
                        strbuf_done(&b);
                        return r;
                }
                strbuf_appendf(&b, "BindReadOnly=%s:/nix/store\n", s->store_dir);
        }
        for (size_t i = 0; s->store_paths && s->store_paths[i]; i++) {
                if (!store_path_is_valid(s->store_paths[i])) {
                        strbuf_done(&b);
                        *ret_bad_value = strdup(s->store_paths[i]);
                        return -EINVAL;
                }
                strbuf_appendf(&b, "BindReadOnly=%s\n", s->store_paths[i]);
        }

        strbuf_append(&b, "\n[Network]\n");
        switch (s->network) {
        case NETWORK_OFF:
                strbuf_append(&b, "Private=yes\n");
                strbuf_append(&b, "VirtualEthernet=no\n");
                break;
        case NETWORK_PRIVATE:
                /* The veth is made by nspawn-cage (network.c) once the cage
                 * runs: no networkd is needed on either side. */
                strbuf_append(&b, "Private=yes\n");
                strbuf_append(&b, "VirtualEthernet=no\n");
                break;
        case NETWORK_HOST:
                strbuf_append(&b, "Private=no\n");
                strbuf_append(&b, "VirtualEthernet=no\n");
                break;
        default:
                strbuf_done(&b);
                return -EINVAL;
        }
        return strbuf_steal(&b, ret_text);
}
