/* test-settings.c: the .nspawn writer: determinism, network modes, and that
 * no value can add a line, section or option. */
#include "autoconfig.h"

#include "settings.h"
#include "tap.h"

static CageSpec *spec(void) {
        CageSpec *s = calloc(1, sizeof *s);
        s->name = strdup("demo");
        s->project = strdup("/home/alice/my project");
        s->user = (HostUser) { strdup("alice"), 1000, 1000, strdup("/home/alice") };
        s->toplevel = strdup("/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top");
        strv_extend(&s->store_paths, "/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-bash");
        strv_extend(&s->store_paths, "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top");
        return s;
}

static void add_bind(CageSpec *s, const char *source, bool ro, bool no_idmap) {
        s->binds = realloc(s->binds, sizeof(BindSpec) * (s->n_binds + 1));
        s->binds[s->n_binds++] = (BindSpec) { .source = strdup(source), .destination = strdup(source), .read_only = ro, .no_idmap = no_idmap };
}

static int count_lines_starting(const char *text, const char *prefix) {
        int n = 0;
        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                n += strncmp(p, prefix, strlen(prefix)) == 0;
        return n;
}

int main(void) {
        CageSpec *s = spec();
        char *a = NULL, *b = NULL;
        CageError bad = {};
        ok(settings_render(s, &a, &bad) == -ENODATA && !a, "no user namespace picked: nothing is rendered");
        add_bind(s, "/home/alice/my project/.git/hooks", true, false);
        add_bind(s, "/home/alice/data", false, false);
        add_bind(s, "/home/alice/nfs", true, true);
        ok(cage_spec_set_userns(s, 0, "/var/lib/nspawn-cage/cages/demo/mnt") == -EINVAL, "range 0 (host root's) is refused");
        ok(cage_spec_set_userns(s, 0x70000, "/var/lib/nspawn-cage/cages/demo/mnt") == 0, "userns set");
        ok(settings_render(s, &a, &bad) == 0 && settings_render(s, &b, &bad) == 0 && streq(a, b), "same spec, same bytes");
        ok(strstr(a, "\nBind=/var/lib/nspawn-cage/cages/demo/mnt/project:/home/alice/my project\n") != NULL,
           "project bound read-write from its idmapped staging mount");
        ok(strstr(a, "\nPrivateUsers=458752:65536\n") && strstr(a, "\nPrivateUsersOwnership=chown\n"), "the picked range, rootfs chowned into it");
        ok(strstr(a, "\nDropCapability=CAP_AUDIT_CONTROL ") != NULL, "a smaller bounding set");
        ok(strstr(a, "\nBindReadOnly=/var/lib/nspawn-cage/cages/demo/mnt/bind-0:/home/alice/my project/.git/hooks\n") != NULL,
           "a bind below the project gets a staging mount of its own, not a path through the project's");
        ok(strstr(a, "\nBind=/var/lib/nspawn-cage/cages/demo/mnt/bind-1:/home/alice/data\n") && s->binds[1].own_mount && s->binds[0].own_mount,
           "another writable bind gets a staging mount of its own");
        ok(strstr(a, "\nBindReadOnly=/var/lib/nspawn-cage/cages/demo/mnt/bind-2:/home/alice/nfs\n") && !strstr(a, "=/home/alice/nfs"),
           "a read-only bind that cannot be idmapped is bound from its staging mount too, never by its own path");
        free(a);
        free(b);
        s->binds[2].as_is = true;
        free(s->binds[2].staged);
        s->binds[2].staged = NULL;
        ok(settings_render(s, &a, &bad) == 0 && strstr(a, "\nBindReadOnly=/home/alice/nfs\n"), "only an as_is bind (nspawn-cage's own) is bound by its path");
        free(a);
        s->binds[2].as_is = false;
        a = NULL;
        ok(settings_render(s, &a, &bad) == -EPERM && !a && bad.message && strstr(bad.message, "Bind=/home/alice/nfs:"), "a read-only configured bind without staging mount is refused");
        cage_error_done(&bad);
        s->binds[1].no_idmap = true;
        free(s->binds[1].staged);
        s->binds[1].staged = NULL;
        a = NULL;
        ok(settings_render(s, &a, &bad) == -EPERM && !a && bad.message && strstr(bad.message, "Bind=/home/alice/data:"), "a writable bind without idmapped mount is refused");
        cage_error_done(&bad);
        s->binds[1].no_idmap = false;
        ok(cage_spec_set_userns(s, 0x70000, "/var/lib/nspawn-cage/cages/demo/mnt") == 0, "userns set again");
        ok(settings_render(s, &a, &bad) == 0 && settings_render(s, &b, &bad) == 0 && streq(a, b), "same spec, same bytes");
        ok(count_lines_starting(a, "BindReadOnly=/nix/store/") == 2, "each store path bound read-only");
        ok(count_lines_starting(a, "[") == 3, "exactly three sections");
        ok(strstr(a, "Boot=yes\n") && strstr(a, "NoNewPrivileges=yes\n") && strstr(a, "Private=yes\nVirtualEthernet=no\n"), "boot, no new privileges, no network");
        ok(strstr(a, "Environment=\"NSPAWN_CAGE_PROJECT=/home/alice/my project\"\n") != NULL, "environment quoted");
        free(a);
        free(b);

        s->network = NETWORK_PRIVATE;
        settings_render(s, &a, &bad);
        ok(strstr(a, "Private=yes\nVirtualEthernet=no\n") != NULL, "private network: own namespace, the veth is made by nspawn-cage, not nspawn");
        free(a);
        s->network = NETWORK_HOST;
        settings_render(s, &a, &bad);
        ok(strstr(a, "Private=no\n") != NULL, "host network shares the host's");
        free(a);

        /* Injection attempts: each must be refused, never written. */
        const char *evil_projects[] = { "/home/alice/x\n[Files]\nBind=/:/host", "/home/alice/a:b", "/home/alice/a\\", "/home/alice/\"q\"", NULL };
        for (size_t i = 0; evil_projects[i]; i++) {
                free(s->project);
                s->project = strdup(evil_projects[i]);
                a = NULL;
                ok(settings_render(s, &a, &bad) == -EINVAL && !a && bad.message, "project path %zu refused", i);
                cage_error_done(&bad);
        }
        free(s->project);
        s->project = strdup("/home/alice/p");
        free(s->name);
        s->name = strdup("x\nBind=/");
        ok(settings_render(s, &a, &bad) == -EINVAL, "name with a newline refused");
        cage_error_done(&bad);
        free(s->name);
        s->name = strdup("demo");
        strv_extend(&s->store_paths, "/nix/store/../../etc");
        ok(settings_render(s, &a, &bad) == -EINVAL && bad.message && strstr(bad.message, "'/nix/store/../../etc'"), "bogus store path refused");
        cage_error_done(&bad);

        char *q;
        ok(settings_quote_env("A=b c", &q) == 0 && streq(q, "\"A=b c\""), "env quoted");
        free(q);
        ok(settings_quote_env("A=\"x\"", &q) == -EINVAL && settings_quote_env("A=\\n", &q) == -EINVAL &&
           settings_quote_env("A=x\ny", &q) == -EINVAL, "env that would need escaping refused");
        cage_spec_free(s);
        return tap_done();
}
