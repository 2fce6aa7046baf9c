/* verb-cage.c: the verbs that act on one running cage: `shell`, `stop`,
 * `set` and `status`. */
#include "autoconfig.h"

#include <inttypes.h>
#include <time.h>

#include "bus.h"
#include "cgroup.h"
#include "egress.h"
#include "envfile.h"
#include "launch.h"
#include "teardown.h"
#include "verbs.h"

int verb_shell(const Args *a) {
        _cleanup_(host_done) Host h = HOST_NULL;
        _cleanup_(cage_record_done) CageRecord rec = {};
        _cleanup_(cage_error_done) CageError err = {};
        if (open_cage(&h, a, &rec, &err) < 0)
                return cage_error_print(&err);
        if (!cage_running(&h, &rec))
                return verb_fail("cage %s is not running; start it with 'nspawn-cage --keep %s'", rec.name, rec.project);
        CageSpec s = { .name = rec.name, .project = rec.project, .toplevel = rec.toplevel };
        _cleanup_(host_user_done) HostUser owner = {};
        if (host_user_from_uid(rec.uid, &owner) < 0)
                return verb_fail("the cage's user (uid %u) no longer exists", (unsigned) rec.uid);
        s.user = owner;
        _cleanup_(strv_free_erasep) char **kept = NULL;
        int r = state_load_environment(ENVIRONMENT_DIR, rec.name, &kept);
        if (r < 0) {
                cage_notice("%s/%s: %s", ENVIRONMENT_DIR, rec.name, r == -EPERM ? "not root's or readable by others; ignored" : strerror(-r));
                kept = NULL;
        }
        char *shell[] = { "bash", "-l", NULL };
        int st = cage_attach(&h, &s, a->command ? a->command : shell, kept, host_env_get(&a->env, "TERM"), &err);
        return st < 0 ? cage_error_print(&err) : st;
}

int verb_stop(const Args *a) {
        _cleanup_(host_done) Host h = HOST_NULL;
        _cleanup_(cage_record_done) CageRecord rec = {};
        _cleanup_(cage_error_done) CageError err = {};
        if (open_cage(&h, a, &rec, &err) < 0 || cage_teardown(&h, rec.name, &err) < 0)
                return cage_error_print(&err);
        return 0;
}

static const struct {
        const char *key;
        unsigned mask;
        SettingId max;
} set_keys[] = {
        { "Memory", LIMIT_MEMORY, SETTING_MAX_MEMORY },
        { "Swap", LIMIT_SWAP, SETTING_MAX_SWAP },
        { "CPUs", LIMIT_CPUS, SETTING_MAX_CPUS },
        { "Tasks", LIMIT_TASKS, SETTING_MAX_TASKS },
};

/* One KEY=VALUE of `set`, bounded by the administrator's [Policy]. */
static int set_parse(const Config *policy, const char *name, const char *as, uint64_t v[static 4], unsigned *mask, CageError *err) {
        const char *eq = strchr(as, '=');
        size_t k = 0;
        while (k < ELEMENTSOF(set_keys) && !(eq && strlen(set_keys[k].key) == (size_t) (eq - as) &&
                                             strncmp(as, set_keys[k].key, (size_t) (eq - as)) == 0))
                k++;
        if (k == ELEMENTSOF(set_keys))
                return cage_error_set(err, -EINVAL, "set %s: '%s': expected Memory=, Swap=, CPUs= or Tasks=", name, as);
        int r = k == 2 ? parse_cpus(eq + 1, &v[k]) : k == 3 ? parse_count(eq + 1, &v[k]) : parse_size(eq + 1, &v[k]);
        if (r < 0)
                return cage_error_set(err, r, "set %s: %s: not a valid value (see nspawn-cage.conf(5))", name, as);
        if (k == 0 && v[k] < (UINT64_C(16) << 20))
                return cage_error_set(err, -ERANGE, "set %s: Memory=%s is too small; a cage needs at least 16M", name, eq + 1);
        const Setting *mx = &policy->settings[set_keys[k].max];
        if (v[k] > mx->number) {
                _cleanup_free_ char *lim = setting_format_value(policy, set_keys[k].max);
                return cage_error_set(err, -EPERM, "set %s: %s asks for more than allowed: the administrator's maximum is %s=%s (%s:%u)", name, as,
                                      setting_key(set_keys[k].max), strempty(lim), strempty(mx->origin.file), mx->origin.line);
        }
        *mask |= set_keys[k].mask;
        return 0;
}

/* Change the limits of a running cage, bounded by the administrator's
 * [Policy] like any configuration. Runtime only: a restart uses the files. */
int verb_set(const Args *a) {
        _cleanup_(host_done) Host h = HOST_NULL;
        _cleanup_(config_freep) Config *policy = NULL;
        _cleanup_(cage_record_done) CageRecord rec = {};
        _cleanup_(cage_error_done) CageError err = {};
        if (open_cage(&h, a, &rec, &err) < 0)
                return cage_error_print(&err);
        if (config_new(&policy) < 0 || load_admin_layer(policy, load_admin_dir(&a->load), &err) < 0)
                return cage_error_print(&err);
        uint64_t v[4] = {};
        unsigned mask = 0;
        for (size_t i = 0; a->assignments && a->assignments[i]; i++)
                if (set_parse(policy, rec.name, a->assignments[i], v, &mask, &err) < 0)
                        return cage_error_print(&err);
        if (!mask)
                return verb_fail("set %s: give at least one of Memory=, Swap=, CPUs=, Tasks=", rec.name);
        int r = bus_set_limits(h.bus, rec.unit, mask, v[0], v[1], v[2], v[3], &err);
        if (r < 0)
                return cage_error_wrap(&err, r, "set %s", rec.name), cage_error_print(&err);
        return 0;
}

static void format_usage(StrBuf *b, const char *label, uint64_t cur, uint64_t max, bool bytes) {
        char c[32], m[32];
        if (bytes) {
                if (cur == UINT64_MAX)
                        snprintf(c, sizeof c, "-");
                else
                        snprintf(c, sizeof c, "%.1fM", (double) cur / (1024.0 * 1024.0));
                format_size(max, m);
        } else {
                snprintf(c, sizeof c, cur == UINT64_MAX ? "-" : "%" PRIu64, cur);
                if (max == UINT64_MAX)
                        snprintf(m, sizeof m, "infinity");
                else
                        snprintf(m, sizeof m, "%" PRIu64, max);
        }
        strbuf_appendf(b, "%12s: %s of %s\n", label, c, m);
}

static void json_number(StrBuf *b, const char *key, uint64_t v) {
        if (v == UINT64_MAX)
                strbuf_appendf(b, ",\"%s\":null", key);
        else
                strbuf_appendf(b, ",\"%s\":%" PRIu64, key, v);
}

static void status_json(StrBuf *b, const CageRecord *rec, const char *state, uint64_t uptime, const UnitUsage *u, uint64_t ooms) {
        const char *const keys[] = { "name", "state", "project", "user", "unit", "toplevel" };
        const char *const values[] = { rec->name, state, rec->project, rec->user, rec->unit, rec->toplevel };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                strbuf_appendf(b, "%s\"%s\":", i ? "," : "{", keys[i]);
                strbuf_append_json(b, values[i]);
        }
        strbuf_appendf(b, ",\"store_paths\":%u,\"uptime_sec\":%" PRIu64, rec->n_store_paths, uptime);
        json_number(b, "memory_current", u->memory_current);
        json_number(b, "memory_max", u->memory_max);
        json_number(b, "cpu_usage_nsec", u->cpu_usage_nsec);
        json_number(b, "cpu_quota_per_sec_usec", u->cpu_quota_per_sec_usec);
        json_number(b, "tasks_current", u->tasks_current);
        json_number(b, "tasks_max", u->tasks_max);
        json_number(b, "oom_kills", ooms);
        strbuf_append(b, "}\n");
}

static void status_text(StrBuf *b, const CageRecord *rec, const char *state, bool up, uint64_t uptime, const UnitUsage *u, uint64_t ooms) {
        strbuf_appendf(b, "%s (%s)\n", rec->name, state);
        strbuf_appendf(b, "%12s: %s\n%12s: %s (uid %u)\n%12s: %s\n", "project", rec->project, "user", rec->user, (unsigned) rec->uid, "unit",
                       rec->unit);
        if (up)
                strbuf_appendf(b, "%12s: %" PRIu64 " s\n", "uptime", uptime);
        format_usage(b, "memory", u->memory_current, u->memory_max, true);
        strbuf_appendf(b, "%12s: %.2f s", "cpu time", u->cpu_usage_nsec == UINT64_MAX ? 0.0 : (double) u->cpu_usage_nsec / 1e9);
        if (u->cpu_quota_per_sec_usec != UINT64_MAX)
                strbuf_appendf(b, " (quota %.2f CPUs)", (double) u->cpu_quota_per_sec_usec / 1e6);
        strbuf_append(b, "\n");
        format_usage(b, "tasks", u->tasks_current, u->tasks_max, false);
        if (ooms != UINT64_MAX)
                strbuf_appendf(b, "%12s: %" PRIu64 "\n", "oom kills", ooms);
        else
                strbuf_appendf(b, "%12s: unknown\n", "oom kills");
        strbuf_appendf(b, "%12s: %u under %s\n", "store paths", rec->n_store_paths, strempty(rec->toplevel));
}

int verb_status(const Args *a) {
        _cleanup_(host_done) Host h = HOST_NULL;
        _cleanup_(cage_record_done) CageRecord rec = {};
        _cleanup_(cage_error_done) CageError err = {};
        if (open_cage(&h, a, &rec, &err) < 0)
                return cage_error_print(&err);
        _cleanup_free_ char *state = NULL;
        if (bus_unit_active_state(h.bus, rec.unit, &state) < 0)
                state = strdup("inactive");
        bool running = cage_running(&h, &rec);
        UnitUsage u = {};
        if (bus_unit_usage(h.bus, rec.unit, &u) < 0) {
                memset(&u, 0xff, sizeof u);
                u.control_group = NULL;
        }
        _cleanup_free_ char *cg = u.control_group;
        uint64_t ooms = UINT64_MAX;
        if (cg && cgroup_oom_kills("/", cg, &ooms) < 0)
                ooms = UINT64_MAX;
        uint64_t now = (uint64_t) time(NULL);
        uint64_t since = u.active_enter_usec == UINT64_MAX || !running ? 0 : u.active_enter_usec / 1000000;
        const char *shown = running ? "running" : strempty(state);
        _cleanup_(strbuf_done) StrBuf b = {};
        if (a->json)
                status_json(&b, &rec, shown, since ? now - since : 0, &u, ooms);
        else
                status_text(&b, &rec, shown, since != 0, since ? now - since : 0, &u, ooms);
        /* What its egress proxy refused since it started (egress.h). */
        EgressDenial *d = NULL;
        size_t n = 0;
        if (egress_denials_read(rec.name, since ? since * 1000000 : u.active_enter_usec == UINT64_MAX ? 0 : u.active_enter_usec, &d, &n) < 0)
                n = 0;
        egress_denials_free(d, n);
        if (a->json && b.len >= 2 && streq(b.s + b.len - 2, "}\n")) {
                b.len -= 2;
                b.s[b.len] = 0;
                strbuf_appendf(&b, ",\"refused\":%zu}\n", n);
        } else if (!a->json)
                strbuf_appendf(&b, "%12s: %zu ('nspawn-cage denials %s')\n", "refused", n, rec.name);
        _cleanup_free_ char *text = NULL;
        if (strbuf_steal(&b, &text) < 0)
                return 1;
        fputs(text, stdout);
        return 0;
}
