/* test-spec.c: resolving a cage from configuration: names, binds, presets,
 * closure validation and project path checks. */
#include "autoconfig.h"

#include "spec.h"
#include "tap.h"

static const HostUser alice = { .name = "alice", .uid = 1000, .gid = 1000, .home = "/home/alice" };

static CageSpec *resolve(const char *user_conf, char **msg) {
        Config *c;
        config_new(&c);
        CageError e = {};
        CageSpec *s = NULL;
        *msg = NULL;
        if (user_conf && config_load_buffer(c, LAYER_USER, "user.conf", user_conf, strlen(user_conf), &e) < 0)
                *msg = strdup(e.message);
        else if (cage_spec_resolve(c, "/home/alice/proj", &alice, NULL, NULL, &s, &e) < 0)
                *msg = strdup_printf("%s:%u: %s", strempty(e.file), e.line, strempty(e.message));
        cage_error_done(&e);
        config_free(c);
        return s;
}

/* Admin, user and project layers, then resolve: the spec or the error. */
static CageSpec *resolve3(const char *admin, const char *user_conf, const char *project, char **msg) {
        Config *c;
        config_new(&c);
        CageError e = {};
        CageSpec *s = NULL;
        const char *texts[] = { admin, user_conf, project }, *labels[] = { "admin.conf", "user.conf", "project.conf" };
        Layer layers[] = { LAYER_ADMIN, LAYER_USER, LAYER_PROJECT };
        *msg = NULL;
        for (int i = 0; i < 3 && !*msg; i++)
                if (texts[i] && config_load_buffer(c, layers[i], labels[i], texts[i], strlen(texts[i]), &e) < 0)
                        *msg = strdup_printf("%s:%u: %s", strempty(e.file), e.line, strempty(e.message));
        if (!*msg && cage_spec_resolve(c, "/home/alice/proj", &alice, NULL, NULL, &s, &e) < 0)
                *msg = strdup_printf("%s:%u: %s", strempty(e.file), e.line, strempty(e.message));
        cage_error_done(&e);
        config_free(c);
        return s;
}

static bool bind_refused(const char *conf, const char *needle) {
        char *m;
        CageSpec *s = resolve(conf, &m);
        bool r = !s && m && strstr(m, needle);
        if (!r)
                printf("#   got: %s\n", m ? m : "(accepted)");
        free(m);
        cage_spec_free(s);
        return r;
}

int main(void) {
        char *n1, *n2, *n3;
        cage_default_name("/home/alice/My Project!", 1000, &n1);
        cage_default_name("/home/alice/My Project!", 1000, &n2);
        cage_default_name("/home/bob/My Project!", 1000, &n3);
        ok(strncmp(n1, "My-Project-", 11) == 0 && strlen(n1) == 19, "default name is the cleaned directory name plus 8 hex digits (%s)", n1);
        ok(streq(n1, n2) && !streq(n1, n3), "default name is stable and depends on the full path");
        ok(machine_name_is_valid(n1), "default name is a valid machine name");
        free(n1); free(n2); free(n3);
        cage_default_name("/srv/...", 0, &n1);
        ok(machine_name_is_valid(n1) && strncmp(n1, "cage-", 5) == 0, "a name of dots still yields a valid name (%s)", n1);
        free(n1);

        char *m;
        CageSpec *s = resolve("[Cage]\nPackages=ripgrep git\nPackages=git\nCommand=sh -c 'echo hi'\n[Files]\nBindReadOnly=/home/alice/data:/srv/data\n", &m);
        ok(s && strv_length(s->packages) == 2 && streq(s->packages[0], "git"), "packages sorted and unique");
        ok(s && strv_length(s->command) == 3 && streq(s->command[2], "echo hi"), "command split into argv");
        ok(s && s->n_binds == 1 && s->binds[0].read_only && streq(s->binds[0].destination, "/srv/data"), "bind resolved");
        ok(s && s->memory == (UINT64_C(4) << 30) && s->network == NETWORK_OFF, "defaults carried");
        cage_spec_free(s);
        free(m);

        ok(bind_refused("[Files]\nBind=/etc\n", "a user configuration may not bind system directories"), "user bind of /etc refused");
        ok(bind_refused("[Files]\nBind=/root/x:/srv/x\n", "may not bind system directories"), "user bind of /root refused");
        ok(bind_refused("[Files]\nBind=/home/bob/src:/srv/src\n", "another user's home"), "user bind of another home refused");
        ok(bind_refused("[Files]\nBind=/:/host\n", "whole host file system"), "bind of / refused");
        ok(bind_refused("[Files]\nBind=/home/alice/x:/etc/x\n", "directory the cage itself provides"), "bind into /etc refused");
        ok(bind_refused("[Files]\nBind=/home/alice/x:/nix/store/x\n", "directory the cage itself provides"), "bind into the store refused");
        ok(bind_refused("[Files]\nBind=/home/alice/x:/home/alice\n", "hide the project"), "bind over the project refused");
        ok(bind_refused("[Files]\nBind=/run/dbus/system_bus_socket\n", "system directories"), "bind of the bus socket refused");

        CageError reason = {};
        ok(project_path_check("/", &alice, &reason) < 0, "project / refused");
        ok(project_path_check("/etc", &alice, &reason) < 0 && project_path_check("/etc/x", &alice, &reason) < 0, "project /etc refused");
        ok(project_path_check("/nix/store/abc", &alice, &reason) < 0, "project in the store refused");
        ok(project_path_check("/home/alice", &alice, &reason) < 0, "project = home refused");
        ok(project_path_check("/home", &alice, &reason) < 0 && project_path_check("/tmp", &alice, &reason) < 0, "shared top-level dirs refused");
        ok(project_path_check("/home/alice/a:b", &alice, &reason) < 0, "project with ':' refused");
        ok(project_path_check("/home/alice/proj", &alice, &reason) == 0 && project_path_check("/tmp/x", &alice, &reason) == 0 &&
           project_path_check("/srv/p", &alice, &reason) == 0, "ordinary projects accepted");
        cage_error_done(&reason);

        ok(store_path_is_valid("/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-bash-5.2") &&
           !store_path_is_valid("/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-bash/bin") &&
           !store_path_is_valid("/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7e-bash") &&
           !store_path_is_valid("/nix/store/short-bash") && !store_path_is_valid("/nix/store/../etc") &&
           !store_path_is_valid("/etc/passwd"), "store path validation");

        s = resolve(NULL, &m);
        char *paths[] = { "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top", "/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-bash",
                          "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top", NULL };
        CageError bad = {};
        ok(cage_spec_set_closure(s, paths, &bad) == 0 && strv_length(s->store_paths) == 2 &&
           streq(s->toplevel, paths[0]) && streq(s->store_paths[0], paths[1]), "closure deduplicated and sorted, top-level kept");
        char *many[] = { paths[0], paths[1], paths[0], paths[0], paths[1], "/nix/store/2c6kzph7l0dcbfmjap64f0czdafn3b7x-z", NULL };
        ok(cage_spec_set_closure(s, many, &bad) == 0 && strv_length(s->store_paths) == 3 && streq(s->store_paths[0], paths[1]) &&
           streq(s->store_paths[1], paths[0]) && streq(s->store_paths[2], many[5]), "repeats of repeats dropped, each path once");
        char *evil[] = { "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top", "/etc", NULL };
        ok(cage_spec_set_closure(s, evil, &bad) == -EINVAL && bad.message && strstr(bad.message, "/etc"), "non-store path in a closure refused");
        cage_error_done(&bad);
        cage_spec_free(s);

        Preset p = {};
        CageError e = {};
        const char *preset = "[Cage]\nCommand=claude\nPackages=claude-code git\n[Environment]\nPass=ANTHROPIC_API_KEY\n[Network]\nMode=private\n";
        ok(preset_parse("claude-code.conf", preset, strlen(preset), &p, &e) == 0 && streq(p.command, "claude") &&
           strv_length(p.packages) == 2 && strv_contains(p.wants_pass, "ANTHROPIC_API_KEY") && p.wants_network == NETWORK_PRIVATE,
           "preset parsed");
        preset_done(&p);
        cage_error_done(&e);

        /* [State] in a preset, and what resolving makes of it. */
        const char *sp = "[Cage]\nCommand=fake-agent\n[State]\nDirectory=.fake-agent .config/fake\nFile=.fake-agent.json\n";
        ok(preset_parse("fake.conf", sp, strlen(sp), &p, &e) == 0 && strv_length(p.state_dirs) == 2 &&
           streq(p.state_dirs[1], ".config/fake") && strv_length(p.state_files) == 1 && p.persist == -1,
           "preset [State] Directory= and File= parsed, Persist= unset");
        const char *bad_paths[] = { "/abs", "../up", "a/../b", "a//b", "a/", ".", "a:b", NULL };
        for (size_t i = 0; bad_paths[i]; i++)
                ok(!state_path_is_valid(bad_paths[i]), "state path '%s' refused", bad_paths[i]);
        ok(state_path_is_valid(".claude") && state_path_is_valid(".local/share/opencode"), "state paths relative to the home accepted");
        HostUser alice = { .name = "alice", .uid = 1000, .gid = 1000, .home = "/home/alice" };
        Config *cfg = NULL;
        CageSpec *st = NULL;
        CageError e2 = {};
        ok(config_new(&cfg) == 0 && cage_spec_resolve(cfg, "/home/alice/proj", &alice, "c1", &p, &st, &e2) == 0 && st->persist &&
           strv_length(st->state_dirs) == 2 && strv_length(st->state_files) == 1, "resolved: persistence on with the preset's state");
        char *sdir = state_dir_path("/home/alice", "fake");
        ok(sdir && streq(sdir, "/home/alice/.local/state/nspawn-cage/fake"), "the state directory is below the home, per preset");
        ok(cage_spec_add_state_binds(st, sdir) == 0 && st->n_binds == 2 && st->binds[0].as_user && !st->binds[0].read_only &&
           streq(st->binds[0].source, "/home/alice/.local/state/nspawn-cage/fake/.fake-agent") &&
           streq(st->binds[0].destination, "/home/alice/.fake-agent"), "each Directory= becomes a writable bind from the state directory");
        free(sdir);
        cage_spec_free(st);
        st = NULL;
        const char *no = "[State]\nPersist=no\n";
        ok(config_load_buffer(cfg, LAYER_PROJECT, "p.conf", no, strlen(no), &e2) == 0 &&
           cage_spec_resolve(cfg, "/home/alice/proj", &alice, "c1", &p, &st, &e2) == 0 && !st->persist && !st->state_dirs,
           "Persist=no from the project: no state");
        cage_spec_free(st);
        st = NULL;
        const char *yes = "[State]\nPersist=yes\n";
        ok(config_load_buffer(cfg, LAYER_PROJECT, "p.conf", yes, strlen(yes), &e2) == -EINVAL, "the project cannot turn Persist= back on");
        config_free(cfg);
        cage_error_done(&e2);
        ok(config_new(&cfg) == 0 && cage_spec_resolve(cfg, "/home/alice/.fake-agent", &alice, "c1", &p, &st, &e2) == -EINVAL &&
           strstr(e2.message, "overlaps the project"), "a state directory that is the project is refused");
        config_free(cfg);
        cage_error_done(&e2);
        preset_done(&p);
        const char *ov = "[State]\nDirectory=.a\nFile=.a/x.json\n";
        ok(preset_parse("ov.conf", ov, strlen(ov), &p, &e) == -EINVAL && strstr(e.message, "overlap"), "a File= below a Directory= is refused");
        cage_error_done(&e);
        preset_done(&p);
        const char *dotdot = "[State]\nDirectory=../etc\n";
        ok(preset_parse("dd.conf", dotdot, strlen(dotdot), &p, &e) == -EINVAL && e.line == 2, "Directory=../etc refused with its line");
        cage_error_done(&e);
        preset_done(&p);
        const char *proj = "[State]\nDirectory=.x\n";
        ok(config_new(&cfg) == 0 && config_load_buffer(cfg, LAYER_PROJECT, "p.conf", proj, strlen(proj), &e2) == -EINVAL,
           "the project cannot name state");
        config_free(cfg);
        cage_error_done(&e2);
        char *a2[] = { ".a", ".ab", NULL }, *f2[] = { ".a.json", NULL };
        const char *x = NULL, *y = NULL;
        ok(state_paths_check(a2, f2, &x, &y) == 0, "'.a' and '.ab' and '.a.json' do not overlap");
        const char *allow_preset = "[Network]\nMode=private\nAllow=api.anthropic.com:443\n";
        ok(preset_parse("mine.conf", allow_preset, strlen(allow_preset), &p, &e) == -EINVAL && e.line == 3 && streq(e.file, "mine.conf") &&
           strstr(e.message, "Allow= in a preset is not applied; put it under [Network] in your user configuration"),
           "Allow= in a preset is refused, not silently dropped");
        cage_error_done(&e);
        /* [Network] Allow= reaches the spec only with Mode=private. */
        {
                char *am;
                CageSpec *as = resolve3(NULL, "[Network]\nMode=private\nAllow=a.test:443 192.0.2.1:53\n", NULL, &am);
                ok(as && as->n_allow == 2 && streq(as->allow[0].host, "a.test") && as->allow[0].port == 443 && streq(as->allow[0].where, "user.conf:3") &&
                   !as->allow[0].addrs, "Allow= with Mode=private: two entries, unresolved, with their line");
                cage_spec_free(as);
                free(am);
                as = resolve3(NULL, "[Network]\nAllow=a.test:443\n", NULL, &am);
                ok(!as && am && strstr(am, "user.conf:2: Allow=a.test:443 needs Mode=private, but the network is off") && strstr(am, "add Mode=private"),
                   "Allow= with the default Mode=off is an error naming the line and the fix");
                free(am);
                as = resolve3("[Policy]\nAllowNetwork=off private host\n", "[Network]\nMode=host\nAllow=a.test:443\n", NULL, &am);
                ok(!as && am && strstr(am, "user.conf:3: Allow=a.test:443 needs Mode=private: Mode=host"), "Allow= with Mode=host is refused: it cannot be filtered");
                free(am);
                as = resolve3(NULL, "[Network]\nMode=private\nAllow=a.test:443\n", "[Network]\nMode=off\n", &am);
                ok(as && as->network == NETWORK_OFF && as->n_allow == 0, "a project turning the network off narrows further: no error");
                cage_spec_free(as);
                free(am);
                as = resolve3("[Policy]\nAllowEgress=b.test:443\n", "[Network]\nMode=private\n", NULL, &am);
                ok(as && as->n_allow == 1 && streq(as->allow[0].host, "b.test") && streq(as->allow[0].where, "admin.conf:2"),
                   "without Allow= the cage gets the administrator's AllowEgress=");
                cage_spec_free(as);
                free(am);
                as = resolve3("[Policy]\nAllowEgress=b.test:443\n", NULL, NULL, &am);
                ok(as && as->n_allow == 0, "AllowEgress= does not trouble a cage without network");
                cage_spec_free(as);
                free(am);
        }
        return tap_done();
}
