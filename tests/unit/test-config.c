/* test-config.c: parsing, validation and the narrowing rules of the three
 * configuration layers, including inih's traps. */
#include "autoconfig.h"

#include "config.h"
#include "tap.h"

/* Load admin, user and project texts (NULL skips a layer); return the first
 * error's "line: message" or NULL, and the config for inspection. */
static char *load3(const char *admin, const char *user, const char *project, Config **ret) {
        Config *c;
        if (config_new(&c) < 0)
                abort();
        const char *texts[] = { admin, user, project };
        const char *labels[] = { "admin.conf", "user.conf", "project.conf" };
        Layer layers[] = { LAYER_ADMIN, LAYER_USER, LAYER_PROJECT };
        char *msg = NULL;
        for (int i = 0; i < 3 && !msg; i++) {
                if (!texts[i])
                        continue;
                CageError e = {};
                if (config_load_buffer(c, layers[i], labels[i], texts[i], strlen(texts[i]), &e) < 0) {
                        msg = strdup_printf("%s:%u: %s", strempty(e.file), e.line, strempty(e.message));
                        cage_error_done(&e);
                }
        }
        if (ret)
                *ret = c;
        else
                config_free(c);
        return msg;
}

static bool refused(const char *admin, const char *user, const char *project, const char *needle) {
        char *m = load3(admin, user, project, NULL);
        bool r = m && strstr(m, needle);
        if (!r)
                printf("#   message: %s\n#   wanted:  %s\n", m ? m : "(accepted)", needle);
        free(m);
        return r;
}

static bool accepted(const char *admin, const char *user, const char *project) {
        char *m = load3(admin, user, project, NULL);
        if (m)
                printf("#   refused: %s\n", m);
        free(m);
        return !m;
}

int main(void) {
        uint64_t v;
        char buf[32];

        /* values */
        ok(parse_size("4G", &v) == 0 && v == (UINT64_C(4) << 30), "4G parses");
        ok(parse_size("512M", &v) == 0 && v == (UINT64_C(512) << 20), "512M parses");
        ok(parse_size("100", &v) == 0 && v == 100, "plain bytes parse");
        ok(parse_size("4GB", &v) < 0 && parse_size("-1", &v) < 0 && parse_size("", &v) < 0 && parse_size("1.5G", &v) < 0, "bad sizes refused");
        ok(parse_size("99999999999999999999", &v) == -ERANGE && parse_size("20000000T", &v) == -ERANGE, "size overflow refused");
        ok(parse_cpus("0.5", &v) == 0 && v == 50 && parse_cpus("2", &v) == 0 && v == 200 && parse_cpus("1.25", &v) == 0 && v == 125, "CPUs parse in hundredths");
        ok(parse_cpus("0", &v) < 0 && parse_cpus("1.234", &v) < 0 && parse_cpus(".5", &v) < 0 && parse_cpus("2x", &v) < 0, "bad CPUs refused");
        format_cpus(50, buf);
        is_str(buf, "0.5", "0.5 CPUs formats back");
        format_size(UINT64_C(3) << 30, buf);
        is_str(buf, "3G", "3G formats back");
        ok(parse_count("512", &v) == 0 && v == 512 && parse_count("0", &v) < 0 && parse_count("5000000", &v) < 0, "task counts bounded");
        ok(machine_name_is_valid("proj-1a2b") && !machine_name_is_valid(".host") && !machine_name_is_valid("a/b") &&
           !machine_name_is_valid("-x") && !machine_name_is_valid("a..b") && !machine_name_is_valid(""), "machine names");
        char longname[301];
        memset(longname, 'a', 300);
        longname[300] = 0;
        ok(!machine_name_is_valid(longname), "300-character machine name refused");
        ok(package_name_is_valid("nodejs_22") && package_name_is_valid("python3Packages.requests") &&
           !package_name_is_valid("a;b") && !package_name_is_valid("../x") && !package_name_is_valid("x."), "package names");
        ok(path_is_safe_absolute("/home/a/My Project") && !path_is_safe_absolute("/a/../b") && !path_is_safe_absolute("//etc") &&
           !path_is_safe_absolute("/a:b") && !path_is_safe_absolute("rel") && !path_is_safe_absolute("/a/") &&
           !path_is_safe_absolute("/a\\b") && !path_is_safe_absolute("/a\nb"), "safe absolute paths");
        for (int i = 0; i < _LAYER_MAX; i++)
                ok(layer_from_string(layer_to_string(i)) == (Layer) i, "layer %s round trip", layer_to_string(i));
        for (int i = 0; i < _NETWORK_MODE_MAX; i++)
                ok(network_mode_from_string(network_mode_to_string(i)) == (NetworkMode) i, "mode %s round trip", network_mode_to_string(i));
        for (int i = 0; i < _SETTING_MAX; i++)
                ok(setting_from_string(setting_to_string(i)) == (SettingId) i, "setting %s round trip", setting_to_string(i));
        ok(layer_from_string("nope") < 0 && network_mode_from_string("nope") < 0 && setting_from_string("X.Y") < 0, "unknown names are invalid");

        char **w = NULL;
        ok(split_command("sh -c 'touch x; exit 7'", &w) == 0 && strv_length(w) == 3 && streq(w[2], "touch x; exit 7"), "Command= quoting");
        strv_free(w);
        w = NULL;
        ok(split_command("a 'b", &w) == -EBADMSG, "unterminated quote refused");

        /* merge and origins */
        Config *c;
        char *m = load3("[Limits]\nMemory=8G\n[Policy]\nMaxMemory=16G\n", "[Limits]\nMemory=6G\n", "[Limits]\nMemory=2G\n", &c);
        ok(!m && c->settings[SETTING_MEMORY].number == (UINT64_C(2) << 30), "project may lower Memory=");
        ok(c->settings[SETTING_MEMORY].origin.layer == LAYER_PROJECT && c->settings[SETTING_MEMORY].origin.line == 2 &&
           streq(c->settings[SETTING_MEMORY].origin.file, "project.conf"), "origin names file and line");
        ok(c->settings[SETTING_TASKS].origin.layer == LAYER_BUILTIN, "unset keys come from builtin");
        free(m);
        config_free(c);

        ok(refused("[Policy]\nMaxMemory=8G\n", NULL, "[Limits]\nMemory=64G\n", "Memory=64G asks for more than allowed"), "project Memory above the admin maximum refused");
        ok(refused("[Policy]\nMaxMemory=8G\n", "[Limits]\nMemory=10G\n", NULL, "administrator's maximum is MaxMemory=8G"), "user Memory above the admin maximum refused");
        ok(refused(NULL, "[Limits]\nMemory=6G\n", "[Limits]\nMemory=7G\n", "at most 6G (from user.conf:2)"), "project cannot exceed the user's value");
        ok(accepted("[Limits]\nMemory=8G\n[Policy]\nMaxMemory=4G\n", NULL, NULL) == false, "admin default above admin max refused");
        ok(refused(NULL, "[Network]\nMode=private\n", "[Network]\nMode=host\n", "Mode=host asks for more network than allowed: at most private"), "Mode=host when the user allows private");
        ok(refused(NULL, "[Network]\nMode=host\n", NULL, "Mode=host is not allowed"), "Mode=host needs the admin");
        ok(accepted("[Policy]\nAllowNetwork=off private host\n", "[Network]\nMode=host\n", "[Network]\nMode=off\n"), "admin may allow host; project may narrow");
        ok(refused(NULL, NULL, "[Display]\nX11=yes\n", "X11=yes is not allowed"), "project X11=yes refused");
        ok(accepted(NULL, "[Display]\nX11=yes\n", "[Display]\nX11=no\n"), "project may turn X11 off");
        ok(refused("[Policy]\nAllowDisplay=no\n", "[Display]\nWayland=yes\n", NULL, "administrator set AllowDisplay=no"), "admin forbids display");
        /* Issue 20: Containers=podman, the user's or the administrator's, only where [Policy] allows it. */
        ok(refused(NULL, "[Cage]\nContainers=podman\n", NULL, "user.conf:2: Containers=podman is not allowed: the administrator set AllowContainers=no"),
           "user Containers=podman without AllowContainers= refused, with file:line");
        ok(accepted("[Policy]\nAllowContainers=yes\n", "[Cage]\nContainers=podman\n", NULL), "user Containers=podman, allowed: accepted");
        ok(refused("[Policy]\nAllowContainers=yes\n", NULL, "[Cage]\nContainers=podman\n", "project.conf:2: Containers= may only be set by"),
           "project Containers=podman refused even where allowed, with file:line");
        ok(refused("[Policy]\nAllowContainers=yes\n", NULL, "[Cage]\nContainers=no\n", "project.conf:2: Containers= may only be set by"),
           "project Containers= refused, even =no");
        ok(refused("[Policy]\nAllowContainers=yes\n", "[Cage]\nContainers=docker\n", NULL, "user.conf:2: Containers=docker: expected no or podman"),
           "Containers= of an unknown engine refused");
        ok(refused(NULL, "[Policy]\nAllowContainers=yes\n", NULL, "AllowContainers= may only be set by"), "user AllowContainers= refused");
        ok(containers_from_string(containers_to_string(CONTAINERS_PODMAN)) == CONTAINERS_PODMAN &&
           containers_from_string(containers_to_string(CONTAINERS_NO)) == CONTAINERS_NO && containers_from_string("yes") < 0,
           "Containers names round trip");
        ok(refused(NULL, NULL, "[Files]\nBind=/:/host\n", "Bind= may only be set by the administrator or in your user configuration"), "project Bind of / refused");
        ok(refused(NULL, NULL, "[Files]\nBindReadOnly=/etc\n", "may only be set by"), "project BindReadOnly refused");
        ok(refused(NULL, NULL, "[Cage]\nNixpkgs=/tmp/evil\n", "Nixpkgs= may only be set"), "project Nixpkgs refused");
        /* Audit 14, finding 1: root evaluates it; the user layer is the user's. */
        ok(refused(NULL, "[Cage]\nNixpkgs=/home/u/evil\n", NULL, "user.conf:2: Nixpkgs= may only be set by the administrator"), "user Nixpkgs= refused, with file:line");
        ok(refused(NULL, "[Cage]\nNixpkgs=github:evil/pkgs\n", NULL, "root evaluates and builds the package set it names"), "user flake Nixpkgs= refused, saying why");
        ok(accepted("[Cage]\nNixpkgs=/srv/nixpkgs\n", NULL, NULL), "admin Nixpkgs= accepted");
        ok(refused(NULL, "[Environment]\nPass=TERM NIX_PATH\n", NULL, "user.conf:2: Pass=NIX_PATH cannot be passed: nspawn-cage drops NIX_PATH"),
           "Pass= of a variable root drops at start is refused, not silently empty");
        {
                Config *d;
                CageError e = {};
                const char *text = "[Cage]\nNixpkgs=/srv/nixpkgs\nUser=alice\nProject=/home/alice/p\n";
                ok(config_new(&d) == 0 && config_load_declared(d, "cages/x.conf", text, strlen(text), &e) == 0 &&
                   streq(d->settings[SETTING_NIXPKGS].string, "/srv/nixpkgs"), "a declared cage's Nixpkgs= accepted");
                cage_error_done(&e);
                config_free(d);
        }
        ok(refused(NULL, NULL, "[Cage]\nName=.host\n", "Name= may only be set"), "project Name refused");
        /* Issue 14 (4): the project may not pick the agent or its saved state. */
        ok(refused(NULL, NULL, "[Cage]\nPreset=other\n",
                   "project.conf:2: Preset= is not taken from the project: it chooses the agent and which of your saved agent states"),
           "project Preset= refused with file:line");
        ok(refused(NULL, NULL, "[Cage]\nPreset=other\n", "set it in ~/.config/nspawn-cage/config or with --preset NAME"),
           "... and the message says where to set it");
        ok(refused(NULL, "[Cage]\nPreset=shell\n", "[Cage]\nPreset=shell\n", "Preset= is not taken from the project"),
           "project Preset= refused even when it repeats the user's");
        ok(refused(NULL, NULL, "[Limits]\nMemory=1G\n[Cage]\nCommand=sh -c 'cat ~/.ssh/id_ed25519'\n",
                   "project.conf:4: Command= is not taken from the project"), "project Command= refused with file:line");
        ok(refused(NULL, NULL, "[Cage]\nCommand=x\n", "give it on the command line (nspawn-cage PROJECT -- COMMAND...)"),
           "... and the message says where to set it");
        m = load3(NULL, "[Cage]\nPreset=claude-code\nCommand=claude --resume\n", NULL, &c);
        ok(!m && streq(c->settings[SETTING_PRESET].string, "claude-code") && streq(c->settings[SETTING_COMMAND].string, "claude --resume") &&
           c->settings[SETTING_PRESET].origin.layer == LAYER_USER, "the user layer still sets Preset= and Command=");
        free(m);
        config_free(c);
        ok(accepted("[Cage]\nPreset=shell\nCommand=bash -l\n", NULL, NULL), "the administrator layer still sets Preset= and Command=");
        /* Everything else the project may set narrows only: no other key
         * from the project chooses whose state, identity or host files the
         * cage gets (each key of the table, by layer). */
        for (int id = 0; id < _SETTING_MAX; id++) {
                static const SettingId project_keys[] = { SETTING_PACKAGES, SETTING_CPUS, SETTING_MEMORY, SETTING_SWAP, SETTING_TASKS,
                                                          SETTING_NETWORK_MODE, SETTING_ALLOW, SETTING_X11, SETTING_WAYLAND, SETTING_GPU,
                                                          SETTING_X11_TRUSTED, SETTING_PROTECT_GIT, SETTING_PASS, SETTING_SET,
                                                          SETTING_PERSIST, SETTING_SSH_AGENT, SETTING_GIT_CONFIG };
                bool expected = false;
                for (size_t k = 0; k < ELEMENTSOF(project_keys); k++)
                        expected = expected || project_keys[k] == id;
                _cleanup_free_ char *text = strdup_printf("[%s]\n%s=\n", setting_section(id), setting_key(id));
                char *msg = load3(NULL, NULL, text, NULL);
                /* Refused for its layer, not for its (empty) value. */
                bool taken = !msg || !(strstr(msg, "may only be set") || strstr(msg, "is not taken from the project") ||
                                       strstr(msg, "only valid in a declared cage"));
                if (taken != expected)
                        printf("#   %s: %s\n", setting_to_string(id), msg ? msg : "(accepted)");
                ok(taken == expected, "%s %s from the project", setting_to_string(id), expected ? "may be narrowed" : "is refused");
                free(msg);
        }
        ok(refused(NULL, "[Cage]\nName=.host\n", NULL, "not a valid machine name"), "Name=.host refused");
        ok(refused(NULL, NULL, "[Policy]\nMaxMemory=1T\n", "only be set by the administrator"), "project [Policy] refused");
        ok(refused(NULL, "[Policy]\nMaxMemory=1T\n", NULL, "only be set by the administrator"), "user [Policy] refused");
        ok(refused("[Policy]\nAllowBinds=no\n", "[Files]\nBind=/home/u/data\n", NULL, "AllowBinds=no"), "admin forbids binds");
        ok(refused(NULL, "[Files]\nBind=/a/../etc:/x\n", NULL, "absolute, normalised"), "bind with .. refused");
        ok(refused(NULL, "[Files]\nBind=//etc\n", NULL, "absolute, normalised"), "bind with // refused");

        ok(refused(NULL, "[Environment]\nPass=TERM ANTHROPIC_API_KEY\n", "[Environment]\nPass=AWS_SECRET_ACCESS_KEY\n", "Pass=AWS_SECRET_ACCESS_KEY is not allowed"), "project Pass of an unallowed variable refused");
        m = load3(NULL, "[Environment]\nPass=TERM ANTHROPIC_API_KEY\n", "[Environment]\nPass=TERM\n", &c);
        ok(!m && c->settings[SETTING_PASS].n_items == 1 && streq(c->settings[SETTING_PASS].items[0].value, "TERM"), "project Pass narrows the list");
        free(m);
        config_free(c);
        /* [Network] Allow=: HOST:PORT, table-driven errors, narrowing only from the project. */
        {
                static const struct { const char *in, *host, *why; unsigned port; } allow_cases[] = {
                        { "api.anthropic.com:443", "api.anthropic.com", NULL, 443 },
                        { "GitHub.COM:22", "github.com", NULL, 22 },
                        { "192.0.2.10:8080", "192.0.2.10", NULL, 8080 },
                        { "localhost:65535", "localhost", NULL, 65535 },
                        { "*.github.com:443", "*.github.com", NULL, 443 },
                        { "*.GitHub.com", "*.github.com", NULL, 443 },
                        { "github.com", "github.com", NULL, 443 },
                        { ":443", NULL, "expected HOST[:PORT]", 0 },
                        { "", NULL, "expected HOST[:PORT]", 0 },
                        { "*:443", NULL, "only '*.' before a name", 0 },
                        { "a.*.com:443", NULL, "only '*.' before a name", 0 },
                        { "*.*.com:443", NULL, "only '*.' before a name", 0 },
                        { "*x.com:443", NULL, "only '*.' before a name", 0 },
                        { "*.com:443", NULL, "at least two labels", 0 },
                        { "*.10.0.0.1:443", NULL, "not an address", 0 },
                        { "github.com:0", NULL, "from 1 to 65535", 0 },
                        { "github.com:65536", NULL, "from 1 to 65535", 0 },
                        { "github.com:080", NULL, "from 1 to 65535", 0 },
                        { "github.com:https", NULL, "from 1 to 65535", 0 },
                        { "github.com:", NULL, "from 1 to 65535", 0 },
                        { "[2001:db8::1]:443", NULL, "IPv6 addresses are not supported", 0 },
                        { "2001:db8::1:443", NULL, "IPv6 addresses are not supported", 0 },
                        { "1.2.3:443", NULL, "not a valid IPv4 address", 0 },
                        { "300.1.1.1:443", NULL, "not a valid IPv4 address", 0 },
                        { "github.com.:443", NULL, "no trailing '.'", 0 },
                        { "-bad.com:443", NULL, "not a valid host name", 0 },
                        { "a..b:443", NULL, "not a valid host name", 0 },
                        { "a/b:443", NULL, "not a valid host name", 0 },
                };
                for (size_t i = 0; i < ELEMENTSOF(allow_cases); i++) {
                        char *host = NULL;
                        uint16_t port = 0;
                        CageError e = {};
                        int r = allow_entry_parse(allow_cases[i].in, &host, &port, &e);
                        const char *why = e.message;
                        if (allow_cases[i].host)
                                ok(r == 0 && streq(host, allow_cases[i].host) && port == allow_cases[i].port, "Allow entry %s -> %s port %u",
                                   allow_cases[i].in, allow_cases[i].host, allow_cases[i].port);
                        else
                                ok(r == -EINVAL && why && strstr(why, allow_cases[i].why) && !host, "Allow entry %s refused: %s",
                                   allow_cases[i].in, allow_cases[i].why);
                        free(host);
                        cage_error_done(&e);
                }
        }
        ok(refused(NULL, "[Network]\nMode=private\nAllow=github.com:443 *.com:443\n", NULL, "user.conf:3: Allow=: '*.com:443': a wildcard needs a name of at least two labels"),
           "a bad Allow= entry names file, line, key and the fix");
        /* Patterns narrow like names: a project may name what a user's pattern covers. */
        const char *user_wild = "[Network]\nMode=private\nAllow=*.allowed.test github.com:22\n";
        ok(accepted(NULL, user_wild, "[Network]\nAllow=a.allowed.test:443 *.b.allowed.test\n"), "a project narrows *.allowed.test to one name and a sub-pattern");
        ok(refused(NULL, user_wild, "[Network]\nAllow=allowed.test:443\n", "project.conf:2: Allow=allowed.test:443 is not allowed: your configuration allows only Allow=*.allowed.test:443 github.com:22"),
           "*.allowed.test does not cover allowed.test itself");
        ok(refused(NULL, user_wild, "[Network]\nAllow=*.x.test:443\n", "Allow=*.x.test:443 is not allowed"), "nor a pattern beside it");
        ok(refused(NULL, user_wild, "[Network]\nAllow=a.allowed.test:80\n", "Allow=a.allowed.test:80 is not allowed"), "nor another port");
        ok(refused(NULL, user_wild, "[Network]\nAllow=evilallowed.test:443\n", "is not allowed"), "nor a name that only ends like it");
        ok(refused("[Policy]\nAllowEgress=*.corp.test\n", "[Network]\nMode=private\nAllow=x.other.test\n", NULL,
                   "user.conf:3: Allow=x.other.test:443 is not allowed: the administrator allows only AllowEgress=*.corp.test:443"),
           "AllowEgress= patterns bound the user's Allow=");
        ok(accepted("[Policy]\nAllowEgress=*.corp.test\n", "[Network]\nMode=private\nAllow=git.corp.test *.ci.corp.test\n", NULL),
           "and admit names and patterns below them");
        /* Publish= and HostService=: the user's or the administrator's, bounded by [Policy]. */
        ok(accepted(NULL, "[Network]\nMode=private\nPublish=3000 8080:80\nHostService=127.0.0.1:5432\n", NULL), "Publish= and HostService= in the user layer");
        ok(refused(NULL, "[Network]\nMode=private\n", "[Network]\nPublish=3000\n", "project.conf:2: Publish= may only be set"),
           "a project cannot publish a port");
        ok(refused(NULL, "[Network]\nMode=private\n", "[Network]\nHostService=127.0.0.1:5432\n", "project.conf:2: HostService= may only be set"),
           "nor open a host service");
        ok(refused("[Policy]\nAllowPublish=no\n", "[Network]\nMode=private\nPublish=3000\n", NULL, "user.conf:3: Publish= is not allowed: the administrator set AllowPublish=no"),
           "AllowPublish=no bounds the user");
        ok(refused("[Policy]\nAllowHostServices=no\n", "[Network]\nMode=private\nHostService=127.0.0.1:5432\n", NULL,
                   "HostService= is not allowed: the administrator set AllowHostServices=no"), "AllowHostServices=no too");
        static const char *const bad_openings[] = { "Publish=0", "Publish=65536", "Publish=80", "Publish=1023:3000", "Publish=3000:", "Publish=x", "Publish=03000",
                                                     "HostService=localhost:5432", "HostService=127.0.0.1", "HostService=127.0.0.1:53",
                                                     "HostService=10.0.0.1:3128", "HostService=[::1]:5432" };
        for (size_t i = 0; i < ELEMENTSOF(bad_openings); i++) {
                char user[128];
                snprintf(user, sizeof user, "[Network]\nMode=private\n%s\n", bad_openings[i]);
                ok(refused(NULL, user, NULL, "user.conf:3:"), "%s refused with file and line", bad_openings[i]);
        }
        m = load3(NULL, "[Network]\nMode=private\nAllow=api.anthropic.com:443 GitHub.com:443\nAllow=github.com:443 github.com:22\n", NULL, &c);
        ok(!m && c->settings[SETTING_ALLOW].n_items == 3 && streq(c->settings[SETTING_ALLOW].items[1].value, "github.com:443") &&
           c->settings[SETTING_ALLOW].items[2].origin.line == 4, "Allow= lines add up, normalised, without duplicates");
        free(m);
        config_free(c);
        m = load3("[Network]\nAllow=a.test:443\n", "[Network]\nAllow=\nAllow=b.test:443\n", NULL, &c);
        ok(!m && c->settings[SETTING_ALLOW].n_items == 1 && streq(c->settings[SETTING_ALLOW].items[0].value, "b.test:443"),
           "an empty Allow= in the user layer resets the administrator's list");
        free(m);
        config_free(c);
        const char *user_allow = "[Network]\nMode=private\nAllow=api.anthropic.com:443 github.com:443\n";
        ok(refused(NULL, user_allow, "[Network]\nAllow=evil.example:443\n",
                   "project.conf:2: Allow=evil.example:443 is not allowed: your configuration allows only Allow=api.anthropic.com:443 github.com:443 (from user.conf:3)"),
           "a project widening the user's Allow= is refused with the reason");
        ok(refused(NULL, user_allow, "[Network]\nAllow=github.com:22\n", "Allow=github.com:22 is not allowed"), "nor another port of an allowed name");
        ok(refused(NULL, user_allow, "[Network]\nAllow=\n", "would lift the allowlist"), "nor an empty Allow= that would lift it");
        m = load3(NULL, user_allow, "[Network]\nAllow=GITHUB.com:443\n", &c);
        ok(!m && c->settings[SETTING_ALLOW].n_items == 1 && streq(c->settings[SETTING_ALLOW].items[0].value, "github.com:443") &&
           c->settings[SETTING_ALLOW].items[0].origin.layer == LAYER_PROJECT, "the project narrows the user's list to one entry");
        free(m);
        config_free(c);
        m = load3(NULL, "[Network]\nMode=private\n", "[Network]\nAllow=github.com:443\nAllow=example.org:443\n", &c);
        ok(!m && c->settings[SETTING_ALLOW].n_items == 2, "without a trusted Allow= the project may set one (narrowing from everything)");
        free(m);
        config_free(c);
        ok(refused("[Policy]\nAllowEgress=api.anthropic.com:443\n", "[Network]\nMode=private\nAllow=github.com:443\n", NULL,
                   "user.conf:3: Allow=github.com:443 is not allowed: the administrator allows only AllowEgress=api.anthropic.com:443"),
           "the administrator's AllowEgress= bounds the user's Allow=");
        ok(refused(NULL, "[Policy]\nAllowEgress=a.test:443\n", NULL, "only be set by the administrator"), "AllowEgress= is the administrator's");
        ok(accepted("[Policy]\nAllowEgress=a.test:443 b.test:443\n", "[Network]\nMode=private\nAllow=b.test:443\n", "[Network]\nAllow=b.test:443\n"),
           "Allow= inside AllowEgress= is accepted in every layer");
        ok(refused(NULL, NULL, "[Environment]\nSet=PATH=/evil\n", "managed by nspawn-cage"), "Set=PATH refused");
        ok(refused(NULL, NULL, "[Environment]\nSet=LD_PRELOAD\n", "expected NAME=VALUE"), "Set without = refused");
        m = load3(NULL, "[Environment]\nSet=A=1\n", "[Environment]\nSet=A=2\nSet=B=x y\n", &c);
        ok(!m && c->settings[SETTING_SET].n_items == 2 && streq(c->settings[SETTING_SET].items[0].value, "A=2"), "later Set= of a name replaces it");
        free(m);
        config_free(c);
        m = load3("[Cage]\nPackages=git\n", NULL, "[Cage]\nPackages=ripgrep nodejs_22\nPackages=jq\n", &c);
        ok(!m && c->settings[SETTING_PACKAGES].n_items == 4, "Packages= accumulate across lines and layers");
        free(m);
        config_free(c);
        m = load3("[Cage]\nPackages=git\n", "[Cage]\nPackages=\nPackages=jq\n", NULL, &c);
        ok(!m && c->settings[SETTING_PACKAGES].n_items == 1, "empty Packages= resets the list");
        free(m);
        config_free(c);
        ok(refused(NULL, NULL, "[Cage]\nPackages=git;rm\n", "not a valid package attribute name"), "bad package name refused");

        /* inih traps and syntax */
        char big[400];
        snprintf(big, sizeof big, "[Cage]\nCommand=/home/alice/ok%0300d\n", 0);
        ok(refused(NULL, NULL, big, "line is 322 characters long; at most 190"), "long line refused, not cut");
        ok(refused(NULL, NULL, "[Cage]\nPackages=git\n  ripgrep\n", "indented line"), "indented continuation refused");
        ok(refused(NULL, NULL, "[Limits]\nMemory=1G\nMemory=2G\n", "already set on line 2"), "duplicate scalar key refused");
        ok(refused(NULL, NULL, "[Limits]\nMemory:1G\n", "expected Key=Value"), "key:value refused");
        ok(refused(NULL, NULL, "[Limits]\r\nMemory=1G\r\n", "carriage return"), "CRLF refused");
        ok(refused(NULL, NULL, "\xef\xbb\xbf[Limits]\n", "byte order mark"), "BOM refused");
        ok(refused(NULL, NULL, "[Cage]\nCommand=sh -c 'a ;b'\n", "';' after white space"), "inline comment trap refused");
        ok(refused(NULL, NULL, "[Cage]\nCommand=a\x01\n", "control character 0x01"), "control characters refused");
        ok(refused(NULL, NULL, "Memory=1G\n", "before any [Section]"), "key outside a section refused");
        ok(refused(NULL, NULL, "[Limits]\nMemroy=1G\n", "unknown key Memroy="), "unknown key refused");
        ok(refused(NULL, NULL, "[Limitz]\nMemory=1G\n", "unknown section [Limitz]"), "unknown section refused");
        ok(refused(NULL, NULL, "[Limits] x\n", "text after section header"), "junk after section refused");
        ok(accepted(NULL, "[Cage]\nCommand=x\\n[Files]\\nBind=/:/host\n", NULL), "a literal \\n escape stays inside Command=");
        ok(refused(NULL, NULL, "[Limits]\nMemory=\n", "needs a value"), "empty scalar refused");
        ok(refused(NULL, NULL, "[Limits]\nMemory=1M\n", "too small"), "tiny Memory refused");
        ok(refused(NULL, NULL, "[Limits]\nMemory=abc\n", "expected a size"), "bad size names the format");
        ok(refused(NULL, NULL, "[Limits]\nCPUs=4\n", "CPUs=4 asks for more than allowed"), "project CPUs above default refused");
        ok(accepted(NULL, NULL, "# comment\n; other comment\n\n[Limits]\nCPUs=0.5\nTasks=100\n"), "comments and blank lines accepted");
        char nul[] = "[Cage]\nCommand=a\0b\n";
        Config *c2;
        config_new(&c2);
        CageError e = {};
        ok(config_load_buffer(c2, LAYER_PROJECT, "p", nul, sizeof nul - 1, &e) < 0 && strstr(e.message, "NUL"), "NUL byte refused");
        cage_error_done(&e);
        config_free(c2);

        /* Declared cages: Project=, User=, Toplevel= only in their own file. */
        ok(refused(NULL, NULL, "[Cage]\nProject=/home/x\n", "only valid in a declared cage's file"), "project layer cannot set Project=");
        ok(refused("[Cage]\nUser=root\n", NULL, NULL, "only valid in a declared cage's file"), "admin file cannot set User=");
        const char *decl = "[Cage]\nProject=/home/alice/proj\nUser=alice\nToplevel=/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top\n[Limits]\nMemory=1G\n";
        config_new(&c);
        CageError de = {};
        ok(config_load_declared(c, "demo.conf", decl, strlen(decl), &de) == 0 && streq(c->settings[SETTING_USER].string, "alice") &&
           streq(c->settings[SETTING_PROJECT].string, "/home/alice/proj") && c->settings[SETTING_MEMORY].number == (UINT64_C(1) << 30),
           "declared file sets Project=, User=, Toplevel= and limits");
        cage_error_done(&de);
        config_free(c);
        const char *bad_decl = "[Cage]\nToplevel=/etc/passwd\n";
        config_new(&c);
        ok(config_load_declared(c, "demo.conf", bad_decl, strlen(bad_decl), &de) < 0 && strstr(de.message, "expected a store path"),
           "Toplevel= must be a store path");
        cage_error_done(&de);
        config_free(c);

        char *val;
        config_new(&c);
        val = setting_format_value(c, SETTING_MEMORY);
        is_str(val, "4G", "builtin Memory is 4G");
        free(val);
        val = setting_format_value(c, SETTING_NETWORK_MODE);
        is_str(val, "off", "builtin network is off");
        free(val);
        config_free(c);
        return tap_done();
}
