/* spec.c: from merged configuration, project path and invoking user to one
 * CageSpec. This is where relations between values are checked (a bind's
 * destination against the project, the user's home against a bind source);
 * the config module has already checked each value on its own. */
#include "autoconfig.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "pathfd.h"
#include "spec.h"

CageSpec *cage_spec_free(CageSpec *s) {
        if (!s)
                return NULL;
        free(s->name);
        free(s->project);
        host_user_done(&s->user);
        free(s->preset);
        strv_free(s->command);
        strv_free(s->packages);
        free(s->nixpkgs);
        network_allow_free_many(s->allow, s->n_allow);
        free(s->publish);
        free(s->host_services);
        for (size_t i = 0; i < s->n_binds; i++) {
                free(s->binds[i].source);
                free(s->binds[i].destination);
                free(s->binds[i].staged);
                free((char *) s->binds[i].origin.file);
        }
        free(s->project_staged);
        free(s->store_dir);
        free(s->git_common);
        free(s->git_worktree);
        free(s->git_branch);
        free(s->binds);
        strv_free(s->pass);
        strv_free(s->set);
        free(s->env_file);
        strv_free(s->devices);
        strv_free(s->state_dirs);
        strv_free(s->state_files);
        strv_free(s->ca_files);
        free(s->toplevel);
        strv_free(s->store_paths);
        free(s);
        return NULL;
}

void preset_done(Preset *p) {
        free(p->command);
        strv_free(p->packages);
        strv_free(p->wants_pass);
        strv_free(p->state_dirs);
        strv_free(p->state_files);
        *p = (Preset) { .persist = -1 };
}

int preset_parse(const char *label, const char *data, size_t size, Preset *ret, CageError *err) {
        _cleanup_(config_freep) Config *c = NULL;
        int r = config_new(&c);
        if (r < 0)
                return r;
        /* Presets ship with the program (or sit in the user's own directory):
         * parse them with the user layer's rights, then keep only their own keys. */
        Setting *pass = &c->settings[SETTING_PASS];
        for (size_t i = 0; i < pass->n_items; i++)
                free(pass->items[i].value);
        pass->n_items = 0;
        r = config_load_buffer(c, LAYER_USER, label, data, size, err);
        if (r < 0)
                return r;
        const Setting *allow = &c->settings[SETTING_ALLOW];
        if (allow->n_items > 0) {
                return cage_error_set_at(err, -EINVAL, label, allow->items[0].origin.line,
                                         "Allow= in a preset is not applied; put it under [Network] in your user configuration (~/.config/nspawn-cage/config)");
        }
        Preset p = { .persist = -1 };
        const Setting *cmd = &c->settings[SETTING_COMMAND];
        if (cmd->set && !(p.command = strdup(cmd->string)))
                return -ENOMEM;
        const Setting *pk = &c->settings[SETTING_PACKAGES];
        for (size_t i = 0; i < pk->n_items; i++)
                if (strv_extend(&p.packages, pk->items[i].value) < 0)
                        goto oom;
        for (size_t i = 0; i < pass->n_items; i++)
                if (strv_extend(&p.wants_pass, pass->items[i].value) < 0)
                        goto oom;
        const SettingId lists[] = { SETTING_STATE_DIRECTORY, SETTING_STATE_FILE };
        for (size_t k = 0; k < ELEMENTSOF(lists); k++) {
                const Setting *l = &c->settings[lists[k]];
                for (size_t i = 0; i < l->n_items; i++)
                        if (!strv_contains(k == 0 ? p.state_dirs : p.state_files, l->items[i].value) &&
                            strv_extend(k == 0 ? &p.state_dirs : &p.state_files, l->items[i].value) < 0)
                                goto oom;
        }
        if (c->settings[SETTING_PERSIST].set)
                p.persist = (int) c->settings[SETTING_PERSIST].number;
        const char *a = NULL, *b = NULL;
        if (state_paths_check(p.state_dirs, p.state_files, &a, &b) < 0) {
                /* a and b point into p: the message first, then p goes. */
                cage_error_set_at(err, -EINVAL, label, 0, "[State] %s and %s overlap; name each directory or file once, none below another", a, b);
                preset_done(&p);
                return -EINVAL;
        }
        p.wants_network = c->settings[SETTING_NETWORK_MODE].set ? (NetworkMode) c->settings[SETTING_NETWORK_MODE].number : NETWORK_OFF;
        *ret = p;
        return 0;
oom:
        preset_done(&p);
        return -ENOMEM;
}

int state_paths_check(char *const *dirs, char *const *files, const char **ret_a, const char **ret_b) {
        /* A directory must not equal or contain another entry; a file must
         * not equal another file (a file "below" a file cannot exist). */
        char *const *lists[] = { dirs, files };
        for (size_t la = 0; la < 2; la++)
                for (size_t i = 0; lists[la] && lists[la][i]; i++)
                        for (size_t lb = 0; lb < 2; lb++)
                                for (size_t j = 0; lists[lb] && lists[lb][j]; j++) {
                                        if (la == lb && i == j)
                                                continue;
                                        const char *x = lists[la][i], *y = lists[lb][j];
                                        const char *rest = startswith(y, x);
                                        bool below = rest && (*rest == 0 || (*rest == '/' && la == 0));
                                        if (below) {
                                                *ret_a = x;
                                                *ret_b = y;
                                                return -EINVAL;
                                        }
                                }
        return 0;
}

char *state_dir_path(const char *home, const char *preset) {
        return strdup_printf("%s/.local/state/nspawn-cage/%s", streq(home, "/") ? "" : home, preset);
}

static uint64_t fnv1a(uint64_t h, const char *s) {
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

int cage_default_name(const char *project, uid_t uid, char **ret) {
        const char *base = strrchr(project, '/');
        base = base ? base + 1 : project;
        char clean[41];
        size_t n = 0;
        for (const char *p = base; *p && n < sizeof clean - 1; p++) {
                char ch = *p;
                if (!isalnum((unsigned char) ch) && ch != '_')
                        ch = '-';
                if (ch == '-' && (n == 0 || clean[n - 1] == '-'))
                        continue;
                clean[n++] = ch;
        }
        while (n > 0 && clean[n - 1] == '-')
                n--;
        clean[n] = 0;
        char uidbuf[32];
        snprintf(uidbuf, sizeof uidbuf, "%u:", (unsigned) uid);
        uint64_t h = fnv1a(fnv1a(UINT64_C(0xcbf29ce484222325), uidbuf), project);
        char *name = strdup_printf("%s%s%08x", clean, n ? "-" : "cage-", (unsigned) (h ^ (h >> 32)));
        if (!name)
                return -ENOMEM;
        *ret = name;
        return 0;
}

static const char *const reserved_destinations[] = {
        "/", "/nix", "/proc", "/sys", "/dev", "/run", "/etc", "/usr", "/bin", "/sbin",
        "/lib", "/lib64", "/boot", "/root", "/tmp", "/var", NULL,
};

static const char *const system_directories[] = {
        "/etc", "/root", "/proc", "/sys", "/dev", "/run", "/boot", "/nix", "/usr", "/bin",
        "/sbin", "/lib", "/lib64", "/var", "/srv", "/opt", "/mnt", "/media", "/tmp", NULL,
};

int project_path_check(const char *p, const HostUser *user, CageError *err) {
        if (streq(p, "/"))
                return cage_error_set(err, -EPERM, "project %s %s", p, "is the root directory; give a project directory");
        if (!path_is_safe_absolute(p))
                return cage_error_set(err, -EINVAL, "project %s %s", p, "holds characters systemd.nspawn(5) cannot express in a bind (':', '\\', quotes, control characters, or spaces at the start or end of a name); rename it");
        for (size_t i = 0; system_directories[i]; i++)
                if (path_startswith_dir(p, system_directories[i]) && !path_startswith_dir(p, "/var/tmp") &&
                    !path_startswith_dir(p, "/tmp") && !path_startswith_dir(p, "/srv") && !path_startswith_dir(p, "/opt") &&
                    !path_startswith_dir(p, "/mnt") && !path_startswith_dir(p, "/media"))
                        return cage_error_set(err, -EPERM, "project %s %s", p, "is a system directory; give a project directory you own");
        if (streq(p, "/tmp") || streq(p, "/var/tmp") || streq(p, "/home") || streq(p, "/srv") || streq(p, "/opt") ||
            streq(p, "/mnt") || streq(p, "/media"))
                return cage_error_set(err, -EPERM, "project %s %s", p, "is a shared top-level directory; give a project directory below it");
        if (user->home && streq(p, user->home))
                return cage_error_set(err, -EPERM, "project %s %s", p, "is your home directory itself; give a project directory below it");
        return 0;
}

_printf_(3, 4) static int fail(CageError *err, const Origin *o, const char *fmt, ...) {
        va_list ap;
        cage_error_done(err);
        err->file = o && o->file ? strdup(o->file) : NULL;
        err->line = o ? o->line : 0;
        va_start(ap, fmt);
        if (vasprintf(&err->message, fmt, ap) < 0)
                err->message = NULL;
        va_end(ap);
        return err->r = -EINVAL;
}

static int add_binds(CageSpec *s, const Setting *st, bool read_only, CageError *err) {
        for (size_t i = 0; i < st->n_items; i++) {
                const Item *it = &st->items[i];
                _cleanup_free_ char *src = strdup(it->value);
                if (!src)
                        return -ENOMEM;
                char *colon = strchr(src, ':');
                _cleanup_free_ char *dst = strdup(colon ? colon + 1 : src);
                if (colon)
                        *colon = 0;
                if (!dst)
                        return -ENOMEM;
                const char *key = read_only ? "BindReadOnly" : "Bind";
                if (streq(src, "/"))
                        return fail(err, &it->origin, "%s=%s: binding the whole host file system is not allowed", key, it->value);
                if (it->origin.layer != LAYER_ADMIN) {
                        /* Opened with the user's rights and along no link at start
                         * (binds.c), so these prefixes are what is bound; keep the
                         * obvious out. */
                        static const char *const denied[] = { "/etc", "/root", "/proc", "/sys", "/dev", "/run", "/boot", "/nix", "/var/lib", NULL };
                        for (size_t k = 0; denied[k]; k++)
                                if (path_startswith_dir(src, denied[k]))
                                        return fail(err, &it->origin, "%s=%s: a user configuration may not bind system directories; ask the administrator", key, it->value);
                        if (path_startswith_dir(src, "/home") && !path_startswith_dir(src, s->user.home))
                                return fail(err, &it->origin, "%s=%s: the source lies in another user's home; bind only your own files", key, it->value);
                }
                for (size_t k = 0; reserved_destinations[k]; k++)
                        if (path_startswith_dir(dst, reserved_destinations[k]) &&
                            (!streq(reserved_destinations[k], "/") || streq(dst, "/")) &&
                            !(streq(reserved_destinations[k], "/var") && !streq(dst, "/var") && !path_startswith_dir(dst, "/var/lib")) &&
                            !(streq(reserved_destinations[k], "/tmp") && !streq(dst, "/tmp")))
                                return fail(err, &it->origin, "%s=%s: the destination lies in a directory the cage itself provides; bind below /home, /srv, /opt or /mnt instead", key, it->value);
                if (path_startswith_dir(s->project, dst))
                        return fail(err, &it->origin, "%s=%s: the destination would hide the project directory; choose another destination", key, it->value);
                Origin o = it->origin;
                if (o.file && !(o.file = strdup(o.file)))
                        return -ENOMEM;
                BindSpec *b = cage_spec_add_bind(s, TAKE_PTR(src), TAKE_PTR(dst));
                if (!b) {
                        free((char *) o.file);
                        return -ENOMEM;
                }
                b->read_only = read_only;
                b->origin = o;
        }
        return 0;
}

/* [Network] Publish= and HostService=: with Mode=private only (validated
 * while parsing; at most 16 each: one listening socket each). */
static int add_openings(CageSpec *s, const Config *c, CageError *err) {
        const Setting *pub = &c->settings[SETTING_PUBLISH], *svc = &c->settings[SETTING_HOST_SERVICE];
        const Setting *which[] = { pub, svc };
        for (size_t k = 0; k < 2; k++) {
                const Setting *st = which[k];
                if (st->n_items == 0)
                        continue;
                if (s->network != NETWORK_PRIVATE)
                        return fail(err, &st->items[0].origin, "%s=%s needs Mode=private (a veth of the cage's own); add Mode=private under [Network]",
                                    k ? "HostService" : "Publish", st->items[0].value);
                if (st->n_items > 16)
                        return fail(err, &st->items[16].origin, "%s=: too many entries (at most 16)", k ? "HostService" : "Publish");
                NetworkPort *p = calloc(st->n_items, sizeof *p);
                if (!p)
                        return -ENOMEM;
                for (size_t i = 0; i < st->n_items; i++) {
                        int r = k ? host_service_entry_parse(st->items[i].value, p[i].addr, &p[i].port)
                                  : publish_entry_parse(st->items[i].value, &p[i].port, &p[i].to_port);
                        if (k)
                                p[i].to_port = p[i].port;
                        if (r < 0) {
                                free(p);
                                return -EINVAL; /* validated while parsing */
                        }
                        for (size_t j = 0; j < i; j++)
                                if (p[j].port == p[i].port) {
                                        free(p);
                                        return fail(err, &st->items[i].origin, "%s=%s: port %u is named twice", k ? "HostService" : "Publish",
                                                    st->items[i].value, (unsigned) p[i].port);
                                }
                }
                if (k) {
                        s->host_services = p;
                        s->n_host_services = st->n_items;
                } else {
                        s->publish = p;
                        s->n_publish = st->n_items;
                }
        }
        return 0;
}

/* [Network] Allow=, or the administrator's AllowEgress= when no layer set
 * one: enforced only in Mode=private. */
static int add_allow(CageSpec *s, const Config *c, CageError *err) {
        const Setting *allow = &c->settings[SETTING_ALLOW], *policy = &c->settings[SETTING_ALLOW_EGRESS];
        const Setting *mode = &c->settings[SETTING_NETWORK_MODE];
        const Setting *from = allow->n_items > 0 ? allow : policy;
        const char *key = from == allow ? "Allow" : "AllowEgress";
        if (from->n_items == 0)
                return 0;
        if (s->network == NETWORK_HOST)
                return fail(err, &from->items[0].origin, "%s=%s needs Mode=private: Mode=host (from %s:%u) shares the host's network, which cannot be filtered per cage; set [Network] Mode=private",
                            key, from->items[0].value, strempty(mode->origin.file), mode->origin.line);
        if (s->network == NETWORK_OFF) {
                /* A project that turns the network off narrows further: fine. */
                if (from == policy || mode->origin.layer == LAYER_PROJECT)
                        return 0;
                _cleanup_free_ char *mfrom = mode->origin.layer == LAYER_BUILTIN ? strdup("the built-in default")
                                           : strdup_printf("%s:%u", strempty(mode->origin.file), mode->origin.line);
                return fail(err, &from->items[0].origin, "Allow=%s needs Mode=private, but the network is off (Mode=off, from %s); add Mode=private under [Network]",
                            from->items[0].value, strempty(mfrom));
        }
        s->allow = calloc(from->n_items, sizeof(NetworkAllow));
        if (!s->allow)
                return -ENOMEM;
        for (size_t i = 0; i < from->n_items; i++) {
                const Item *it = &from->items[i];
                NetworkAllow *a = &s->allow[s->n_allow++];
                _cleanup_(cage_error_done) CageError why = {};
                int r = allow_entry_parse(it->value, &a->host, &a->port, &why);
                if (r < 0)
                        return r; /* validated while parsing */
                a->where = it->origin.layer == LAYER_BUILTIN ? strdup("builtin")
                                                             : strdup_printf("%s:%u", strempty(it->origin.file), it->origin.line);
                if (!a->where)
                        return -ENOMEM;
        }
        return 0;
}

/* Packages= (the preset's, then the layers'), Pass= and Set=. */
static int resolve_lists(CageSpec *s, const Setting *st, const Preset *preset) {
        for (size_t i = 0; preset && preset->packages && preset->packages[i]; i++)
                if (!strv_contains(s->packages, preset->packages[i]) && strv_extend(&s->packages, preset->packages[i]) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < st[SETTING_PACKAGES].n_items; i++) {
                const char *p = st[SETTING_PACKAGES].items[i].value;
                if (!strv_contains(s->packages, p) && strv_extend(&s->packages, p) < 0)
                        return -ENOMEM;
        }
        strv_sort(s->packages);
        for (size_t i = 0; i < st[SETTING_PASS].n_items; i++)
                if (!strv_contains(s->pass, st[SETTING_PASS].items[i].value) &&
                    strv_extend(&s->pass, st[SETTING_PASS].items[i].value) < 0)
                        return -ENOMEM;
        strv_sort(s->pass);
        for (size_t i = 0; i < st[SETTING_SET].n_items; i++)
                if (strv_extend(&s->set, st[SETTING_SET].items[i].value) < 0)
                        return -ENOMEM;
        return 0;
}

/* [State]: the preset's paths, then the trusted layers'; none overlapping
 * another or the project. */
static int resolve_state(CageSpec *s, const Setting *st, const Preset *preset, const HostUser *user, const char *project, CageError *err) {
        /* Off when any layer or the preset says Persist=no, and for root's cages. */
        s->persist = st[SETTING_PERSIST].number && !(preset && preset->persist == 0) && user->uid != 0 && !streq(user->home, "/");
        for (size_t k = 0; k < 2 && s->persist; k++) {
                char ***dst = k == 0 ? &s->state_dirs : &s->state_files;
                const Setting *l = &st[k == 0 ? SETTING_STATE_DIRECTORY : SETTING_STATE_FILE];
                char *const *from = preset ? (k == 0 ? preset->state_dirs : preset->state_files) : NULL;
                for (size_t i = 0; from && from[i]; i++)
                        if (!strv_contains(*dst, from[i]) && strv_extend(dst, from[i]) < 0)
                                return -ENOMEM;
                for (size_t i = 0; i < l->n_items; i++)
                        if (!strv_contains(*dst, l->items[i].value) && strv_extend(dst, l->items[i].value) < 0)
                                return -ENOMEM;
        }
        const char *a = NULL, *b = NULL;
        if (state_paths_check(s->state_dirs, s->state_files, &a, &b) < 0)
                return fail(err, NULL, "[State] %s and %s overlap (between the preset %s and your configuration); name each directory or file once, none below another",
                            a, b, s->preset);
        for (size_t k = 0; k < 2; k++)
                for (char **p = k == 0 ? s->state_dirs : s->state_files; p && *p; p++) {
                        _cleanup_free_ char *inside = strdup_printf("%s/%s", user->home, *p);
                        if (!inside)
                                return -ENOMEM;
                        if (path_startswith_dir(project, inside) || path_startswith_dir(inside, project))
                                return fail(err, NULL, "[State] %s=%s: %s overlaps the project %s; move the project or set [State] Persist=no",
                                            k == 0 ? "Directory" : "File", *p, inside, project);
                }
        if (!s->state_dirs && !s->state_files)
                s->persist = false;
        return 0;
}

int cage_spec_resolve(const Config *c, const char *project, const HostUser *user, const char *name,
                      const Preset *preset, CageSpec **ret, CageError *err) {
        _cleanup_(cage_spec_freep) CageSpec *s = calloc(1, sizeof(CageSpec));
        const Setting *st = c->settings;
        int r;
        if (!s)
                return -ENOMEM;
        if (!(s->project = strdup(project)) || host_user_copy(user, &s->user) < 0)
                return -ENOMEM;

        if (name)
                s->name = strdup(name);
        else if (st[SETTING_NAME].set)
                s->name = strdup(st[SETTING_NAME].string);
        else if ((r = cage_default_name(project, user->uid, &s->name)) < 0)
                return r;
        if (!s->name)
                return -ENOMEM;
        if (!machine_name_is_valid(s->name))
                return fail(err, NULL, "machine name '%s' is not valid", s->name);

        if (!(s->preset = strdup(st[SETTING_PRESET].string)) || !(s->nixpkgs = strdup(st[SETTING_NIXPKGS].string)))
                return -ENOMEM;
        const char *command = st[SETTING_COMMAND].set ? st[SETTING_COMMAND].string
                            : preset && preset->command ? preset->command : "bash -l";
        if ((r = split_command(command, &s->command)) < 0)
                return r;

        if ((r = resolve_lists(s, st, preset)) < 0)
                return r;

        s->cpus = st[SETTING_CPUS].number;
        s->memory = st[SETTING_MEMORY].number;
        s->swap = st[SETTING_SWAP].number;
        s->tasks = st[SETTING_TASKS].number;
        s->network = (NetworkMode) st[SETTING_NETWORK_MODE].number;
        s->x11 = st[SETTING_X11].number;
        s->wayland = st[SETTING_WAYLAND].number;
        s->gpu = st[SETTING_GPU].number;
        s->protect_git = st[SETTING_PROTECT_GIT].number;
        if ((r = add_allow(s, c, err)) < 0 || (r = add_openings(s, c, err)) < 0)
                return r;
        s->ssh_agent = st[SETTING_SSH_AGENT].number;
        s->git_config = st[SETTING_GIT_CONFIG].number;
        s->nix_daemon = st[SETTING_NIX_DAEMON].number;
        s->containers = (Containers) st[SETTING_CONTAINERS].number;
        if (st[SETTING_ENV_FILE].string) {
                if (!(s->env_file = strdup(st[SETTING_ENV_FILE].string)))
                        return -ENOMEM;
                s->env_file_as_root = st[SETTING_ENV_FILE].origin.layer != LAYER_USER;
        }

        if ((r = add_binds(s, &st[SETTING_BIND], false, err)) < 0 ||
            (r = add_binds(s, &st[SETTING_BIND_READ_ONLY], true, err)) < 0)
                return r;

        if ((r = resolve_state(s, st, preset, user, project, err)) < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

BindSpec *cage_spec_add_bind(CageSpec *s, char *source, char *destination) {
        BindSpec *t = source && destination ? realloc(s->binds, sizeof(BindSpec) * (s->n_binds + 1)) : NULL;
        if (!t) {
                free(source);
                free(destination);
                return NULL;
        }
        s->binds = t;
        t[s->n_binds] = (BindSpec) { .source = source, .destination = destination };
        return &t[s->n_binds++];
}

int cage_spec_add_state_binds(CageSpec *s, const char *state_dir) {
        for (size_t i = 0; s->persist && s->state_dirs && s->state_dirs[i]; i++) {
                BindSpec *b = cage_spec_add_bind(s, strdup_printf("%s/%s", state_dir, s->state_dirs[i]),
                                                 strdup_printf("%s/%s", s->user.home, s->state_dirs[i]));
                if (!b)
                        return -ENOMEM;
                b->as_user = true;
        }
        return 0;
}

int cage_spec_set_userns(CageSpec *s, uid_t base, const char *staging_dir) {
        if (base == 0 || isempty(staging_dir) || staging_dir[0] != '/')
                return -EINVAL;
        _cleanup_free_ char *project = strdup_printf("%s/project", staging_dir);
        if (!project)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_binds; i++) {
                BindSpec *b = &s->binds[i];
                if (b->as_is)
                        continue;
                /* Below the project too: a path through the project's mount
                 * would be resolved again by nspawn, along the agent's links. */
                char *staged = strdup_printf("%s/bind-%zu", staging_dir, i);
                if (!staged)
                        return -ENOMEM;
                free(b->staged);
                b->staged = staged;
                b->own_mount = true;
        }
        free(s->project_staged);
        s->project_staged = TAKE_PTR(project);
        s->uid_base = base;
        return 0;
}

/* What of the project rel is, looked at beneath the project without
 * following a link: S_IFMT bits, 0 if absent or a link. */
static mode_t protect_git_type(int project_fd, const char *rel, uid_t *ret_uid) {
        _cleanup_close_ int fd = path_open_nofollow(project_fd, rel, O_PATH, RESOLVE_BENEATH | RESOLVE_NO_XDEV);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || S_ISLNK(st.st_mode))
                return 0;
        if (ret_uid)
                *ret_uid = st.st_uid;
        return st.st_mode & S_IFMT;
}

static int protect_git_bind(CageSpec *s, const char *rel, bool read_only) {
        BindSpec *b = cage_spec_add_bind(s, strdup_printf("%s/%s", s->project, rel), strdup_printf("%s/%s", s->project, rel));
        if (!b)
                return -ENOMEM;
        b->read_only = read_only;
        return 0;
}

/* A git directory (rel): itself bound onto itself when it is the user's,
 * a mount point the agent can neither rename nor replace; read-only what
 * in it names commands or another git directory. */
static int protect_gitdir(CageSpec *s, int project_fd, const char *rel) {
        static const struct { const char *name; mode_t type; } parts[] = {
                { "hooks", S_IFDIR }, { "config", S_IFREG }, { "config.worktree", S_IFREG }, { "commondir", S_IFREG },
        };
        uid_t uid = (uid_t) -1;
        int r;
        if (protect_git_type(project_fd, rel, &uid) == S_IFDIR && uid == s->user.uid && (r = protect_git_bind(s, rel, false)) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                _cleanup_free_ char *p = strdup_printf("%s/%s", rel, parts[i].name);
                if (!p)
                        return -ENOMEM;
                if (protect_git_type(project_fd, p, NULL) == parts[i].type && (r = protect_git_bind(s, p, true)) < 0)
                        return r;
        }
        return 0;
}

#define PROTECT_GIT_MAX_DIRS 64
#define PROTECT_GIT_MAX_DEPTH 8

/* The git directories below dir (rel): .git/modules/NAME (NAME may hold
 * '/', and each may have modules/ of its own) and .git/worktrees/NAME. */
static int protect_gitdirs_below(CageSpec *s, int project_fd, const char *rel, unsigned depth, unsigned *n) {
        int fd = path_open_nofollow(project_fd, rel, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_XDEV);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return 0;
        }
        int r = 0;
        struct dirent *de;
        while (r >= 0 && *n < PROTECT_GIT_MAX_DIRS && (de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *p = strdup_printf("%s/%s", rel, de->d_name), *head = strdup_printf("%s/%s/HEAD", rel, de->d_name),
                                    *modules = strdup_printf("%s/%s/modules", rel, de->d_name);
                if (!p || !head || !modules) {
                        r = -ENOMEM;
                        break;
                }
                if (protect_git_type(project_fd, p, NULL) != S_IFDIR)
                        continue;
                if (protect_git_type(project_fd, head, NULL) == 0) {
                        if (depth < PROTECT_GIT_MAX_DEPTH)
                                r = protect_gitdirs_below(s, project_fd, p, depth + 1, n);
                        continue;
                }
                (*n)++;
                if ((r = protect_gitdir(s, project_fd, p)) >= 0 && depth < PROTECT_GIT_MAX_DEPTH)
                        r = protect_gitdirs_below(s, project_fd, modules, depth + 1, n);
        }
        closedir(d);
        return r;
}

int cage_spec_protect_git(CageSpec *s, int project_fd) {
        if (!s->protect_git)
                return 0;
        mode_t type = protect_git_type(project_fd, ".git", NULL);
        if (type == S_IFREG)
                return protect_git_bind(s, ".git", true); /* a gitfile: where the repository is */
        if (type != S_IFDIR)
                return 0;
        unsigned n = 0;
        int r = protect_gitdir(s, project_fd, ".git");
        if (r >= 0)
                r = protect_gitdirs_below(s, project_fd, ".git/modules", 0, &n);
        if (r >= 0)
                r = protect_gitdirs_below(s, project_fd, ".git/worktrees", PROTECT_GIT_MAX_DEPTH, &n);
        return r;
}

int cage_spec_set_closure(CageSpec *s, char *const *paths, CageError *err) {
        _cleanup_strv_free_ char **l = NULL;
        if (!paths || !paths[0])
                return cage_error_set(err, -ENODATA, "closure: empty");
        /* Sorted, then repeats dropped: linear after the sort, for closures
         * of thousands of paths. */
        size_t n = strv_length(paths), k = 0;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (!store_path_is_valid(paths[i]))
                        return cage_error_set(err, -EINVAL, "closure: %s", paths[i]);
                if (!(l[i] = strdup(paths[i])))
                        return -ENOMEM;
        }
        strv_sort(l);
        for (size_t i = 0; i < n; i++) {
                if (k > 0 && streq(l[k - 1], l[i]))
                        free(l[i]);
                else
                        l[k++] = l[i];
                if (i >= k)
                        l[i] = NULL;
        }
        char *top = strdup(paths[0]);
        if (!top)
                return -ENOMEM;
        free(s->toplevel);
        s->toplevel = top;
        strv_free(s->store_paths);
        s->store_paths = TAKE_PTR(l);
        return 0;
}

int cage_spec_add_ca_files(CageSpec *s, const char *dir) {
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, alphasort);
        if (n < 0)
                return errno == ENOENT ? 0 : -errno;
        int r = 0;
        for (int i = 0; i < n; i++) {
                const char *e = list[i]->d_name;
                size_t l = strlen(e);
                if (r >= 0 && e[0] != '.' && l > 4 && (streq(e + l - 4, ".crt") || streq(e + l - 4, ".pem"))) {
                        _cleanup_free_ char *path = strdup_printf("%s/%s", dir, e);
                        struct stat st;
                        if (!path)
                                r = -ENOMEM;
                        else if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
                                r = strv_push(&s->ca_files, TAKE_PTR(path));
                }
                free(list[i]);
        }
        free(list);
        return r;
}
