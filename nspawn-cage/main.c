/* main.c: the verbs of nspawn-cage and the only place that knows the order
 * of the pipeline: who is calling, the three configuration layers, the
 * spec, the closure, the renderers, and (for run) systemd over D-Bus.
 * Errors are logged here, once, with the file, line or key that failed. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "closure.h"
#include "config.h"
#include "rootfs.h"
#include "settings.h"
#include "spec.h"
#include "user.h"
#include "util.h"

#define ADMIN_DIR SYSCONFDIR "/nspawn-cage"

typedef struct Args {
        const char *verb;
        bool json;
        const char *output;
        const char *closure;
        const char *name;
        const char *admin_dir;
        const char *user_config;
        const char *data_dir;
        const char *project;
        char **command;
} Args;

_printf_(1, 2) static int log_error(const char *fmt, ...) {
        va_list ap;
        fputs("nspawn-cage: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -1;
}

static bool invoked_through_sudo(void) {
        return geteuid() == 0 && getenv("SUDO_UID");
}

/* The user a cage is for: who ran sudo, else the caller. */
static int invoking_user(HostUser *ret) {
        const char *sudo_uid = getenv("SUDO_UID");
        uid_t uid = getuid();
        if (geteuid() == 0 && sudo_uid) {
                char *end;
                errno = 0;
                unsigned long v = strtoul(sudo_uid, &end, 10);
                if (errno || *end || end == sudo_uid || v >= UINT32_MAX)
                        return log_error("SUDO_UID=%s is not a user id; run nspawn-cage through sudo", sudo_uid);
                uid = (uid_t) v;
        }
        int r = host_user_from_uid(uid, ret);
        if (r < 0)
                return log_error("cannot look up the invoking user (uid %u): %s", (unsigned) uid, strerror(-r));
        return 0;
}

static int config_error_log(const ConfigError *e, int r) {
        if (e->message && e->file && e->line)
                return log_error("%s:%u: %s", e->file, e->line, e->message);
        if (e->message && e->file)
                return log_error("%s: %s", e->file, e->message);
        if (e->message)
                return log_error("%s", e->message);
        return log_error("configuration: %s", strerror(-r));
}

static const char *read_error_reason(int r) {
        switch (r) {
        case -ELOOP: return "is a symbolic link; the file must be a regular file, not a link";
        case -EBADFD: return "is not a regular file (a FIFO, device or socket); replace it with a regular file";
        case -EFBIG: return "is larger than 64 KiB; a configuration file this large is refused";
        case -EISDIR: return "is a directory; it must be a regular file";
        case -EACCES: return "cannot be read with your rights; check its permissions";
        case -EPERM: return "is owned by another user; only your own files are read";
        default: return strerror(-r);
        }
}

/* Open and merge one file into a layer. Missing files are fine. */
static int load_file(Config *c, Layer layer, int dirfd, const char *name, const char *label, bool follow,
                     uid_t owner, bool check_owner) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_error("%s %s", label, read_error_reason(-errno));
        }
        struct stat st;
        if (check_owner && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid != owner)
                return log_error("%s %s", label, read_error_reason(-EPERM));
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = config_read_fd(fd, &data, &size);
        if (r < 0)
                return log_error("%s %s", label, read_error_reason(r));
        ConfigError err = {};
        r = config_load_buffer(c, layer, label, data, size, &err);
        if (r < 0) {
                config_error_log(&err, r);
                config_error_done(&err);
                return -1;
        }
        return 0;
}

static int load_admin_layer(Config *c, const char *dir) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return errno == ENOENT ? 0 : log_error("%s: %s", dir, strerror(errno));
        _cleanup_free_ char *main_label = strdup_printf("%s/nspawn-cage.conf", dir);
        if (!main_label || load_file(c, LAYER_ADMIN, dfd, "nspawn-cage.conf", main_label, true, 0, false) < 0)
                return -1;
        _cleanup_free_ char *ddir = strdup_printf("%s/nspawn-cage.conf.d", dir);
        if (!ddir)
                return -1;
        struct dirent **list = NULL;
        int n = scandir(ddir, &list, NULL, alphasort);
        if (n < 0)
                return errno == ENOENT ? 0 : log_error("%s: %s", ddir, strerror(errno));
        int r = 0;
        _cleanup_close_ int ddfd = open(ddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (int i = 0; i < n; i++) {
                const char *e = list[i]->d_name;
                size_t l = strlen(e);
                if (r == 0 && e[0] != '.' && l > 5 && streq(e + l - 5, ".conf")) {
                        _cleanup_free_ char *label = strdup_printf("%s/%s", ddir, e);
                        if (!label || ddfd < 0 || load_file(c, LAYER_ADMIN, ddfd, e, label, true, 0, false) < 0)
                                r = -1;
                }
                free(list[i]);
        }
        free(list);
        return r;
}

typedef struct Cage {
        HostUser user;
        Config *config;
        CageSpec *spec;
        Preset preset;
} Cage;

static void cage_done(Cage *c) {
        host_user_done(&c->user);
        config_free(c->config);
        cage_spec_free(c->spec);
        preset_done(&c->preset);
}

static int load_preset(Cage *cage, const Args *a) {
        const char *name = cage->config->settings[SETTING_PRESET].string;
        _cleanup_free_ char *user_dir = strdup_printf("%s/.config/nspawn-cage/presets", cage->user.home);
        _cleanup_free_ char *sys_dir = strdup_printf("%s/templates/presets", a->data_dir ? a->data_dir : PKGDATADIR);
        _cleanup_free_ char *file = strdup_printf("%s.conf", name);
        if (!user_dir || !sys_dir || !file)
                return log_error("out of memory");
        const char *dirs[] = { user_dir, sys_dir };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_close_ int dfd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        continue;
                _cleanup_close_ int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd < 0)
                        continue;
                _cleanup_free_ char *label = strdup_printf("%s/%s", dirs[i], file);
                _cleanup_free_ char *data = NULL;
                size_t size;
                int r = config_read_fd(fd, &data, &size);
                if (r < 0)
                        return log_error("%s %s", label, read_error_reason(r));
                ConfigError err = {};
                r = preset_parse(label, data, size, &cage->preset, &err);
                if (r < 0) {
                        config_error_log(&err, r);
                        config_error_done(&err);
                        return -1;
                }
                return 0;
        }
        const Origin *o = &cage->config->settings[SETTING_PRESET].origin;
        if (o->file)
                return log_error("%s:%u: Preset=%s: no such preset in %s or %s; 'nspawn-cage presets' lists them",
                                 o->file, o->line, name, user_dir, sys_dir);
        return log_error("preset '%s' not found in %s; reinstall nspawn-cage or set Preset=", name, sys_dir);
}

/* Everything up to the spec: user, layers, preset, project checks. */
static int cage_load(Cage *cage, const Args *a) {
        int r;
        if ((a->admin_dir || a->user_config || a->data_dir) && invoked_through_sudo())
                return log_error("--admin-config-dir, --user-config and --data-dir are for tests and inspection; they are refused under sudo");
        if (invoking_user(&cage->user) < 0)
                return -1;

        FsIdentity id;
        if ((r = user_fs_enter(&cage->user, &id)) < 0)
                return log_error("cannot take the file system identity of %s: %s", cage->user.name, strerror(-r));
        char project[PATH_MAX];
        bool resolved = realpath(a->project, project);
        int saved = errno;
        struct stat st;
        if (resolved && stat(project, &st) < 0)
                resolved = false, saved = errno;
        user_fs_leave(&id);
        if (!resolved) {
                if (saved == ENOENT)
                        return log_error("project %s does not exist; create it or give an existing directory", a->project);
                return log_error("project %s: %s", a->project, strerror(saved));
        }
        if (!S_ISDIR(st.st_mode))
                return log_error("project %s is not a directory; give the project's directory", a->project);
        const char *reason;
        if (project_path_check(project, &cage->user, &reason) < 0)
                return log_error("project %s %s", project, reason);
        if (st.st_uid != cage->user.uid)
                return log_error("project %s is owned by uid %u, not by you (%s); cage only your own projects",
                                 project, (unsigned) st.st_uid, cage->user.name);

        if ((r = config_new(&cage->config)) < 0)
                return log_error("out of memory");
        if (load_admin_layer(cage->config, a->admin_dir ? a->admin_dir : ADMIN_DIR) < 0)
                return -1;

        const Setting *allow = &cage->config->settings[SETTING_ALLOW_USERS];
        if (allow->n_items > 0) {
                bool ok = false;
                for (size_t i = 0; i < allow->n_items; i++)
                        ok = ok || streq(allow->items[i].value, "*") || streq(allow->items[i].value, cage->user.name);
                if (!ok)
                        return log_error("%s:%u: user %s is not in AllowUsers=; ask the administrator to add you",
                                         allow->origin.file, allow->origin.line, cage->user.name);
        }

        if ((r = user_fs_enter(&cage->user, &id)) < 0)
                return log_error("cannot take the file system identity of %s: %s", cage->user.name, strerror(-r));
        _cleanup_free_ char *user_conf = a->user_config ? strdup(a->user_config)
                                                        : strdup_printf("%s/.config/nspawn-cage/config", cage->user.home);
        _cleanup_free_ char *project_conf = strdup_printf("%s/.nspawn-cage.conf", project);
        r = user_conf && project_conf ? 0 : -1;
        if (r == 0)
                r = load_file(cage->config, LAYER_USER, AT_FDCWD, user_conf, user_conf, true, cage->user.uid, true);
        if (r == 0) {
                _cleanup_close_ int pfd = open(project, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                r = pfd < 0 ? log_error("project %s: %s", project, strerror(errno))
                            : load_file(cage->config, LAYER_PROJECT, pfd, ".nspawn-cage.conf", project_conf, false, cage->user.uid, true);
        }
        if (r == 0)
                r = load_preset(cage, a);
        user_fs_leave(&id);
        if (r < 0)
                return -1;

        ConfigError err = {};
        r = cage_spec_resolve(cage->config, project, &cage->user, a->name, &cage->preset, &cage->spec, &err);
        if (r < 0) {
                config_error_log(&err, r);
                config_error_done(&err);
                return -1;
        }
        return 0;
}

static int verb_config(const Args *a) {
        _cleanup_(cage_done) Cage cage = {};
        if (cage_load(&cage, a) < 0)
                return 1;
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
                return log_error("out of memory"), 1;
        for (int id = 0; id < _SETTING_MAX; id++) {
                const Setting *s = &c->settings[id];
                /* What the preset supplies is part of the effective settings too. */
                if ((id == SETTING_COMMAND && !s->set) || id == SETTING_PACKAGES) {
                        char *const one[] = { cage.preset.command ? cage.preset.command : "bash -l", NULL };
                        char *const *l = id == SETTING_COMMAND ? one : cage.preset.packages;
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
                                return log_error("out of memory"), 1;
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
                return log_error("out of memory"), 1;
        fputs(text, stdout);
        return 0;
}

static int read_closure_file(const Cage *cage, const char *path, char ***ret) {
        FsIdentity id;
        int r = user_fs_enter(&cage->user, &id);
        if (r < 0)
                return log_error("cannot take the file system identity of %s: %s", cage->user.name, strerror(-r));
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        int saved = errno;
        user_fs_leave(&id);
        if (fd < 0)
                return log_error("--closure %s: %s", path, strerror(saved));
        _cleanup_free_ char *data = NULL;
        size_t size;
        if ((r = closure_read_list(fd, &data, &size)) < 0)
                return log_error("--closure %s: %s", path, r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
        _cleanup_strv_free_ char **paths = NULL;
        unsigned line = 0;
        r = closure_parse_list(data, size, &paths, &line);
        if (r < 0)
                return log_error("%s:%u: not a store path (expected /nix/store/HASH-NAME, one a line, top-level first)", path, line);
        *ret = TAKE_PTR(paths);
        return 0;
}

static int write_output(int dfd, const char *dir, const char *name, const char *text) {
        int r = write_file_atomic_at(dfd, name, text, 0644);
        if (r < 0)
                return log_error("%s/%s: %s", dir, name, strerror(-r));
        return 0;
}

static int verb_render(const Args *a) {
        _cleanup_(cage_done) Cage cage = {};
        if (cage_load(&cage, a) < 0)
                return 1;
        _cleanup_strv_free_ char **paths = NULL;
        int r;
        if (a->closure) {
                if (read_closure_file(&cage, a->closure, &paths) < 0)
                        return 1;
        } else {
                ClosureRequest req = { .nixpkgs = cage.spec->nixpkgs, .packages = cage.spec->packages, .name = cage.spec->name,
                                       .data_dir = a->data_dir ? a->data_dir : PKGDATADIR };
                _cleanup_free_ char *error = NULL;
                if ((r = closure_realise(&req, NULL, &paths, &error)) < 0)
                        return log_error("building the closure failed: %s", error ? error : strerror(-r)), 1;
        }
        _cleanup_free_ char *bad = NULL;
        if ((r = cage_spec_set_closure(cage.spec, paths, &bad)) < 0)
                return log_error("closure: %s", bad ? bad : "empty"), 1;

        _cleanup_free_ char *nspawn = NULL, *listing = NULL;
        if ((r = settings_render(cage.spec, &nspawn, &bad)) < 0)
                return log_error("cannot write '%s' safely into a .nspawn file", strempty(bad)), 1;
        RootfsPlan plan = {};
        if ((r = rootfs_plan_build(cage.spec, &plan)) < 0 || (r = rootfs_plan_format(&plan, cage.user.name, &listing)) < 0) {
                rootfs_plan_done(&plan);
                return log_error("rootfs plan: %s", strerror(-r)), 1;
        }
        rootfs_plan_done(&plan);

        const char *dir = a->output ? a->output : ".";
        FsIdentity id;
        if ((r = user_fs_enter(&cage.user, &id)) < 0)
                return log_error("cannot take the file system identity of %s: %s", cage.user.name, strerror(-r)), 1;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *n1 = strdup_printf("%s.nspawn", cage.spec->name);
        _cleanup_free_ char *n2 = strdup_printf("%s.rootfs", cage.spec->name);
        r = dfd < 0 ? log_error("--output %s: %s", dir, strerror(errno))
                    : write_output(dfd, dir, n1, nspawn) ?: write_output(dfd, dir, n2, listing);
        user_fs_leave(&id);
        if (r < 0)
                return 1;
        printf("%s/%s\n%s/%s\n", dir, n1, dir, n2);
        return 0;
}

static void help(void) {
        printf("Usage: nspawn-cage [OPTIONS] VERB [ARGS]\n"
               "Run a coding agent in a systemd-nspawn container built from a Nix closure.\n\n"
               "Verbs:\n"
               "  config [--json] PROJECT       Show the effective settings and where each came from\n"
               "  render [--output DIR] [--closure FILE] PROJECT\n"
               "                                Write NAME.nspawn and NAME.rootfs without starting anything\n\n"
               "Options:\n"
               "  -h --help                     Show this help\n"
               "     --version                  Show the version\n"
               "     --json                     JSON output (config)\n"
               "  -o --output DIR               Where render writes (default: .)\n"
               "     --closure FILE             Store paths to use instead of building with Nix,\n"
               "                                one a line, the top-level path first\n"
               "  -n --name NAME                Machine name (default: derived from the project path)\n"
               "     --admin-config-dir DIR     Read the administrator layer from DIR (not under sudo)\n"
               "     --user-config FILE         Read the user layer from FILE (not under sudo)\n"
               "     --data-dir DIR             Presets and Nix expressions from DIR (not under sudo)\n\n"
               "Configuration: %s/nspawn-cage.conf{,.d/*.conf}, ~/.config/nspawn-cage/config,\n"
               "PROJECT/.nspawn-cage.conf. See nspawn-cage(1) and nspawn-cage.conf(5).\n",
               ADMIN_DIR);
}

enum { ARG_VERSION = 0x100, ARG_JSON, ARG_CLOSURE, ARG_ADMIN_DIR, ARG_USER_CONFIG, ARG_DATA_DIR };

static int parse_args(int argc, char **argv, Args *a) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                { "output", required_argument, NULL, 'o' },
                { "closure", required_argument, NULL, ARG_CLOSURE },
                { "name", required_argument, NULL, 'n' },
                { "admin-config-dir", required_argument, NULL, ARG_ADMIN_DIR },
                { "user-config", required_argument, NULL, ARG_USER_CONFIG },
                { "data-dir", required_argument, NULL, ARG_DATA_DIR },
                {}
        };
        int c;
        while ((c = getopt_long(argc, argv, "+ho:n:", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help(); return 0;
                case ARG_VERSION: printf("nspawn-cage %s\n", PACKAGE_VERSION); return 0;
                case ARG_JSON: a->json = true; break;
                case 'o': a->output = optarg; break;
                case ARG_CLOSURE: a->closure = optarg; break;
                case 'n':
                        if (!machine_name_is_valid(optarg))
                                return log_error("--name %s: not a valid machine name (1-64 letters, digits, '-', '_', '.'; not .host)", optarg);
                        a->name = optarg;
                        break;
                case ARG_ADMIN_DIR: a->admin_dir = optarg; break;
                case ARG_USER_CONFIG: a->user_config = optarg; break;
                case ARG_DATA_DIR: a->data_dir = optarg; break;
                default: return log_error("see 'nspawn-cage --help'");
                }
                /* Options may follow the verb: keep scanning after it. */
        }
        return 1;
}

int main(int argc, char **argv) {
        Args a = {};
        /* Verb first, options anywhere: reorder by hand so that a project
         * path starting with '-' is never taken for an option after "--". */
        _cleanup_free_ char **args = calloc((size_t) argc + 1, sizeof(char *));
        if (!args)
                return 1;
        int n = 0, positional = 0;
        const char *pos[3] = {};
        args[n++] = argv[0];
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--")) {
                        for (i++; i < argc && positional < 3; i++)
                                pos[positional++] = argv[i];
                        break;
                }
                if (argv[i][0] == '-' && argv[i][1]) {
                        args[n++] = argv[i];
                        bool takes = streq(argv[i], "-o") || streq(argv[i], "--output") || streq(argv[i], "--closure") ||
                                     streq(argv[i], "-n") || streq(argv[i], "--name") || streq(argv[i], "--admin-config-dir") ||
                                     streq(argv[i], "--user-config") || streq(argv[i], "--data-dir");
                        if (takes && i + 1 < argc)
                                args[n++] = argv[++i];
                } else if (positional < 3)
                        pos[positional++] = argv[i];
                else
                        return log_error("too many arguments: '%s'; see 'nspawn-cage --help'", argv[i]), 1;
        }
        int r = parse_args(n, args, &a);
        if (r <= 0)
                return r < 0 ? 1 : 0;
        if (positional == 0)
                return log_error("no verb given; see 'nspawn-cage --help'"), 1;
        a.verb = pos[0];
        if (streq(a.verb, "config") || streq(a.verb, "render")) {
                if (positional != 2)
                        return log_error("%s needs exactly one PROJECT directory", a.verb), 1;
                a.project = pos[1];
                return streq(a.verb, "config") ? verb_config(&a) : verb_render(&a);
        }
        return log_error("unknown verb '%s'; see 'nspawn-cage --help'", a.verb), 1;
}
