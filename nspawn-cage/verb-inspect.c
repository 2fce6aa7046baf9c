/* verb-inspect.c: the verbs that show without starting anything:
 * `config` (the effective settings and their origins), `render` (a cage's
 * plan as files) and `presets`. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>

#include "idmap.h"
#include "plan.h"
#include "staging.h"
#include "verbs.h"

int verb_config(const Args *a) {
        _cleanup_(cage_done) Cage cage = CAGE_NULL;
        _cleanup_(cage_error_done) CageError err = {};
        if (cage_load(&cage, &a->load, &err) < 0)
                return cage_error_print(&err);
        StrBuf b = {};
        const Config *c = cage.config;
        if (a->json) {
                strbuf_append(&b, "{\"project\":");
                strbuf_append_json(&b, cage.spec->project);
                strbuf_append(&b, ",\"name\":");
                strbuf_append_json(&b, cage.spec->name);
                strbuf_append(&b, ",\"settings\":[");
        }
        bool first = true;
        _cleanup_free_ char *preset_origin = strdup_printf("preset:%s", cage.spec->preset);
        if (!preset_origin)
                return verb_fail("out of memory");
        for (int id = 0; id < _SETTING_MAX; id++) {
                const Setting *s = &c->settings[id];
                if (setting_is_declared_only(id) && !s->set)
                        continue;
                /* What the preset supplies is part of the effective settings too. */
                if ((id == SETTING_COMMAND && !s->set) || id == SETTING_PACKAGES || id == SETTING_STATE_DIRECTORY || id == SETTING_STATE_FILE) {
                        char *const one[] = { cage.preset.command ? cage.preset.command : "bash -l", NULL };
                        char *const *l = id == SETTING_COMMAND ? one : id == SETTING_PACKAGES ? cage.preset.packages
                                       : id == SETTING_STATE_DIRECTORY ? cage.preset.state_dirs : cage.preset.state_files;
                        const char *o = id == SETTING_COMMAND && !cage.preset.command ? "builtin" : preset_origin;
                        for (size_t i = 0; l && l[i]; i++) {
                                if (a->json) {
                                        strbuf_append(&b, first ? "\n  {\"key\":" : ",\n  {\"key\":");
                                        strbuf_append_json(&b, setting_to_string(id));
                                        strbuf_append(&b, ",\"value\":");
                                        strbuf_append_json(&b, l[i]);
                                        strbuf_append(&b, ",\"layer\":");
                                        strbuf_append_json(&b, o);
                                        strbuf_append(&b, "}");
                                } else
                                        strbuf_appendf(&b, "%s\t%s=%s\n", o, setting_to_string(id), l[i]);
                                first = false;
                        }
                        if (id == SETTING_COMMAND || (s->n_items == 0 && l && l[0]))
                                continue;
                }
                size_t n = setting_is_list(id) ? s->n_items : 1;
                for (size_t i = 0; i < n || (i == 0 && n == 0); i++) {
                        const Origin *o = n == 0 || !setting_is_list(id) ? &s->origin : &s->items[i].origin;
                        _cleanup_free_ char *v = n == 0 ? strdup("") : setting_is_list(id) ? strdup(s->items[i].value) : setting_format_value(c, id);
                        _cleanup_free_ char *origin = origin_to_string(o);
                        if (!v || !origin) {
                                strbuf_done(&b);
                                return verb_fail("out of memory");
                        }
                        if (a->json) {
                                strbuf_append(&b, first ? "\n  {\"key\":" : ",\n  {\"key\":");
                                strbuf_append_json(&b, setting_to_string(id));
                                strbuf_append(&b, ",\"value\":");
                                strbuf_append_json(&b, v);
                                strbuf_append(&b, ",\"layer\":");
                                strbuf_append_json(&b, layer_to_string(o->layer));
                                if (o->file) {
                                        strbuf_append(&b, ",\"file\":");
                                        strbuf_append_json(&b, o->file);
                                        strbuf_appendf(&b, ",\"line\":%u", o->line);
                                }
                                strbuf_append(&b, "}");
                        } else
                                strbuf_appendf(&b, "%s\t%s=%s\n", origin, setting_to_string(id), v);
                        first = false;
                }
        }
        if (a->json)
                strbuf_append(&b, "\n]}\n");
        _cleanup_free_ char *text = NULL;
        if (strbuf_steal(&b, &text) < 0)
                return verb_fail("out of memory");
        fputs(text, stdout);
        return 0;
}

/* The plan of a cage, written as NAME.nspawn and NAME.rootfs into --output
 * as the user, without starting anything: what `run` would write. */
static int render_plan(Cage *cage, const Args *a, CagePlan *plan, CageError *err) {
        CageSpec *s = cage->spec;
        PlanOptions po = { .closure_file = a->closure, .data_dir = load_data_dir(&a->load) };
        int r = plan_closure(cage, &po, &plan->closure, err);
        if (r < 0 || (r = cage_spec_set_closure(s, plan->closure, err)) < 0 || (r = plan_protect_git(cage, err)) < 0)
                return r;
        if (s->persist) {
                char home[PATH_MAX];
                _cleanup_free_ char *sdir = state_dir_path(realpath(s->user.home, home) ? home : s->user.home, s->preset);
                if (!sdir || cage_spec_add_state_binds(s, sdir) < 0)
                        return cage_error_set(err, -ENOMEM, "out of memory");
        }
        /* The range a start would try first; it takes another if that one is taken. */
        if ((r = staging_set_paths(s, idmap_preferred_base(s->name), err)) < 0)
                return r;
        return cage_plan_render(cage, plan, err);
}

static int write_output(int dfd, const char *dir, const char *name, const char *text, CageError *err) {
        int r = write_file_atomic_at(dfd, name, text, 0644);
        return r < 0 ? cage_error_set(err, r, "%s/%s: %s", dir, name, strerror(-r)) : 0;
}

int verb_render(const Args *a) {
        _cleanup_(cage_done) Cage cage = CAGE_NULL;
        _cleanup_(cage_plan_done) CagePlan plan = {};
        _cleanup_(cage_error_done) CageError err = {};
        if (cage_load(&cage, &a->load, &err) < 0 || render_plan(&cage, a, &plan, &err) < 0)
                return cage_error_print(&err);
        const char *dir = a->output ? a->output : ".";
        FsIdentity id;
        int r = user_fs_enter(&cage.user, &id);
        if (r < 0)
                return verb_fail("cannot take the file system identity of %s: %s", cage.user.name, strerror(-r));
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *n1 = strdup_printf("%s.nspawn", cage.spec->name);
        _cleanup_free_ char *n2 = strdup_printf("%s.rootfs", cage.spec->name);
        r = dfd < 0 ? cage_error_set(&err, -errno, "--output %s: %s", dir, strerror(errno))
            : !n1 || !n2 ? cage_error_set(&err, -ENOMEM, "out of memory")
                         : write_output(dfd, dir, n1, plan.settings, &err) ?: write_output(dfd, dir, n2, plan.listing, &err);
        user_fs_leave(&id);
        if (r < 0)
                return cage_error_print(&err);
        printf("%s/%s\n%s/%s\n", dir, n1, dir, n2);
        return 0;
}

/* The presets a user can pick with Preset=: their own first, then the
 * shipped ones (a user preset of the same name wins, as in load_preset). */
int verb_presets(const Args *a) {
        _cleanup_(host_user_done) HostUser user = {};
        _cleanup_(cage_error_done) CageError err = {};
        if (invoking_user(a->load.sudo_uid, &user, &err) < 0)
                return cage_error_print(&err);
        _cleanup_free_ char *user_dir = strdup_printf("%s/.config/nspawn-cage/presets", user.home);
        _cleanup_free_ char *sys_dir = strdup_printf("%s/templates/presets", load_data_dir(&a->load));
        if (!user_dir || !sys_dir)
                return 1;
        const char *dirs[] = { user_dir, sys_dir };
        _cleanup_strv_free_ char **seen = NULL;
        printf("%-14s %-8s %-10s %-12s %-28s %s\n", "PRESET", "FROM", "NETWORK", "COMMAND", "NEEDS", "STATE");
        for (size_t d = 0; d < ELEMENTSOF(dirs); d++) {
                FsIdentity id;
                if (user_fs_enter(&user, &id) < 0)
                        return 1;
                struct dirent **list = NULL;
                int n = scandir(dirs[d], &list, NULL, alphasort);
                for (int i = 0; i < n; i++) {
                        const char *e = list[i]->d_name;
                        size_t l = strlen(e);
                        _cleanup_free_ char *name = l > 5 && streq(e + l - 5, ".conf") ? strndup(e, l - 5) : NULL;
                        _cleanup_free_ char *path = strdup_printf("%s/%s", dirs[d], e);
                        _cleanup_close_ int fd = name && path && !strv_contains(seen, name) ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
                        _cleanup_free_ char *data = NULL;
                        size_t size;
                        Preset p = {};
                        CageError perr = {};
                        if (fd >= 0 && config_read_fd(fd, &data, &size) >= 0 && preset_parse(path, data, size, &p, &perr) >= 0) {
                                _cleanup_free_ char *needs = NULL, *state = NULL;
                                StrBuf b = {}, st = {};
                                for (size_t k = 0; p.wants_pass && p.wants_pass[k]; k++)
                                        strbuf_appendf(&b, "%s%s", k ? " " : "", p.wants_pass[k]);
                                /* What persists: ~/DIR/ for a bound directory, ~/FILE for a copied file. */
                                for (size_t k = 0; p.state_dirs && p.state_dirs[k]; k++)
                                        strbuf_appendf(&st, "%s~/%s/", st.len ? " " : "", p.state_dirs[k]);
                                for (size_t k = 0; p.state_files && p.state_files[k]; k++)
                                        strbuf_appendf(&st, "%s~/%s", st.len ? " " : "", p.state_files[k]);
                                int r1 = strbuf_steal(&b, &needs), r2 = strbuf_steal(&st, &state);
                                if (r1 >= 0 && r2 >= 0)
                                        printf("%-14s %-8s %-10s %-12s %-28s %s\n", name, d == 0 ? "user" : "shipped",
                                               network_mode_to_string(p.wants_network), p.command ? p.command : "bash -l",
                                               isempty(needs) ? "-" : needs, isempty(state) ? "-" : state);
                                (void) strv_extend(&seen, name);
                        } else if (fd >= 0)
                                fprintf(stderr, "nspawn-cage: %s:%u: %s\n", path, perr.line, perr.message ? perr.message : "cannot be read");
                        preset_done(&p);
                        cage_error_done(&perr);
                        free(list[i]);
                }
                free(list);
                user_fs_leave(&id);
        }
        return 0;
}

