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

static int count_lines_starting(const char *text, const char *prefix) {
        int n = 0;
        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                n += strncmp(p, prefix, strlen(prefix)) == 0;
        return n;
}

int main(void) {
        CageSpec *s = spec();
        char *a = NULL, *b = NULL, *bad = NULL;
        ok(settings_render(s, &a, &bad) == 0 && settings_render(s, &b, &bad) == 0 && streq(a, b), "same spec, same bytes");
        ok(strstr(a, "\nBind=/home/alice/my project\n") != NULL, "project bound read-write at its own path");
        ok(count_lines_starting(a, "BindReadOnly=/nix/store/") == 2, "each store path bound read-only");
        ok(count_lines_starting(a, "[") == 3, "exactly three sections");
        ok(strstr(a, "Boot=yes\n") && strstr(a, "NoNewPrivileges=yes\n") && strstr(a, "Private=yes\nVirtualEthernet=no\n"), "boot, no new privileges, no network");
        ok(strstr(a, "Environment=\"NSPAWN_CAGE_PROJECT=/home/alice/my project\"\n") != NULL, "environment quoted");
        free(a);
        free(b);

        s->network = NETWORK_PRIVATE;
        settings_render(s, &a, &bad);
        ok(strstr(a, "Private=yes\nVirtualEthernet=yes\n") != NULL, "private network gets a veth");
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
                ok(settings_render(s, &a, &bad) == -EINVAL && !a && bad, "project path %zu refused", i);
                free(bad);
                bad = NULL;
        }
        free(s->project);
        s->project = strdup("/home/alice/p");
        free(s->name);
        s->name = strdup("x\nBind=/");
        ok(settings_render(s, &a, &bad) == -EINVAL, "name with a newline refused");
        free(bad);
        free(s->name);
        s->name = strdup("demo");
        strv_extend(&s->store_paths, "/nix/store/../../etc");
        ok(settings_render(s, &a, &bad) == -EINVAL && streq(bad, "/nix/store/../../etc"), "bogus store path refused");
        free(bad);

        char *q;
        ok(settings_quote_env("A=b c", &q) == 0 && streq(q, "\"A=b c\""), "env quoted");
        free(q);
        ok(settings_quote_env("A=\"x\"", &q) == -EINVAL && settings_quote_env("A=\\n", &q) == -EINVAL &&
           settings_quote_env("A=x\ny", &q) == -EINVAL, "env that would need escaping refused");
        cage_spec_free(s);
        return tap_done();
}
