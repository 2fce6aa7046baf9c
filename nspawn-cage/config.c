/* config.c: the INI table (which keys exist, which layer may set them, how
 * each value is validated) and the merge of the three layers. A later layer
 * may only narrow: the project layer is written by the caged agent, so every
 * value it sets is checked against what the trusted layers left in force. */

#include "autoconfig.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ini.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "config.h"
#include "hostenv.h"

typedef enum ValueType {
        V_PRESET,
        V_COMMAND,
        V_PACKAGES,
        V_NIXPKGS,
        V_NAME,
        V_CPUS,
        V_SIZE,
        V_COUNT,
        V_MODE,
        V_BOOL,
        V_BIND,
        V_ENV_NAMES,
        V_ENV_ASSIGN,
        V_STATE_PATHS,
        V_USERS,
        V_MODES,
        V_PROJECT,
        V_USER,
        V_TOPLEVEL,
        V_ALLOW,
        V_PUBLISH,
        V_HOST_SERVICE,
        V_FILE,
        V_CONTAINERS,
} ValueType;

#define L_ADMIN (1u << LAYER_ADMIN)
#define L_USER (1u << LAYER_USER)
#define L_PROJECT (1u << LAYER_PROJECT)
#define L_TRUSTED (L_ADMIN | L_USER)
#define L_ALL (L_TRUSTED | L_PROJECT)
#define L_DECLARED (1u << _LAYER_MAX) /* a declared cage's file only */
#define L_USER_ONLY (L_USER | L_DECLARED) /* the user's own (or the admin's for one declared cage) */
#define L_USER_OFF (L_USER | L_PROJECT)   /* the user's; the project may only turn it off */

typedef struct SettingInfo {
        const char *section;
        const char *key;
        ValueType type;
        unsigned layers;
        SettingId policy; /* the [Policy] key that bounds it, if any */
} SettingInfo;

static const SettingInfo setting_table[_SETTING_MAX] = {
        /* Which agent runs, with which of the user's saved states: a choice
         * of trust context, never the project's (the agent writes it). */
        [SETTING_PRESET] = { "Cage", "Preset", V_PRESET, L_TRUSTED, _SETTING_INVALID },
        [SETTING_COMMAND] = { "Cage", "Command", V_COMMAND, L_TRUSTED, _SETTING_INVALID },
        [SETTING_PACKAGES] = { "Cage", "Packages", V_PACKAGES, L_ALL, _SETTING_INVALID },
        /* Root evaluates and builds the set it names: the administrator's alone. */
        [SETTING_NIXPKGS] = { "Cage", "Nixpkgs", V_NIXPKGS, L_ADMIN, _SETTING_INVALID },
        [SETTING_NAME] = { "Cage", "Name", V_NAME, L_TRUSTED, _SETTING_INVALID },
        [SETTING_CPUS] = { "Limits", "CPUs", V_CPUS, L_ALL, SETTING_MAX_CPUS },
        [SETTING_MEMORY] = { "Limits", "Memory", V_SIZE, L_ALL, SETTING_MAX_MEMORY },
        [SETTING_SWAP] = { "Limits", "Swap", V_SIZE, L_ALL, SETTING_MAX_SWAP },
        [SETTING_TASKS] = { "Limits", "Tasks", V_COUNT, L_ALL, SETTING_MAX_TASKS },
        [SETTING_NETWORK_MODE] = { "Network", "Mode", V_MODE, L_ALL, SETTING_ALLOW_NETWORK },
        [SETTING_ALLOW] = { "Network", "Allow", V_ALLOW, L_ALL, SETTING_ALLOW_EGRESS },
        /* Openings between the cage and the host: the user's or the administrator's, never the project's. */
        [SETTING_PUBLISH] = { "Network", "Publish", V_PUBLISH, L_TRUSTED, SETTING_ALLOW_PUBLISH },
        [SETTING_HOST_SERVICE] = { "Network", "HostService", V_HOST_SERVICE, L_TRUSTED, SETTING_ALLOW_HOST_SERVICES },
        [SETTING_X11] = { "Display", "X11", V_BOOL, L_ALL, SETTING_ALLOW_DISPLAY },
        [SETTING_WAYLAND] = { "Display", "Wayland", V_BOOL, L_ALL, SETTING_ALLOW_DISPLAY },
        [SETTING_GPU] = { "Display", "GPU", V_BOOL, L_ALL, SETTING_ALLOW_GPU },
        [SETTING_X11_TRUSTED] = { "Display", "X11Trusted", V_BOOL, L_ALL, SETTING_ALLOW_X11_TRUSTED },
        [SETTING_BIND] = { "Files", "Bind", V_BIND, L_TRUSTED, SETTING_ALLOW_BINDS },
        [SETTING_BIND_READ_ONLY] = { "Files", "BindReadOnly", V_BIND, L_TRUSTED, SETTING_ALLOW_BINDS },
        [SETTING_PROTECT_GIT] = { "Files", "ProtectGit", V_BOOL, L_ALL, _SETTING_INVALID },
        [SETTING_PASS] = { "Environment", "Pass", V_ENV_NAMES, L_ALL, _SETTING_INVALID },
        [SETTING_SET] = { "Environment", "Set", V_ENV_ASSIGN, L_ALL, _SETTING_INVALID },
        /* What the agent keeps across cages lies in the user's home: only
         * trusted layers (and presets) name it; the project may only opt out. */
        [SETTING_STATE_DIRECTORY] = { "State", "Directory", V_STATE_PATHS, L_TRUSTED, _SETTING_INVALID },
        [SETTING_STATE_FILE] = { "State", "File", V_STATE_PATHS, L_TRUSTED, _SETTING_INVALID },
        [SETTING_PERSIST] = { "State", "Persist", V_BOOL, L_ALL, _SETTING_INVALID },
        [SETTING_ENV_FILE] = { "Environment", "File", V_FILE, L_USER_ONLY, _SETTING_INVALID },
        [SETTING_SSH_AGENT] = { "Forward", "SSHAgent", V_BOOL, L_USER_OFF, _SETTING_INVALID },
        [SETTING_GIT_CONFIG] = { "Forward", "GitConfig", V_BOOL, L_USER_OFF, _SETTING_INVALID },
        [SETTING_ALLOW_USERS] = { "Policy", "AllowUsers", V_USERS, L_ADMIN, _SETTING_INVALID },
        [SETTING_MAX_CPUS] = { "Policy", "MaxCPUs", V_CPUS, L_ADMIN, _SETTING_INVALID },
        [SETTING_MAX_MEMORY] = { "Policy", "MaxMemory", V_SIZE, L_ADMIN, _SETTING_INVALID },
        [SETTING_MAX_SWAP] = { "Policy", "MaxSwap", V_SIZE, L_ADMIN, _SETTING_INVALID },
        [SETTING_MAX_TASKS] = { "Policy", "MaxTasks", V_COUNT, L_ADMIN, _SETTING_INVALID },
        [SETTING_ALLOW_NETWORK] = { "Policy", "AllowNetwork", V_MODES, L_ADMIN, _SETTING_INVALID },
        [SETTING_ALLOW_DISPLAY] = { "Policy", "AllowDisplay", V_BOOL, L_ADMIN, _SETTING_INVALID },
        [SETTING_ALLOW_GPU] = { "Policy", "AllowGPU", V_BOOL, L_ADMIN, _SETTING_INVALID },
        [SETTING_ALLOW_X11_TRUSTED] = { "Policy", "AllowX11Trusted", V_BOOL, L_ADMIN, _SETTING_INVALID },
        [SETTING_ALLOW_BINDS] = { "Policy", "AllowBinds", V_BOOL, L_ADMIN, _SETTING_INVALID },
        [SETTING_ALLOW_EGRESS] = { "Policy", "AllowEgress", V_ALLOW, L_ADMIN, _SETTING_INVALID },
        /* Builders (issue 20): what the cage may build with, off by default,
         * from trusted layers only, and only if the administrator allows. */
        [SETTING_NIX_DAEMON] = { "Cage", "NixDaemon", V_BOOL, L_TRUSTED, SETTING_ALLOW_NIX_DAEMON },
        [SETTING_ALLOW_NIX_DAEMON] = { "Policy", "AllowNixDaemon", V_BOOL, L_ADMIN, _SETTING_INVALID },
        [SETTING_ALLOW_PUBLISH] = { "Policy", "AllowPublish", V_BOOL, L_ADMIN, _SETTING_INVALID },
        [SETTING_ALLOW_HOST_SERVICES] = { "Policy", "AllowHostServices", V_BOOL, L_ADMIN, _SETTING_INVALID },
        [SETTING_CONTAINERS] = { "Cage", "Containers", V_CONTAINERS, L_TRUSTED, SETTING_ALLOW_CONTAINERS },
        [SETTING_ALLOW_CONTAINERS] = { "Policy", "AllowContainers", V_BOOL, L_ADMIN, _SETTING_INVALID },
        [SETTING_PROJECT] = { "Cage", "Project", V_PROJECT, L_DECLARED, _SETTING_INVALID },
        [SETTING_USER] = { "Cage", "User", V_USER, L_DECLARED, _SETTING_INVALID },
        [SETTING_TOPLEVEL] = { "Cage", "Toplevel", V_TOPLEVEL, L_DECLARED, _SETTING_INVALID },
};

bool setting_is_declared_only(SettingId id) {
        return id >= 0 && id < _SETTING_MAX && setting_table[id].layers == L_DECLARED;
}

static const char *const layer_table[_LAYER_MAX] = {
        [LAYER_BUILTIN] = "builtin",
        [LAYER_ADMIN] = "admin",
        [LAYER_USER] = "user",
        [LAYER_PROJECT] = "project",
};

static const char *const network_mode_table[_NETWORK_MODE_MAX] = {
        [NETWORK_OFF] = "off",
        [NETWORK_PRIVATE] = "private",
        [NETWORK_HOST] = "host",
};

static int lookup(const char *const *table, int n, const char *s) {
        for (int i = 0; s && i < n; i++)
                if (table[i] && streq(table[i], s))
                        return i;
        return -EINVAL;
}

const char *layer_to_string(Layer l) { return l >= 0 && l < _LAYER_MAX ? layer_table[l] : NULL; }
Layer layer_from_string(const char *s) { return lookup(layer_table, _LAYER_MAX, s); }
static const char *const containers_table[_CONTAINERS_MAX] = {
        [CONTAINERS_NO] = "no",
        [CONTAINERS_PODMAN] = "podman",
};

const char *containers_to_string(Containers e) { return e >= 0 && e < _CONTAINERS_MAX ? containers_table[e] : NULL; }
Containers containers_from_string(const char *s) { return lookup(containers_table, _CONTAINERS_MAX, s); }
const char *network_mode_to_string(NetworkMode m) {
        return m >= 0 && m < _NETWORK_MODE_MAX ? network_mode_table[m] : NULL;
}
NetworkMode network_mode_from_string(const char *s) { return lookup(network_mode_table, _NETWORK_MODE_MAX, s); }

const char *setting_section(SettingId id) { return setting_table[id].section; }
const char *setting_key(SettingId id) { return setting_table[id].key; }

const char *setting_to_string(SettingId id) {
        static char names[_SETTING_MAX][48];
        if (id < 0 || id >= _SETTING_MAX)
                return NULL;
        if (!names[id][0])
                snprintf(names[id], sizeof names[id], "%s.%s", setting_table[id].section, setting_table[id].key);
        return names[id];
}

SettingId setting_from_string(const char *s) {
        for (int i = 0; s && i < _SETTING_MAX; i++)
                if (streq(setting_to_string(i), s))
                        return i;
        return _SETTING_INVALID;
}

bool setting_is_list(SettingId id) {
        switch (setting_table[id].type) {
        case V_PACKAGES: case V_BIND: case V_ENV_NAMES: case V_ENV_ASSIGN: case V_USERS: case V_MODES: case V_STATE_PATHS: case V_ALLOW:
        case V_PUBLISH: case V_HOST_SERVICE:
                return true;
        default:
                return false;
        }
}

/* ---- Config lifetime ---- */

static void items_free(Item *items, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(items[i].value);
        free(items);
}

static void setting_clear(Setting *s) {
        free(s->string);
        items_free(s->items, s->n_items);
        *s = (Setting) {};
}

static const Origin builtin_origin = { .layer = LAYER_BUILTIN };

static int item_add(Item **items, size_t *n, const char *value, Origin origin) {
        Item *t = realloc(*items, sizeof(Item) * (*n + 1));
        if (!t)
                return -ENOMEM;
        *items = t;
        if (!(t[*n].value = strdup(value)))
                return -ENOMEM;
        t[*n].origin = origin;
        (*n)++;
        return 0;
}

int config_new(Config **ret) {
        Config *c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        Setting *s = c->settings;
        /* Safe defaults: no network, no display, modest limits. */
        s[SETTING_PRESET].string = strdup("shell");
        s[SETTING_NIXPKGS].string = strdup(DEFAULT_NIXPKGS);
        s[SETTING_CPUS].number = 200;
        s[SETTING_MEMORY].number = UINT64_C(4) << 30;
        s[SETTING_SWAP].number = 0;
        s[SETTING_TASKS].number = 4096;
        s[SETTING_NETWORK_MODE].number = NETWORK_OFF;
        s[SETTING_X11].number = s[SETTING_WAYLAND].number = s[SETTING_GPU].number = s[SETTING_X11_TRUSTED].number = false;
        s[SETTING_PROTECT_GIT].number = true;
        s[SETTING_PERSIST].number = true;
        s[SETTING_MAX_CPUS].number = CPUS_INFINITY;
        s[SETTING_MAX_MEMORY].number = SIZE_INFINITY;
        s[SETTING_MAX_SWAP].number = SIZE_INFINITY;
        s[SETTING_MAX_TASKS].number = COUNT_INFINITY;
        s[SETTING_ALLOW_DISPLAY].number = s[SETTING_ALLOW_GPU].number = s[SETTING_ALLOW_BINDS].number = true;
        s[SETTING_ALLOW_PUBLISH].number = s[SETTING_ALLOW_HOST_SERVICES].number = true;
        s[SETTING_ALLOW_X11_TRUSTED].number = true;
        int r = 0;
        r = r ?: item_add(&s[SETTING_ALLOW_NETWORK].items, &s[SETTING_ALLOW_NETWORK].n_items, "off", builtin_origin);
        r = r ?: item_add(&s[SETTING_ALLOW_NETWORK].items, &s[SETTING_ALLOW_NETWORK].n_items, "private", builtin_origin);
        r = r ?: item_add(&s[SETTING_PASS].items, &s[SETTING_PASS].n_items, "TERM", builtin_origin);
        r = r ?: item_add(&s[SETTING_PASS].items, &s[SETTING_PASS].n_items, "COLORTERM", builtin_origin);
        r = r ?: item_add(&s[SETTING_PASS].items, &s[SETTING_PASS].n_items, "LANG", builtin_origin);
        if (r < 0 || !s[SETTING_PRESET].string || !s[SETTING_NIXPKGS].string) {
                config_free(c);
                return -ENOMEM;
        }
        for (int i = 0; i < _SETTING_MAX; i++)
                s[i].origin = builtin_origin;
        *ret = c;
        return 0;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (int i = 0; i < _SETTING_MAX; i++)
                setting_clear(&c->settings[i]);
        strv_free(c->files);
        items_free(c->trusted_pass, c->n_trusted_pass);
        items_free(c->trusted_allow, c->n_trusted_allow);
        free(c);
        return NULL;
}

/* ---- reading ---- */

int config_read_fd(int fd, char **ret_data, size_t *ret_size) {
        return read_regular_fd(fd, CONFIG_FILE_MAX, ret_data, ret_size);
}

/* ---- parsing ---- */

typedef struct ParseContext {
        Config *config;
        Layer layer;
        const char *file;
        unsigned *lines; /* line number of the k-th key line */
        size_t n_lines, next;
        unsigned seen[_SETTING_MAX];
        bool declared;
        CageError *err;
        int r;
} ParseContext;

_printf_(3, 4) static int fail(ParseContext *ctx, unsigned line, const char *fmt, ...) {
        if (ctx->r < 0)
                return ctx->r; /* keep the first error */
        va_list ap;
        va_start(ap, fmt);
        char *m = NULL;
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        cage_error_done(ctx->err);
        ctx->err->file = strdup(ctx->file);
        ctx->err->line = line;
        ctx->err->message = m;
        ctx->err->r = ctx->r = -EINVAL;
        return ctx->r;
}

/* Refuse what inih would silently reinterpret, so that each key line of the
 * file becomes exactly one handler call with its full value. */
static int prescan(ParseContext *ctx, const char *data, size_t size) {
        if (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
                return fail(ctx, 1, "file starts with a byte order mark; save it as plain UTF-8 without BOM");
        if (memchr(data, 0, size))
                return fail(ctx, 0, "file contains a NUL byte; this is not a text configuration file");
        unsigned line = 0;
        const char *p = data, *end = data + size;
        while (p < end) {
                line++;
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                if (n > CONFIG_LINE_MAX)
                        return fail(ctx, line,
                                    "line is %zu characters long; at most %d are allowed (split lists over several Key= lines)",
                                    n, CONFIG_LINE_MAX);
                for (size_t i = 0; i < n; i++) {
                        unsigned char ch = (unsigned char) p[i];
                        if (ch == '\r')
                                return fail(ctx, line, "carriage return found; save the file with Unix (LF) line endings");
                        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                                return fail(ctx, line, "control character 0x%02x found; remove it", ch);
                }
                const char *s = p;
                while (s < p + n && (*s == ' ' || *s == '\t'))
                        s++;
                if (s == p + n || *s == '#' || *s == ';') {
                        if (s != p && s != p + n)
                                return fail(ctx, line, "indented comment; start comments in the first column");
                } else if (s != p)
                        return fail(ctx, line, "indented line; continuation lines are not supported, put each Key=Value on its own line starting in the first column");
                else if (*s == '[') {
                        size_t k = 1;
                        while (k < n && isalpha((unsigned char) s[k]))
                                k++;
                        if (k == 1 || k >= n || s[k] != ']')
                                return fail(ctx, line, "malformed section header; expected [Section]");
                        for (k++; k < n; k++)
                                if (s[k] != ' ' && s[k] != '\t')
                                        return fail(ctx, line, "text after section header; put nothing after ']'");
                } else {
                        size_t eq = 0;
                        while (eq < n && s[eq] != '=')
                                eq++;
                        if (eq == n)
                                return fail(ctx, line, "expected Key=Value");
                        for (size_t k = 0; k < eq; k++)
                                if (!isalnum((unsigned char) s[k]) && s[k] != ' ' && s[k] != '\t')
                                        return fail(ctx, line, "invalid key name; expected Key=Value with a key made of letters and digits");
                        for (size_t k = eq; k + 1 < n; k++)
                                if ((s[k] == ' ' || s[k] == '\t') && s[k + 1] == ';')
                                        return fail(ctx, line, "';' after white space would start a comment and cut the value; remove the space before ';'");
                        unsigned *t = realloc(ctx->lines, sizeof(unsigned) * (ctx->n_lines + 1));
                        if (!t)
                                return -ENOMEM;
                        ctx->lines = t;
                        ctx->lines[ctx->n_lines++] = line;
                }
                p += n + 1;
        }
        return 0;
}

static bool mode_allowed(const Config *c, const char *mode) {
        const Setting *a = &c->settings[SETTING_ALLOW_NETWORK];
        for (size_t i = 0; i < a->n_items; i++)
                if (streq(a->items[i].value, mode))
                        return true;
        return false;
}

static int split_words(ParseContext *ctx, unsigned line, const char *key, const char *value,
                       bool (*valid)(const char *), const char *what, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        const char *p = value;
        while (*p) {
                size_t n = strcspn(p, " \t");
                if (n > 0) {
                        _cleanup_free_ char *w = strndup(p, n);
                        if (!w)
                                return -ENOMEM;
                        if (!valid(w))
                                return fail(ctx, line, "%s=: '%s' is not a valid %s", key, w, what);
                        if (strv_push(&l, TAKE_PTR(w)) < 0)
                                return -ENOMEM;
                }
                p += n;
                p += strspn(p, " \t");
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static bool mode_is_valid(const char *s) { return network_mode_from_string(s) >= 0; }
static bool user_or_star_is_valid(const char *s) { return streq(s, "*") || user_name_is_valid(s); }

static char *origin_short(const Origin *o) {
        if (o->layer == LAYER_BUILTIN)
                return strdup("the built-in default");
        return strdup_printf("%s:%u", o->file, o->line);
}

/* Store one list value, honouring "Key=" (empty) as reset. */
static int list_assign(Setting *s, char **words, Origin origin, bool reset) {
        if (reset) {
                items_free(s->items, s->n_items);
                s->items = NULL;
                s->n_items = 0;
        }
        for (size_t i = 0; words && words[i]; i++)
                if (item_add(&s->items, &s->n_items, words[i], origin) < 0)
                        return -ENOMEM;
        s->set = true;
        s->origin = origin;
        return 0;
}

static bool items_contain(const Item *items, size_t n, const char *value) {
        for (size_t i = 0; i < n; i++)
                if (streq(items[i].value, value))
                        return true;
        return false;
}

/* Is value (a normalised Allow= entry) within one entry of items? */
static bool items_cover(const Item *items, size_t n, const char *value) {
        for (size_t i = 0; i < n; i++)
                if (allow_entry_covers(items[i].value, value))
                        return true;
        return false;
}

/* "a:443 b:443" of a list, for messages. */
static char *items_join(const Item *items, size_t n) {
        StrBuf b = {};
        for (size_t i = 0; i < n; i++)
                strbuf_appendf(&b, "%s%s", i ? " " : "", items[i].value);
        char *t = NULL;
        return strbuf_steal(&b, &t) < 0 ? NULL : t;
}

/* [Network] Allow= and [Policy] AllowEgress=: HOST:PORT words, validated
 * and normalised (host in lower case), duplicates dropped. */
static int split_allow(ParseContext *ctx, unsigned line, const char *key, const char *value, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        for (const char *p = value; *p;) {
                size_t n = strcspn(p, " \t");
                if (n > 0) {
                        _cleanup_free_ char *w = strndup(p, n), *host = NULL;
                        _cleanup_(cage_error_done) CageError why = {};
                        uint16_t port;
                        if (!w)
                                return -ENOMEM;
                        int r = allow_entry_parse(w, &host, &port, &why);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return fail(ctx, line, "%s=: '%s': %s", key, w, cage_error_message(&why, r));
                        _cleanup_free_ char *norm = strdup_printf("%s:%u", host, (unsigned) port);
                        if (!norm)
                                return -ENOMEM;
                        if (!strv_contains(l, norm) && strv_push(&l, TAKE_PTR(norm)) < 0)
                                return -ENOMEM;
                        if (strv_length(l) > 64)
                                return fail(ctx, line, "%s=: too many entries on one line (at most 64)", key);
                }
                p += n;
                p += strspn(p, " \t");
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int set_string(Setting *s, const char *value) {
        char *t = strdup(value);
        if (!t)
                return -ENOMEM;
        free(s->string);
        s->string = t;
        return 0;
}

/* One assignment being applied: what assign() knows, for its handlers. */
typedef struct Assignment {
        ParseContext *ctx;
        SettingId id;
        const char *value;
        unsigned line;
        Origin origin;
        const char *from; /* where the current value came from, for messages */
} Assignment;

#define ASSIGNMENT_LOCALS(a)                                                               \
        ParseContext *ctx _unused_ = (a)->ctx;                                              \
        SettingId id _unused_ = (a)->id;                                                    \
        const SettingInfo *info _unused_ = &setting_table[id];                              \
        Config *c _unused_ = ctx->config;                                                   \
        Setting *s _unused_ = &c->settings[id];                                             \
        Origin origin _unused_ = (a)->origin;                                               \
        const char *key _unused_ = info->key, *value _unused_ = (a)->value;                 \
        const char *from _unused_ = (a)->from;                                              \
        unsigned line _unused_ = (a)->line;                                                 \
        bool project _unused_ = ctx->layer == LAYER_PROJECT;                                \
        int r _unused_

/* May this layer set it at all? */
static int check_layer(ParseContext *ctx, SettingId id, unsigned line) {
        const SettingInfo *info = &setting_table[id];
        const char *key = info->key;
        bool project = ctx->layer == LAYER_PROJECT;
        if (!(info->layers & (1u << ctx->layer)) && !(ctx->declared && (info->layers & L_DECLARED))) {
                if (info->layers == L_DECLARED)
                        return fail(ctx, line, "%s= is only valid in a declared cage's file (%s/nspawn-cage/cages/NAME.conf); remove it here", key, SYSCONFDIR);
                if (id == SETTING_NIXPKGS)
                        return fail(ctx, line, "Nixpkgs= may only be set by the administrator (in %s/nspawn-cage/nspawn-cage.conf or a declared cage's file): "
                                    "root evaluates and builds the package set it names; remove it here (Packages= picks from the administrator's set)",
                                    SYSCONFDIR);
                if (info->layers == L_ADMIN)
                        return fail(ctx, line, "%s= may only be set by the administrator (in /etc/nspawn-cage/nspawn-cage.conf); remove it here", key);
                if (info->layers == L_USER_ONLY)
                        return fail(ctx, line, "%s= may only be set in your user configuration (~/.config/nspawn-cage/config) or a declared cage's file, not %s; remove it here",
                                    key, project ? "by the project" : "for every user");
                if (info->layers == L_USER_OFF)
                        return fail(ctx, line, "%s= may only be set in your user configuration (~/.config/nspawn-cage/config); a project may only turn it off; remove it here", key);
                if (id == SETTING_PRESET)
                        return fail(ctx, line, "Preset= is not taken from the project: it chooses the agent and which of your saved agent states (logins) the cage gets; set it in ~/.config/nspawn-cage/config or with --preset NAME, and remove it here");
                if (id == SETTING_COMMAND)
                        return fail(ctx, line, "Command= is not taken from the project: it chooses what runs with your terminal and passed variables; set it in ~/.config/nspawn-cage/config or give it on the command line (nspawn-cage PROJECT -- COMMAND...), and remove it here");
                return fail(ctx, line, "%s= may only be set by the administrator or in your user configuration (~/.config/nspawn-cage/config), not by the project; remove it here", key);
        }
        return 0;
}

/* Preset=, Name=, Nixpkgs=, File=, Project=, User=, Toplevel=: one string. Returns 1 when the setting is then set. */
static int assign_string(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        if (info->type == V_FILE) {
                if (!path_is_safe_absolute(value) || streq(value, "/"))
                        return fail(ctx, line, "File=%s: expected the absolute, normalised path of a file of NAME=VALUE lines", value);
                if (startswith(value, "/nix/store/"))
                        return fail(ctx, line, "File=%s: a file in the Nix store is readable by everyone; keep secrets outside it (e.g. /run/secrets)", value);
                return set_string(s, value) < 0 ? -ENOMEM : 1;
        }
        if (info->type == V_PROJECT && (!path_is_safe_absolute(value) || streq(value, "/")))
                return fail(ctx, line, "Project=%s: expected an absolute, normalised directory path", value);
        if (info->type == V_USER && !user_name_is_valid(value))
                return fail(ctx, line, "User=%s is not a valid user name", value);
        if (info->type == V_TOPLEVEL && !store_path_is_valid(value))
                return fail(ctx, line, "Toplevel=%s: expected a store path /nix/store/HASH-NAME", value);
        if (info->type == V_PRESET) {
                for (const char *p = value; *p; p++)
                        if (!islower((unsigned char) *p) && !isdigit((unsigned char) *p) && *p != '-')
                                return fail(ctx, line, "Preset=%s: preset names use lower-case letters, digits and '-'", value);
                if (strlen(value) > 64)
                        return fail(ctx, line, "Preset=: name too long (at most 64 characters)");
        } else if (info->type == V_NAME) {
                if (!machine_name_is_valid(value))
                        return fail(ctx, line, "Name=%s is not a valid machine name: use 1-64 letters, digits, '-', '_' or '.', not starting or ending with '.' or '-', and not \".host\"", value);
        } else {
                bool ok = strlen(value) <= 256 && !strpbrk(value, " \t\"'\\$`;|&");
                if (ok && value[0] == '/')
                        ok = path_is_safe_absolute(value);
                else if (ok && value[0] == '<')
                        ok = value[strlen(value) - 1] == '>';
                if (!ok)
                        return fail(ctx, line, "Nixpkgs=%s: expected an absolute path, <channel> or a flake reference", value);
        }
        if (set_string(s, value) < 0)
                return -ENOMEM;
        return 1;
}

/* Command=: words, as split_command() splits them. Returns 1 when the setting is then set. */
static int assign_command(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        _cleanup_strv_free_ char **argv = NULL;
        r = split_command(value, &argv);
        if (r == -EBADMSG)
                return fail(ctx, line, "Command=: unterminated quote; close it");
        if (r < 0)
                return fail(ctx, line, "Command=: too many words (at most 256)");
        if (!argv)
                return fail(ctx, line, "Command= needs a value");
        if (set_string(s, value) < 0)
                return -ENOMEM;
        return 1;
}

/* CPUs=, Memory=, Swap=, Tasks= and the maxima: a project may only lower them. Returns 1 when the setting is then set. */
static int assign_number(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        char cur[32];
        uint64_t v;
        r = info->type == V_CPUS ? parse_cpus(value, &v) : info->type == V_SIZE ? parse_size(value, &v) : parse_count(value, &v);
        if (r < 0) {
                if (info->type == V_CPUS)
                        return fail(ctx, line, "%s=%s: expected a number of CPUs such as 2 or 0.5 (at most two decimals), or infinity", key, value);
                if (info->type == V_SIZE)
                        return fail(ctx, line, "%s=%s: expected a size such as 512M or 4G (K, M, G, T are powers of 1024), or infinity", key, value);
                return fail(ctx, line, "%s=%s: expected a count from 1 to 4194304, or infinity", key, value);
        }
        if (id == SETTING_MEMORY && v < (UINT64_C(16) << 20))
                return fail(ctx, line, "Memory=%s is too small; a cage needs at least 16M", value);
        if (project && v > s->number) {
                if (info->type == V_CPUS)
                        format_cpus(s->number, cur);
                else if (info->type == V_SIZE)
                        format_size(s->number, cur);
                else
                        snprintf(cur, sizeof cur, "%" PRIu64, s->number);
                return fail(ctx, line, "%s=%s asks for more than allowed: at most %s (from %s); the project configuration may only lower limits",
                            key, value, cur, from);
        }
        s->number = v;
        return 1;
}

/* Mode=: a project may only narrow the network. Returns 1 when the setting is then set. */
static int assign_mode(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        NetworkMode m = network_mode_from_string(value);
        if (m < 0)
                return fail(ctx, line, "Mode=%s: expected off, private or host", value);
        if (project && (uint64_t) m > s->number)
                return fail(ctx, line, "Mode=%s asks for more network than allowed: at most %s (from %s); the project configuration may only narrow the network",
                            value, network_mode_to_string((NetworkMode) s->number), from);
        s->number = (uint64_t) m;
        return 1;
}

/* yes/no: a project may only turn things off (ProtectGit=: on). Returns 1 when the setting is then set. */
static int assign_bool(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        int b = parse_bool(value);
        if (b < 0)
                return fail(ctx, line, "%s=%s: expected yes or no", key, value);
        if (project && id == SETTING_PROTECT_GIT && !b && s->number)
                return fail(ctx, line, "ProtectGit=no is not allowed: it is on (from %s) and the project configuration may only turn protections on",
                            from);
        if (project && id != SETTING_PROTECT_GIT && b && !s->number)
                return fail(ctx, line, "%s=yes is not allowed: %s is off (from %s) and the project configuration may only turn things off",
                            key, key, from);
        s->number = (uint64_t) b;
        return 1;
}

/* Containers=: no, or the one engine there is (builders.h). */
static int assign_containers(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        int e = containers_from_string(value);
        if (e < 0)
                return fail(ctx, line, "Containers=%s: expected no or podman", value);
        s->number = (uint64_t) e;
        return 1;
}

/* Bind=, BindReadOnly=: SOURCE[:DESTINATION]. */
static int assign_bind(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        if (isempty(value))
                return list_assign(s, NULL, origin, true);
        _cleanup_free_ char *src = strdup(value);
        if (!src)
                return -ENOMEM;
        char *dst = strchr(src, ':');
        if (dst)
                *dst++ = 0;
        if (!path_is_safe_absolute(src) || (dst && !path_is_safe_absolute(dst)))
                return fail(ctx, line, "%s=%s: expected SOURCE[:DESTINATION] with absolute, normalised paths (no '.', '..', '//', trailing '/', quotes, backslashes or extra ':')", key, value);
        char *one[] = { (char *) value, NULL };
        return list_assign(s, one, origin, false);
}

/* Set=: NAME=VALUE, a later one of the same name replacing. */
static int assign_env(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        if (isempty(value))
                return list_assign(s, NULL, origin, true);
        const char *eq = strchr(value, '=');
        _cleanup_free_ char *name = eq ? strndup(value, (size_t) (eq - value)) : NULL;
        if (!name || !env_name_is_valid(name))
                return fail(ctx, line, "Set=%s: expected NAME=VALUE with a variable name of letters, digits and '_'", value);
        static const char *const reserved[] = { "HOME", "USER", "LOGNAME", "SHELL", "PATH", "TERM",
                                                "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_RUNTIME_DIR",
                                                "NOTIFY_SOCKET", "container", "container_uuid", NULL };
        if (strv_contains((char **) reserved, name) || startswith(name, "LISTEN_") || startswith(name, "SYSTEMD_"))
                return fail(ctx, line, "Set=: %s is managed by nspawn-cage and cannot be set", name);
        /* A later Set= of the same name replaces the earlier one. */
        for (size_t i = 0; i < s->n_items; i++) {
                const char *v = s->items[i].value;
                if (strncmp(v, name, strlen(name)) == 0 && v[strlen(name)] == '=') {
                        char *t = strdup(value);
                        if (!t)
                                return -ENOMEM;
                        free(s->items[i].value);
                        s->items[i].value = t;
                        s->items[i].origin = origin;
                        return 0;
                }
        }
        char *one[] = { (char *) value, NULL };
        return list_assign(s, one, origin, false);
}

/* [State] Directory=, File=: paths below the home. */
static int assign_state_paths(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        _cleanup_strv_free_ char **words = NULL;
        r = split_words(ctx, line, key, value, state_path_is_valid,
                        "path relative to your home directory (such as .claude or .config/app; no '..', no leading '/')", &words);
        if (r < 0)
                return r;
        if (strv_length(words) + s->n_items > 32)
                return fail(ctx, line, "%s=: too many entries (at most 32)", key);
        return list_assign(s, words, origin, isempty(value));
}

/* [Network] Allow=, AllowEgress=: a project may only narrow the list. */
static int assign_allow(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        _cleanup_strv_free_ char **words = NULL;
        if ((r = split_allow(ctx, line, key, value, &words)) < 0)
                return r;
        if (id == SETTING_ALLOW_EGRESS) /* a policy list says exactly what is allowed */
                return list_assign(s, words, origin, true);
        bool reset = !words;
        if (project && c->n_trusted_allow > 0) {
                _cleanup_free_ char *list = items_join(c->trusted_allow, c->n_trusted_allow);
                _cleanup_free_ char *tfrom = origin_short(&c->trusted_allow[0].origin);
                if (!list || !tfrom)
                        return -ENOMEM;
                if (!words)
                        return fail(ctx, line, "Allow= (empty) would lift the allowlist Allow=%s (from %s); the project configuration may only narrow it: keep some of its entries or remove this line",
                                    list, tfrom);
                for (size_t i = 0; words[i]; i++)
                        if (!items_cover(c->trusted_allow, c->n_trusted_allow, words[i]))
                                return fail(ctx, line, "Allow=%s is not allowed: your configuration allows only Allow=%s (from %s); the project configuration may only narrow Allow= to entries of that list",
                                            words[i], list, tfrom);
        }
        if (project) {
                /* The project's first Allow= replaces the trusted list: it can only narrow. */
                reset = reset || !ctx->seen[id];
                ctx->seen[id] = line;
        }
        if (reset)
                (void) list_assign(s, NULL, origin, true);
        for (size_t i = 0; words && words[i]; i++)
                if (!items_contain(s->items, s->n_items, words[i]) && item_add(&s->items, &s->n_items, words[i], origin) < 0)
                        return -ENOMEM;
        if (s->n_items > 256)
                return fail(ctx, line, "Allow=: too many entries (at most 256)");
        s->set = true;
        s->origin = origin;
        return 0;
}

/* Packages=, Pass=, AllowUsers=, AllowModes=: lists of words. */
static int assign_words(const Assignment *a) {
        ASSIGNMENT_LOCALS(a);
        _cleanup_strv_free_ char **words = NULL;
        r = info->type == V_PACKAGES ? split_words(ctx, line, key, value, package_name_is_valid, "package attribute name", &words)
          : info->type == V_ENV_NAMES ? split_words(ctx, line, key, value, env_name_is_valid, "environment variable name", &words)
          : info->type == V_USERS ? split_words(ctx, line, key, value, user_or_star_is_valid, "user name (or *)", &words)
          : info->type == V_PUBLISH ? split_words(ctx, line, key, value, publish_entry_is_valid, "PORT[:CAGEPORT] (PORT 1024-65535, a port you could bind yourself; CAGEPORT 1-65535; e.g. 3000 or 8080:80)", &words)
          : info->type == V_HOST_SERVICE ? split_words(ctx, line, key, value, host_service_entry_is_valid,
                                                       "IPv4ADDRESS:PORT of a service on the host (e.g. 127.0.0.1:5432; not port 53, 3128 or 3129)", &words)
          : split_words(ctx, line, key, value, mode_is_valid, "network mode (off, private, host)", &words);
        if (r < 0)
                return r;
        for (size_t i = 0; id == SETTING_PASS && words && words[i]; i++)
                if (hostenv_is_dropped(words[i], strlen(words[i])) && !streq(words[i], "PATH"))
                        return fail(ctx, line, "Pass=%s cannot be passed: nspawn-cage drops %s from its environment at start, as it would steer what root runs "
                                    "(SYSTEMD_*, DBUS_*, NIX_*, LD_* and the like); set it in the cage with [Environment] Set= instead",
                                    words[i], words[i]);
        if (id == SETTING_PASS && project) {
                for (size_t i = 0; words && words[i]; i++) {
                        bool ok = false;
                        for (size_t j = 0; j < c->n_trusted_pass; j++)
                                ok = ok || streq(c->trusted_pass[j].value, words[i]);
                        if (!ok)
                                return fail(ctx, line, "Pass=%s is not allowed: your user configuration does not pass %s; add it to Pass= in ~/.config/nspawn-cage/config if the agent should see it",
                                            words[i], words[i]);
                }
                /* The project's Pass= list replaces the trusted one: it can only narrow. */
                bool first = !ctx->seen[id];
                ctx->seen[id] = line;
                return list_assign(s, words, origin, first || isempty(value));
        }
        if (info->type == V_PACKAGES && strv_length(words) + s->n_items > 512)
                return fail(ctx, line, "Packages=: too many packages (at most 512)");
        /* Policy lists say exactly what is allowed: each assignment replaces. */
        bool replace = isempty(value) || info->type == V_USERS || info->type == V_MODES;
        return list_assign(s, words, origin, replace);
}

static int assign(ParseContext *ctx, SettingId id, const char *value, unsigned line) {
        Setting *s = &ctx->config->settings[id];
        Origin origin = { .layer = ctx->layer, .file = ctx->file, .line = line };
        const char *key = setting_table[id].key;
        int r = check_layer(ctx, id, line);
        if (r < 0)
                return r;
        if (!setting_is_list(id)) {
                if (ctx->seen[id])
                        return fail(ctx, line, "%s= is already set on line %u of this file; keep only one", key, ctx->seen[id]);
                ctx->seen[id] = line;
                if (isempty(value))
                        return fail(ctx, line, "%s= needs a value", key);
        }
        _cleanup_free_ char *from = origin_short(&s->origin);
        Assignment a = { .ctx = ctx, .id = id, .value = value, .line = line, .origin = origin, .from = from };
        switch (setting_table[id].type) {
        case V_FILE: case V_PROJECT: case V_USER: case V_TOPLEVEL: case V_PRESET: case V_NAME: case V_NIXPKGS:
                r = assign_string(&a);
                break;
        case V_COMMAND: r = assign_command(&a); break;
        case V_CPUS: case V_SIZE: case V_COUNT: r = assign_number(&a); break;
        case V_MODE: r = assign_mode(&a); break;
        case V_BOOL: r = assign_bool(&a); break;
        case V_CONTAINERS: r = assign_containers(&a); break;
        case V_BIND: return assign_bind(&a);
        case V_ENV_ASSIGN: return assign_env(&a);
        case V_STATE_PATHS: return assign_state_paths(&a);
        case V_ALLOW: return assign_allow(&a);
        case V_PACKAGES: case V_ENV_NAMES: case V_USERS: case V_MODES: case V_PUBLISH: case V_HOST_SERVICE: return assign_words(&a);
        }
        if (r < 0)
                return r;
        s->set = true;
        s->origin = origin;
        return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        ParseContext *ctx = user;
        if (ctx->r < 0)
                return 0;
        unsigned line = ctx->next < ctx->n_lines ? ctx->lines[ctx->next] : 0;
        ctx->next++;
        if (isempty(section)) {
                fail(ctx, line, "%s= appears before any [Section]; put it under its section, e.g. [Cage]", name);
                return 0;
        }
        SettingId id = _SETTING_INVALID;
        bool section_known = false;
        for (int i = 0; i < _SETTING_MAX; i++) {
                if (!streq(setting_table[i].section, section))
                        continue;
                section_known = true;
                if (streq(setting_table[i].key, name))
                        id = i;
        }
        if (!section_known) {
                fail(ctx, line, "unknown section [%s]; see nspawn-cage.conf(5) for the sections", section);
                return 0;
        }
        if (id < 0) {
                fail(ctx, line, "unknown key %s= in [%s]; see nspawn-cage.conf(5) for the keys", name, section);
                return 0;
        }
        int r = assign(ctx, id, value, line);
        if (r < 0 && ctx->r >= 0)
                ctx->r = r;
        return ctx->r < 0 ? 0 : 1;
}

static const char *intern_file(Config *c, const char *label) {
        for (size_t i = 0; c->files && c->files[i]; i++)
                if (streq(c->files[i], label))
                        return c->files[i];
        if (strv_extend(&c->files, label) < 0)
                return NULL;
        return c->files[strv_length(c->files) - 1];
}

/* The administrator's [Policy] bounds every layer, including the admin's own
 * defaults; checked after each file so the order of keys does not matter. */
static int check_policy(ParseContext *ctx) {
        Config *c = ctx->config;
        for (int id = 0; id < _SETTING_MAX; id++) {
                const SettingInfo *info = &setting_table[id];
                Setting *s = &c->settings[id];
                if (info->policy < 0)
                        continue;
                Setting *p = &c->settings[info->policy];
                _cleanup_free_ char *pfrom = origin_short(&p->origin);
                const char *pkey = setting_table[info->policy].key;
                unsigned line = s->origin.line;
                const char *file = s->origin.file;
                char cur[32], lim[32];
                switch (info->type) {
                case V_CPUS: case V_SIZE: case V_COUNT:
                        if (s->number <= p->number)
                                continue;
                        if (info->type == V_CPUS) {
                                format_cpus(s->number, cur);
                                format_cpus(p->number, lim);
                        } else if (info->type == V_SIZE) {
                                format_size(s->number, cur);
                                format_size(p->number, lim);
                        } else {
                                snprintf(cur, sizeof cur, "%" PRIu64, s->number);
                                snprintf(lim, sizeof lim, "%" PRIu64, p->number);
                        }
                        if (s->origin.layer == LAYER_BUILTIN) {
                                /* The built-in default simply follows a lower maximum. */
                                s->number = p->number;
                                continue;
                        }
                        ctx->file = file;
                        return fail(ctx, line, "%s=%s asks for more than allowed: the administrator's maximum is %s=%s (%s); lower it",
                                    info->key, cur, pkey, lim, pfrom);
                case V_MODE:
                        if (mode_allowed(c, network_mode_to_string((NetworkMode) s->number)))
                                continue;
                        if (s->origin.layer == LAYER_BUILTIN) {
                                ctx->file = p->origin.file;
                                return fail(ctx, p->origin.line, "AllowNetwork= does not include the default Mode=off; add off, or set [Network] Mode= to an allowed mode");
                        }
                        ctx->file = file;
                        return fail(ctx, line, "Mode=%s is not allowed: the administrator allows only AllowNetwork=%s%s%s%s%s (%s)",
                                    network_mode_to_string((NetworkMode) s->number),
                                    p->n_items > 0 ? p->items[0].value : "", p->n_items > 1 ? " " : "",
                                    p->n_items > 1 ? p->items[1].value : "", p->n_items > 2 ? " " : "",
                                    p->n_items > 2 ? p->items[2].value : "", pfrom);
                case V_BOOL:
                        if (!s->number || p->number)
                                continue;
                        ctx->file = file;
                        return fail(ctx, line, "%s=yes is not allowed: the administrator set %s=no (%s)", info->key, pkey, pfrom);
                case V_CONTAINERS:
                        if (!s->number || p->number)
                                continue;
                        ctx->file = file;
                        return fail(ctx, line, "Containers=%s is not allowed: the administrator set %s=no (%s)",
                                    containers_to_string((Containers) s->number), pkey, pfrom);
                case V_ALLOW:
                        /* AllowEgress= unset: no bound; Allow= unset: the cage gets the policy's list. */
                        for (size_t i = 0; i < s->n_items && p->n_items > 0; i++) {
                                if (items_cover(p->items, p->n_items, s->items[i].value))
                                        continue;
                                _cleanup_free_ char *list = items_join(p->items, p->n_items);
                                ctx->file = s->items[i].origin.file;
                                return fail(ctx, s->items[i].origin.line, "Allow=%s is not allowed: the administrator allows only AllowEgress=%s (%s); remove it or ask the administrator",
                                            s->items[i].value, strempty(list), pfrom);
                        }
                        continue;
                case V_BIND: case V_PUBLISH: case V_HOST_SERVICE:
                        if (s->n_items == 0 || p->number)
                                continue;
                        ctx->file = s->items[0].origin.file;
                        return fail(ctx, s->items[0].origin.line, "%s= is not allowed: the administrator set %s=no (%s)", info->key, pkey, pfrom);
                default:
                        continue;
                }
        }
        return 0;
}

static int load(Config *c, Layer layer, bool declared, const char *label, const char *data, size_t size, CageError *err) {
        ParseContext ctx = { .config = c, .layer = layer, .declared = declared, .err = err };
        int r;
        if (!(ctx.file = intern_file(c, label)))
                return -ENOMEM;
        if (layer == LAYER_PROJECT && !c->in_project) {
                /* Remember what the trusted layers pass, to bound the project's Pass=. */
                Setting *pass = &c->settings[SETTING_PASS];
                for (size_t i = 0; i < pass->n_items; i++)
                        if (item_add(&c->trusted_pass, &c->n_trusted_pass, pass->items[i].value, pass->items[i].origin) < 0)
                                return -ENOMEM;
                Setting *allow = &c->settings[SETTING_ALLOW];
                for (size_t i = 0; i < allow->n_items; i++)
                        if (item_add(&c->trusted_allow, &c->n_trusted_allow, allow->items[i].value, allow->items[i].origin) < 0)
                                return -ENOMEM;
                c->in_project = true;
        }
        r = prescan(&ctx, data, size);
        if (r >= 0 && ctx.r >= 0) {
                _cleanup_free_ char *copy = strndup(data, size);
                if (!copy)
                        r = -ENOMEM;
                else {
                        int k = ini_parse_string(copy, handler, &ctx);
                        if (ctx.r >= 0 && k != 0)
                                fail(&ctx, k > 0 ? (unsigned) k : 0, "syntax error; expected [Section] or Key=Value");
                        r = ctx.r;
                }
        }
        if (r >= 0 && ctx.r >= 0)
                r = check_policy(&ctx);
        free(ctx.lines);
        return r < 0 ? r : ctx.r;
}

/* ---- output helpers ---- */

char *origin_to_string(const Origin *o) {
        if (o->layer == LAYER_BUILTIN)
                return strdup("builtin");
        return strdup_printf("file:%s:%u", o->file, o->line);
}

char *setting_format_value(const Config *c, SettingId id) {
        const Setting *s = &c->settings[id];
        char buf[32];
        switch (setting_table[id].type) {
        case V_CPUS:
                format_cpus(s->number, buf);
                return strdup(buf);
        case V_SIZE:
                format_size(s->number, buf);
                return strdup(buf);
        case V_COUNT:
                if (s->number == COUNT_INFINITY)
                        return strdup("infinity");
                return strdup_printf("%" PRIu64, s->number);
        case V_MODE:
                return strdup(network_mode_to_string((NetworkMode) s->number));
        case V_BOOL:
                return strdup(s->number ? "yes" : "no");
        case V_CONTAINERS:
                return strdup(containers_to_string((Containers) s->number));
        default:
                return strdup(strempty(s->string));
        }
}

int config_load_buffer(Config *c, Layer layer, const char *label, const char *data, size_t size, CageError *err) {
        return load(c, layer, false, label, data, size, err);
}

int config_load_declared(Config *c, const char *label, const char *data, size_t size, CageError *err) {
        return load(c, LAYER_ADMIN, true, label, data, size, err);
}
