/* main.c: the verbs of nspawn-cage and the only place that knows the order
 * of the pipeline: who is calling, the three configuration layers, the
 * spec, the closure, the renderers, and (for run) systemd over D-Bus.
 * Errors are logged here, once, with the file, line or key that failed. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <time.h>
#include <getopt.h>
#include <pwd.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#include "agentstate.h"
#include "binds.h"
#include "bus.h"
#include "caps.h"
#include "cgroup.h"
#include "closure.h"
#include "config.h"
#include "idmap.h"
#include "display.h"
#include "envfile.h"
#include "forward.h"
#include "hostenv.h"
#include "network.h"
#include "projectaudit.h"
#include "rootfs.h"
#include "settings.h"
#include "spec.h"
#include "state.h"
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
        char **assignments; /* set: KEY=VALUE... */
        bool keep;
        bool shell;
        uint64_t timeout_usec;
        const char *declared; /* a declared cage's file: its user and project */
        const char *preset;   /* --preset: the user's choice, as if in their configuration */
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
        r = layer == _LAYER_INVALID ? config_load_declared(c, label, data, size, &err)
                                    : config_load_buffer(c, layer, label, data, size, &err);
        if (r < 0) {
                config_error_log(&err, r);
                config_error_done(&err);
                return -1;
        }
        return 0;
}

/* The declared cage's user and project, read from its file first. */
static int declared_identity(const char *path, HostUser *ret_user, char **ret_project) {
        _cleanup_(config_freep) Config *c = NULL;
        if (config_new(&c) < 0)
                return log_error("out of memory");
        if (load_file(c, _LAYER_INVALID, AT_FDCWD, path, path, true, 0, false) < 0)
                return -1;
        const Setting *u = &c->settings[SETTING_USER], *p = &c->settings[SETTING_PROJECT];
        if (!u->set || !p->set)
                return log_error("%s: a declared cage needs [Cage] User= and Project=", path);
        errno = 0;
        struct passwd *pw = getpwnam(u->string);
        if (!pw)
                return log_error("%s:%u: User=%s: no such user", path, u->origin.line, u->string);
        if (host_user_from_uid(pw->pw_uid, ret_user) < 0)
                return log_error("cannot look up user %s", u->string);
        if (!(*ret_project = strdup(p->string)))
                return log_error("out of memory");
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
        _cleanup_free_ char *declared_project = NULL;
        Args declared_args;
        if (a->declared) {
                if (declared_identity(a->declared, &cage->user, &declared_project) < 0)
                        return -1;
                declared_args = *a;
                declared_args.project = declared_project;
                a = &declared_args;
        } else if (invoking_user(&cage->user) < 0)
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
        /* A declared cage's file is the administrator's too; no user layer then. */
        if (a->declared && load_file(cage->config, _LAYER_INVALID, AT_FDCWD, a->declared, a->declared, true, 0, false) < 0)
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
        if (r == 0 && !a->declared)
                r = load_file(cage->config, LAYER_USER, AT_FDCWD, user_conf, user_conf, true, cage->user.uid, true);
        if (r == 0 && a->preset) {
                /* The user's word, on the command line: read as their layer. */
                _cleanup_free_ char *text = strdup_printf("[Cage]\nPreset=%s\n", a->preset);
                ConfigError err = {};
                r = text ? config_load_buffer(cage->config, LAYER_USER, "--preset", text, strlen(text), &err) : -ENOMEM;
                if (r < 0) {
                        config_error_log(&err, r);
                        config_error_done(&err);
                        r = -1;
                }
        }
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
        _cleanup_free_ char *ca_dir = strdup_printf("%s/ca-certificates", a->admin_dir ? a->admin_dir : ADMIN_DIR);
        if (!ca_dir || (r = cage_spec_add_ca_files(cage->spec, ca_dir)) < 0)
                return log_error("%s: %s", ca_dir ? ca_dir : "CA certificates", strerror(ca_dir ? -r : ENOMEM));
        return 0;
}

/* ---- names ---- */

/* The file that declares cage `name`, if the administrator declared one. */
static char *declared_file(const Args *a, const char *name) {
        return strdup_printf("%s/cages/%s.conf", a->admin_dir ? a->admin_dir : ADMIN_DIR, name);
}

static bool is_declared(const char *file) {
        struct stat st;
        return fstatat(AT_FDCWD, file, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/* A declared cage's name is the administrator's: an ad hoc cage taking it
 * would be what `start NAME` and root's `shell NAME` find instead. */
static int declared_name_refuse(const Args *a, const char *name) {
        _cleanup_free_ char *file = declared_file(a, name);
        if (!file)
                return log_error("out of memory");
        if (is_declared(file))
                return log_error("cage name %s is taken by the cage the administrator declared in %s; choose another --name "
                                 "(to enter that cage if it is yours: 'nspawn-cage shell %s')", name, file, name);
        return 0;
}

/* Root reaching a cage by name: say whose it is, and do not enter one that
 * squats the name of a declared cage (another kind or user than declared). */
static int cage_owner_check(const Args *a, const CageRecord *rec) {
        _cleanup_free_ char *file = declared_file(a, rec->name), *dproject = NULL;
        _cleanup_(host_user_done) HostUser duser = {};
        if (!file)
                return log_error("out of memory");
        bool declared = is_declared(file);
        bool known = declared && declared_identity(file, &duser, &dproject) >= 0;
        if (declared && (!rec->declared || !known || duser.uid != rec->uid)) {
                if (streq(a->verb, "shell"))
                        return log_error("cage %s is %s's %s cage (uid %u, project %s), not the one declared in %s%s%s; not entering it: "
                                         "'nspawn-cage stop %s' removes it, 'nspawn-cage start %s' then starts the declared one",
                                         rec->name, rec->user, rec->declared ? "declared" : "ad hoc", (unsigned) rec->uid, rec->project, file,
                                         duser.name ? " for " : "", strempty(duser.name), rec->name, rec->name);
                fprintf(stderr, "nspawn-cage: warning: cage %s is %s's %s cage (uid %u, project %s), not the one declared in %s\n",
                        rec->name, rec->user, rec->declared ? "declared" : "ad hoc", (unsigned) rec->uid, rec->project, file);
                return 0;
        }
        if (rec->uid != 0)
                fprintf(stderr, "nspawn-cage: cage %s is %s's (uid %u, %s, project %s)\n", rec->name, rec->user, (unsigned) rec->uid,
                        declared ? "declared" : "ad hoc", rec->project);
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

/* ProtectGit=: look at the project's .git as the user, never following links. */
static int protect_git(CageSpec *s) {
        FsIdentity id;
        if (user_fs_enter(&s->user, &id) < 0)
                return log_error("cannot take the file system identity of %s", s->user.name);
        _cleanup_close_ int pfd = open(s->project, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        int r = pfd < 0 ? -errno : cage_spec_protect_git(s, pfd);
        user_fs_leave(&id);
        if (r < 0)
                return log_error("project %s: %s", s->project, strerror(-r));
        return 0;
}

/* What in the project could make git run code, or is set-id, as the cage
 * starts: the project opened as the user along no link; walked as root
 * (what the user cannot read, the agent could still hide a file in),
 * beneath it, no link followed, no mount crossed, nothing changed. */
static int project_audit_start(const CageSpec *s, char **ret_text) {
        FsIdentity id;
        if (user_fs_enter(&s->user, &id) < 0)
                return log_error("cannot take the file system identity of %s", s->user.name);
        struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        _cleanup_close_ int pfd = (int) syscall(SYS_openat2, AT_FDCWD, s->project, &how, sizeof how);
        int saved = errno;
        user_fs_leave(&id);
        if (pfd < 0)
                return log_error("project %s: %s", s->project, strerror(saved));
        ProjectAuditOptions o = { .uid = s->user.uid, .git = s->protect_git };
        bool truncated = false;
        int r = project_audit_snapshot(pfd, &o, ret_text, &truncated);
        if (r < 0)
                return log_error("project %s: looking for git repositories and set-id files: %s", s->project, strerror(-r));
        if (truncated)
                fprintf(stderr, "nspawn-cage: warning: project %s has more than %lu entries or is deeper than %u directories: the check at the "
                                "cage's end (git repositories, set-id files) covers only what lies within\n",
                        s->project, PROJECT_AUDIT_MAX_ENTRIES, PROJECT_AUDIT_MAX_DEPTH);
        return 0;
}

static char *staging_dir(const char *name) { return strdup_printf("%s/cages/%s/" STAGING_SUBDIR, STATE_DIR, name); }

/* Where nspawn binds from: the cage's idmapped staging mounts, and its
 * rootfs's own /nix/store directory (read-only over itself). */
static int set_cage_paths(CageSpec *s, uid_t base) {
        _cleanup_free_ char *staging = staging_dir(s->name);
        char *store = strdup_printf("%s/cages/%s/rootfs/nix/store", STATE_DIR, s->name);
        if (!staging || !store) {
                free(store);
                return -ENOMEM;
        }
        free(s->store_dir);
        s->store_dir = store;
        return cage_spec_set_userns(s, base, staging);
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
        if (protect_git(cage.spec) < 0)
                return 1;
        if (cage.spec->persist) {
                char home[PATH_MAX];
                _cleanup_free_ char *sdir = state_dir_path(realpath(cage.user.home, home) ? home : cage.user.home, cage.spec->preset);
                if (!sdir || cage_spec_add_state_binds(cage.spec, sdir) < 0)
                        return log_error("out of memory"), 1;
        }
        /* The range a start would try first; it takes another if that one is taken. */
        if (set_cage_paths(cage.spec, idmap_preferred_base(cage.spec->name)) < 0)
                return log_error("out of memory"), 1;

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

/* ---- running cages ---- */

static char *unit_name(const char *name) { return strdup_printf("nspawn-cage-%s.service", name); }

static int require_root(void) {
        if (geteuid() != 0)
                return log_error("this needs root: run it as 'sudo nspawn-cage ...'");
        return 0;
}

typedef struct Host {
        sd_bus *bus;
        sd_event *event;
        int state_fd;
} Host;

static void host_done(Host *h) {
        sd_bus_flush_close_unref(h->bus);
        sd_event_unref(h->event);
        if (h->state_fd >= 0)
                close(h->state_fd);
}

static int host_open(Host *h) {
        int r;
        h->state_fd = -1;
        if ((r = sd_event_new(&h->event)) < 0)
                return log_error("cannot create an event loop: %s", strerror(-r));
        if ((r = sd_bus_open_system(&h->bus)) < 0)
                return log_error("cannot connect to the system bus (%s): is D-Bus running? nspawn-cage needs systemd as PID 1", strerror(-r));
        if ((r = sd_bus_attach_event(h->bus, h->event, 0)) < 0)
                return log_error("cannot attach the bus: %s", strerror(-r));
        if ((r = state_open(STATE_DIR, &h->state_fd)) < 0)
                return log_error("%s: %s (it must be a directory owned by root, not writable by others)", STATE_DIR, strerror(-r));
        /* Leases and kept environments: root's only, like the state (an
         * older version made it 0755: tightened here). */
        _cleanup_close_ int run_fd = open("/run", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rt_fd = -1;
        if (run_fd < 0 || (r = state_dir_open(run_fd, strrchr(RUNTIME_DIR, '/') + 1, &rt_fd)) < 0)
                return log_error("%s: %s (it must be a directory owned by root, not writable by others)", RUNTIME_DIR,
                                 strerror(run_fd < 0 ? errno : -r));
        return 0;
}

static int check_machined(Host *h) {
        int r = bus_machine_leader(h->bus, "nspawn-cage-probe", NULL);
        if (r == -ENOENT)
                return 0;
        return log_error("systemd-machined is not available (%s); install systemd-container and start systemd-machined.service",
                         strerror(-r));
}

static int settings_path(const char *dir, const char *name, char **ret) {
        return (*ret = strdup_printf("%s/%s.nspawn", dir, name)) ? 0 : -ENOMEM;
}

/* Detach the idmapped staging mounts of cage name, if any are left (they
 * are detached once the cage has booted; after a crash they are not). */
static int staging_umount(const char *name) {
        _cleanup_free_ char *dir = staging_dir(name);
        if (!dir)
                return -ENOMEM;
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        int ret = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *p = strdup_printf("%s/%s", dir, de->d_name);
                int r = p ? idmap_umount(p) : -ENOMEM;
                if (r < 0 && ret == 0)
                        ret = r;
        }
        closedir(d);
        return ret;
}

static void warn_state(const char *path, const char *why, void *userdata) {
        const char *const *ctx = userdata; /* cage name, state directory */
        fprintf(stderr, "nspawn-cage: warning: cage %s: ~/%s %s: left alone; your copy in %s/%s is unchanged\n", ctx[0], path, why, ctx[1], path);
}

/* [State] File=: from the user's state directory into the cage's home,
 * before the cage first starts. */
static int state_copy_in(const CageSpec *s, int rootfd, char **ret_path, char ***ret_entries) {
        _cleanup_close_ int sfd = -1;
        _cleanup_free_ char *path = NULL;
        int r = agent_state_open(&s->user, s->preset, &sfd, &path);
        if (r < 0)
                return log_error("agent state of preset %s in %s/.local/state/nspawn-cage: %s", s->preset, s->user.home, strerror(-r));
        struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW,
                                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        _cleanup_close_ int hfd = (int) syscall(SYS_openat2, rootfd, s->user.home + 1, &how, sizeof how);
        if (hfd < 0)
                return log_error("the cage's %s: %s", s->user.home, strerror(errno));
        const char *ctx[] = { s->name, path }, *bad = NULL;
        if ((r = agent_state_copy_in(&s->user, sfd, hfd, s->state_files, warn_state, ctx, ret_entries, &bad)) < 0)
                return log_error("copying %s/%s into the cage: %s", path, strempty(bad), strerror(-r));
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* [State] File=: back out of a cage's home (its unit stopped) into the
 * state directory the record names, as the user who owns it. */
static int state_copy_out(Host *h, const CageRecord *rec) {
        if (!rec->state_dir || !rec->state_home || !rec->state_files || rec->state_home[0] != '/')
                return 0;
        _cleanup_(host_user_done) HostUser u = {};
        int r = host_user_from_uid(rec->uid, &u);
        if (r < 0)
                return log_error("cage %s: its user (uid %u) is gone; its agent state is not copied out", rec->name, (unsigned) rec->uid);
        /* After the agent's session the helper has no CAP_SETUID: then as root, still without links. */
        FsIdentity id;
        (void) user_fs_enter(&u, &id);
        struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        _cleanup_close_ int sfd = (int) syscall(SYS_openat2, AT_FDCWD, rec->state_dir, &how, sizeof how);
        int saved = errno;
        user_fs_leave(&id);
        struct stat st;
        if (sfd < 0 || fstat(sfd, &st) < 0 || st.st_uid != u.uid)
                return log_error("cage %s: agent state %s: %s; its files are not copied out", rec->name, rec->state_dir,
                                 sfd < 0 ? strerror(saved) : "not owned by its user");
        _cleanup_free_ char *home = strdup_printf("cages/%s/rootfs%s", rec->name, rec->state_home);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
        _cleanup_close_ int hfd = home ? (int) syscall(SYS_openat2, h->state_fd, home, &how, sizeof how) : -1;
        if (hfd < 0)
                return errno == ENOENT ? 0 : log_error("cage %s: %s/%s: %s; agent state not copied out", rec->name, STATE_DIR, strempty(home), strerror(errno));
        const char *ctx[] = { rec->name, rec->state_dir };
        unsigned n = 0;
        if ((r = agent_state_copy_out(&u, hfd, sfd, rec->state_files, warn_state, ctx, &n)) < 0)
                return log_error("cage %s: copying agent state out into %s: %s", rec->name, rec->state_dir, strerror(-r));
        return 0;
}

/* What the cage left in its project that could run code as its user on
 * the host (git: a new or replaced .git, a new git directory, a changed
 * hook or config; a set-id or capability file) is renamed out of git's
 * reach or loses its bits, and the user is told. Once its unit has
 * stopped; as root with what the helper kept (after the agent's session:
 * CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), beneath the project,
 * no link followed, no mount crossed, and only the user's files changed:
 * renamed in their directory, or their mode reduced. */
static int project_audit_end(Host *h, const CageRecord *rec) {
        _cleanup_free_ char *rel = strdup_printf("cages/%s/" PROJECT_AUDIT_FILE, rec->name), *text = NULL;
        if (!rel)
                return log_error("out of memory");
        _cleanup_close_ int fd = openat(h->state_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT)
                return 0; /* the start did not get so far: the agent never ran */
        size_t size;
        int r = fd < 0 ? -errno : read_regular_fd(fd, 256u << 20, &text, &size);
        if (r < 0)
                return log_error("cage %s: %s/%s: %s; project %s was NOT checked for git repositories and set-id files the cage left",
                                 rec->name, STATE_DIR, rel, strerror(-r), rec->project);
        struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        _cleanup_close_ int pfd = (int) syscall(SYS_openat2, AT_FDCWD, rec->project, &how, sizeof how);
        struct stat st;
        if (pfd < 0 && errno == ENOENT)
                return 0; /* removed: nothing of it is left to run */
        if (pfd < 0 || fstat(pfd, &st) < 0 || st.st_uid != rec->uid)
                return log_error("cage %s: project %s: %s; it was NOT checked for git repositories and set-id files the cage left", rec->name,
                                 rec->project, pfd < 0 ? strerror(errno) : "no longer its user's");
        /* Readable (the cage and when), and unique: two checks in one second never meet. */
        uint16_t rnd = 0;
        (void) !getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        _cleanup_free_ char *tag = strdup_printf("%s-%lld-%04x", rec->name, (long long) time(NULL), (unsigned) rnd);
        ProjectAuditOptions o = { .uid = rec->uid };
        _cleanup_(project_audit_report_done) ProjectAuditReport rep = {};
        if (!tag || (r = project_audit_check(pfd, &o, text, tag, &rep)) < 0)
                return log_error("cage %s: project %s: checking for git repositories and set-id files the cage left: %s", rec->name,
                                 rec->project, strerror(tag ? -r : ENOMEM));
        int ret = 0;
        if (rep.neutralised) {
                fprintf(stderr, "nspawn-cage: cage %s left in %s what could run code as you; made harmless:\n", rec->name, rec->project);
                for (size_t i = 0; rep.neutralised[i]; i++)
                        fprintf(stderr, "  %s\n", rep.neutralised[i]);
                fprintf(stderr, "nspawn-cage: nothing was deleted. Look at a renamed entry (its hooks/, config) before you rename it back with "
                                "mv, and run no git inside it until then; cage root's set-id bits are not restored.\n");
        }
        for (size_t i = 0; rep.moved && rep.moved[i]; i++)
                fprintf(stderr, "nspawn-cage: cage %s: a git directory of the start is now at %s/%s: move it back with mv once you have looked at it\n",
                        rec->name, rec->project, rep.moved[i]);
        for (size_t i = 0; rep.failed && rep.failed[i]; i++)
                ret = log_error("cage %s: %s/%s: NOT made harmless; do not run git in %s nor anything there until you have looked", rec->name,
                                rec->project, rep.failed[i], rec->project);
        if (rep.truncated)
                ret = log_error("cage %s: project %s has more than %lu entries or is deeper than %u directories: what lies beyond was NOT checked "
                                "for git repositories and set-id files the cage left", rec->name, rec->project, PROJECT_AUDIT_MAX_ENTRIES,
                                PROJECT_AUDIT_MAX_DEPTH);
        return ret;
}

/* Take everything of a cage away: its unit (and so the machine), its
 * settings file, its GC root and its state directory. Safe to call on any
 * part of it missing; reports what could not be removed. */
static int teardown(Host *h, const char *name, bool remove_lock) {
        _cleanup_free_ char *unit = unit_name(name), *settings = NULL, *root = NULL, *dir = NULL, *busy = NULL;
        int r, ret = 0;
        if (!unit || settings_path(SETTINGS_DIR, name, &settings) < 0 || !(root = strdup_printf("gcroots/%s", name)) ||
            !(dir = strdup_printf("cages/%s", name)))
                return log_error("out of memory");
        _cleanup_(cage_record_done) CageRecord rec = {};
        uid_t base = state_read_record(h->state_fd, name, &rec) >= 0 ? rec.uid_base : 0;
        r = bus_stop_unit(h->bus, h->event, unit, 30 * 1000000ULL);
        if (r < 0 && r != -ENOENT)
                ret = log_error("stopping %s: %s", unit, strerror(-r));
        bus_reset_failed_unit(h->bus, unit);
        /* The agent has stopped writing: [State] File= back to the user. */
        if (rec.name && state_copy_out(h, &rec) < 0)
                ret = -1;
        if (rec.name && rec.project && project_audit_end(h, &rec) < 0)
                ret = -1;
        /* With the unit stopped the cage's namespace is gone, and the veth with it. */
        if ((r = network_release(NULL, name)) < 0)
                ret = log_error("%s: the network of cage %s (nftables table inet nspawn-cage-%s, interface " NETWORK_IFNAME_PREFIX
                                "N): %s; 'nspawn-cage gc' tries again", NETWORK_LEASE_DIR, name, name, strerror(-r));
        if ((r = staging_umount(name)) < 0)
                ret = log_error("%s/%s/" STAGING_SUBDIR ": cannot detach a staging mount: %s", STATE_DIR, dir, strerror(-r));
        /* The range's lock file: free once systemd has let go of the unit. */
        for (unsigned i = 0; remove_lock && base && i < 50; i++) {
                r = idmap_remove_lock(NULL, base, name);
                if (r != -EBUSY)
                        break;
                usleep(100 * 1000);
        }
        if (remove_lock && base && r < 0 && r != -ESRCH)
                ret = log_error("%s/%u: %s", IDMAP_LOCK_DIR, (unsigned) base, r == -EBUSY ? "still locked; 'nspawn-cage gc' removes it later" : strerror(-r));
        if (unlink(settings) < 0 && errno != ENOENT)
                ret = log_error("%s: %s", settings, strerror(errno));
        if (unlinkat(h->state_fd, root, 0) < 0 && errno != ENOENT)
                ret = log_error("%s/%s: %s", STATE_DIR, root, strerror(errno));
        _cleanup_close_ int cage_fd = openat(h->state_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (cage_fd >= 0 && (r = display_unstage(cage_fd)) < 0)
                ret = log_error("%s/%s/display: %s", STATE_DIR, dir, strerror(-r));
        if (cage_fd >= 0 && (r = forward_unstage(cage_fd)) < 0)
                ret = log_error("%s/%s/forward: %s", STATE_DIR, dir, strerror(-r));
        if ((r = state_remove_environment(ENVIRONMENT_DIR, name)) < 0)
                ret = log_error("%s/%s: %s", ENVIRONMENT_DIR, name, strerror(-r));
        if ((r = state_remove_dir(h->state_fd, dir, &busy)) < 0)
                ret = log_error("%s/%s: %s%s%s", STATE_DIR, dir, strerror(-r), busy ? ": something is mounted at " : "", strempty(busy));
        return ret;
}

static int cage_teardown(Host *h, const char *name) { return teardown(h, name, true); }
/* For a failed start: the starter still holds the range's lock and drops it. */
static int cage_teardown_keep_lock(Host *h, const char *name) { return teardown(h, name, false); }

/* Is a published cage in use? Its starter holds a lock on its directory
 * for its whole life; a kept cage runs on without one. */
static bool cage_locked(Host *h, const char *name) {
        _cleanup_free_ char *dir = strdup_printf("cages/%s", name);
        _cleanup_close_ int fd = dir ? openat(h->state_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        return false;
}

static bool cage_running(Host *h, const CageRecord *rec) {
        _cleanup_free_ char *state = NULL;
        if (bus_unit_active_state(h->bus, rec->unit, &state) < 0)
                return false;
        return streq(state, "active") && bus_machine_leader(h->bus, rec->name, NULL) >= 0;
}

/* The agent's argv: a bare command name is looked up in the cage's profile,
 * on the host side of the same store path. */
static int resolve_command(const CageSpec *s, char *const *command, char ***ret) {
        _cleanup_strv_free_ char **argv = strv_copy(command);
        if (!argv || !argv[0])
                return log_error("empty command");
        if (!strchr(argv[0], '/')) {
                _cleanup_free_ char *host = strdup_printf("%s/sw/bin/%s", s->toplevel, argv[0]);
                if (!host || access(host, X_OK) < 0)
                        return log_error("command '%s' is not in the cage's packages; add the package that provides it to Packages=", argv[0]);
                char *inside = strdup_printf("/bin/%s", argv[0]);
                if (!inside)
                        return log_error("out of memory");
                free(argv[0]);
                argv[0] = inside;
        }
        *ret = TAKE_PTR(argv);
        return 0;
}

static bool is_display_variable(const char *name) {
        return streq(name, "DISPLAY") || streq(name, "XAUTHORITY") || streq(name, "WAYLAND_DISPLAY") || streq(name, "XDG_RUNTIME_DIR");
}

static bool env_has_name(char *const *l, const char *assignment) {
        size_t n = strcspn(assignment, "=");
        for (size_t i = 0; l && l[i]; i++)
                if (strncmp(l[i], assignment, n) == 0 && l[i][n] == '=')
                        return true;
        return false;
}

/* The agent's environment: the user's basics, the values of Pass= (from
 * passed_environment(), or for a shell the values the cage's start kept),
 * what display_stage and forward_stage wrote for this cage (the host's own
 * values of those variables never reach the agent), then Set=. */
static int agent_environment(const CageSpec *s, char *const *kept, char *const *display, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        int r = 0;
        r = r ?: strv_push(&env, strdup_printf("HOME=%s", s->user.home));
        r = r ?: strv_push(&env, strdup_printf("USER=%s", s->user.name));
        r = r ?: strv_push(&env, strdup_printf("LOGNAME=%s", s->user.name));
        r = r ?: strv_push(&env, strdup("SHELL=/bin/bash"));
        r = r ?: strv_push(&env, strdup("PATH=/bin:/usr/bin"));
        r = r ?: strv_push(&env, strdup_printf("TERM=%s", getenv("TERM") && strv_contains(s->pass, "TERM") ? getenv("TERM") : "xterm-256color"));
        for (size_t i = 0; kept && kept[i] && r >= 0; i++)
                if (!startswith(kept[i], "TERM=") && !env_has_name(display, kept[i]))
                        r = strv_extend(&env, kept[i]);
        for (size_t i = 0; display && display[i] && r >= 0; i++)
                r = strv_extend(&env, display[i]);
        for (size_t i = 0; s->set && s->set[i] && r >= 0; i++)
                r = strv_extend(&env, s->set[i]);
        if (r < 0) {
                strv_free_erase(TAKE_PTR(env));
                return log_error("out of memory");
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static const char *envfile_reason(int r) {
        switch (r) {
        case -ENOENT: return "does not exist; create it or remove File=";
        case -ELOOP: return "is a symbolic link; give the path of the file itself";
        case -EBADFD: return "is not a regular file";
        case -EFBIG: return "is larger than 64 KiB";
        case -EPERM: return "can be read or written by others; make it private (chmod 600 on it)";
        case -EACCES: return "cannot be read with your rights";
        default: return strerror(-r);
        }
}

/* The values of Pass= for the agent: from [Environment] File= where it has
 * the name, else from our environment (what sudo kept, or for a declared
 * cage EnvironmentFile= of its unit). TERM and the display's variables are
 * the agent's own. Logs what is wrong with File=, naming where it is set. */
static int passed_environment(const Cage *cage, char ***ret) {
        const CageSpec *s = cage->spec;
        const Setting *fs = &cage->config->settings[SETTING_ENV_FILE];
        _cleanup_(strv_free_erasep) char **from_file = NULL, **l = NULL;
        int r;
        if (s->env_file) {
                _cleanup_close_ int fd = -1;
                if ((r = envfile_open(s->env_file, s->env_file_as_root ? NULL : &s->user, &fd)) < 0)
                        return log_error("%s:%u: File=%s %s", fs->origin.file, fs->origin.line, s->env_file, envfile_reason(r));
                _cleanup_free_ char *data = NULL;
                size_t size = 0;
                r = config_read_fd(fd, &data, &size);
                if (r < 0)
                        return log_error("%s:%u: File=%s %s", fs->origin.file, fs->origin.line, s->env_file, envfile_reason(r));
                unsigned line = 0;
                const char *reason = NULL;
                r = envfile_parse(data, size, s->pass, &from_file, &line, &reason);
                explicit_bzero(data, size);
                if (r == -EINVAL)
                        return log_error("%s:%u: %s (File= of %s:%u)", s->env_file, line, reason, fs->origin.file, fs->origin.line);
                if (r < 0)
                        return log_error("out of memory");
        }
        for (size_t i = 0; s->pass && s->pass[i]; i++) {
                const char *name = s->pass[i];
                if (streq(name, "TERM") || is_display_variable(name))
                        continue;
                _cleanup_free_ char *prefix = strdup_printf("%s=", name);
                const char *v = NULL;
                if (!prefix)
                        return log_error("out of memory");
                for (size_t j = 0; from_file && from_file[j] && !v; j++)
                        v = startswith(from_file[j], prefix);
                if (!v)
                        v = getenv(name);
                if (v && !string_has_cc(v) && strv_push(&l, strdup_printf("%s=%s", name, v)) < 0)
                        return log_error("out of memory");
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int attach(Host *h, const CageSpec *s, char *const *command, char *const *kept) {
        _cleanup_strv_free_ char **argv = NULL, **display = NULL;
        _cleanup_(strv_free_erasep) char **env = NULL;
        _cleanup_free_ char *dir = strdup_printf("cages/%s", s->name);
        _cleanup_close_ int cage_fd = dir ? openat(h->state_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
        _cleanup_strv_free_ char **forward = NULL;
        int k = cage_fd >= 0 ? display_read_environment(cage_fd, &display) : 0;
        if (k < 0)
                return log_error("%s/%s/display/environment: %s", STATE_DIR, dir, strerror(-k));
        k = cage_fd >= 0 ? forward_read_environment(cage_fd, &forward) : 0;
        for (size_t i = 0; k >= 0 && forward && forward[i]; i++)
                k = strv_extend(&display, forward[i]);
        if (k < 0)
                return log_error("%s/%s/forward/environment: %s", STATE_DIR, dir, strerror(-k));
        if (resolve_command(s, command, &argv) < 0 || agent_environment(s, kept, display, &env) < 0)
                return -1;
        AgentRun run = { .machine = s->name, .argv = argv, .environ = env, .user = s->user.name, .directory = s->project };
        _cleanup_(agent_session_done) AgentSession session = { .master = -1 };
        _cleanup_free_ char *error = NULL;
        int status = 0, r = bus_open_agent_session(h->bus, h->event, s->name, &session, &error);
        if (r < 0)
                return log_error("attaching to cage %s: %s", s->name, error ? error : strerror(-r));
        /* From here on: D-Bus as uid 0 and removing the cage's files. */
        if ((r = caps_drop_for_session(s->network == NETWORK_PRIVATE, s->persist && s->state_files)) < 0)
                return log_error("dropping capabilities: %s", strerror(-r));
        r = bus_run_agent(&session, h->event, &run, &status, &error);
        if (r < 0)
                return log_error("running the command in cage %s: %s", s->name, error ? error : strerror(-r));
        return status;
}

/* Why path cannot be idmapped, as the fix a user can apply. */
static int idmap_refusal(const char *what, const char *path, int r) {
        _cleanup_free_ char *fstype = NULL, *target = NULL;
        (void) idmap_fs_of(path, &fstype, &target);
        if (r == -ENOSYS)
                return log_error("%s %s: this kernel has no idmapped mounts (Linux 5.12 or later is needed); nspawn-cage runs every cage "
                                 "in its own user namespace and needs them so that only your uid can write there", what, path);
        if (r == -EOPNOTSUPP)
                return log_error("%s %s is on %s (mounted at %s), which does not support idmapped mounts; nspawn-cage runs every cage in "
                                 "its own user namespace and binds it through one, so that only your uid can write there: move it to a "
                                 "local file system that supports them (ext4, xfs, btrfs, tmpfs)", what, path, fstype ? fstype : "a file system",
                                 target ? target : "?");
        if (r == -EPERM)
                return log_error("%s %s (on %s at %s) is already an idmapped mount (a systemd-homed home, or a container's "
                                 "mount?); idmapped mounts cannot be stacked before Linux 6.15: move it elsewhere", what, path,
                                 fstype ? fstype : "?", target ? target : "?");
        return log_error("%s %s: cannot make an idmapped mount of it: %s", what, path, strerror(-r));
}

/* "FILE:LINE: Bind=VALUE:" of a bind, or what added it, for messages. */
static char *bind_label(const BindSpec *b) {
        const char *key = b->read_only ? "BindReadOnly" : "Bind";
        bool same = streq(b->source, b->destination);
        if (!b->origin.file)
                return strdup_printf("ProtectGit=: %s=%s", key, b->source);
        return strdup_printf("%s:%u: %s=%s%s%s", b->origin.file, b->origin.line, key, b->source, same ? "" : ":",
                             same ? "" : b->destination);
}

/* Open a bind's source as bind_source_open() does; log why not. */
static int open_bind(int root_fd, const CageSpec *s, const BindSpec *b, int *ret_fd) {
        const char *reason = NULL;
        int r = bind_source_open(root_fd, b, &s->user, ret_fd, &reason);
        if (r >= 0)
                return 0;
        _cleanup_free_ char *label = bind_label(b);
        return log_error("%s: source %s: %s", strempty(label), b->source, reason ? reason : strerror(-r));
}

/* Every cage has its own user namespace: the project and each writable
 * bind must be idmappable (refused otherwise: no weaker fallback); a
 * read-only bind that is not is staged as a plain read-only clone. Before
 * anything is built; stage_mounts() opens and checks each source again. */
static int check_idmap(CageSpec *s) {
        int r = idmap_supported(s->project);
        if (r < 0)
                return idmap_refusal("project", s->project, r);
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return log_error("/: %s", strerror(errno));
        for (size_t i = 0; i < s->n_binds; i++) {
                BindSpec *b = &s->binds[i];
                if (b->as_is)
                        continue;
                _cleanup_close_ int fd = -1;
                if (open_bind(root, s, b, &fd) < 0)
                        return -1;
                b->no_idmap = false;
                if ((r = idmap_supported_fd(fd)) >= 0)
                        continue;
                if (!b->read_only) {
                        _cleanup_free_ char *label = bind_label(b);
                        _cleanup_free_ char *what = strdup_printf("%s: source", strempty(label));
                        return idmap_refusal(what ? what : "Bind= source", b->source, r);
                }
                b->no_idmap = true;
        }
        return 0;
}

/* The project (opened as the user, along a path without links) and every
 * bind (opened as bind_source_open() does), each mounted from its fd at its
 * root-owned staging path: idmapped, or a plain read-only clone. */
static int stage_mounts(const CageSpec *s) {
        FsIdentity id;
        int r = user_fs_enter(&s->user, &id);
        if (r < 0)
                return log_error("cannot take the file system identity of %s: %s", s->user.name, strerror(-r));
        struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW,
                                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        _cleanup_close_ int pfd = (int) syscall(SYS_openat2, AT_FDCWD, s->project, &how, sizeof how);
        int saved = errno;
        user_fs_leave(&id);
        struct stat st;
        if (pfd < 0)
                return log_error("project %s: %s", s->project, strerror(saved));
        if (fstat(pfd, &st) < 0 || st.st_uid != s->user.uid)
                return log_error("project %s changed owner meanwhile; cage only your own projects", s->project);
        _cleanup_free_ char *dir = staging_dir(s->name);
        if (!dir)
                return log_error("out of memory");
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return log_error("%s: %s", dir, strerror(errno));
        if ((r = idmap_mount_project(pfd, s->user.uid, s->user.gid, s->uid_base, s->project_staged)) < 0) {
                if (r == -ERANGE)
                        return log_error("your uid or gid (%u:%u) is 65536 or more: a cage's user namespace maps 64K ids only",
                                         (unsigned) s->user.uid, (unsigned) s->user.gid);
                return idmap_refusal("project", s->project, r);
        }
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return log_error("/: %s", strerror(errno));
        for (size_t i = 0; i < s->n_binds; i++) {
                const BindSpec *b = &s->binds[i];
                if (!b->own_mount)
                        continue;
                _cleanup_close_ int fd = -1;
                if (open_bind(root, s, b, &fd) < 0)
                        return -1;
                if ((r = bind_stage(fd, b, &s->user, s->uid_base)) < 0) {
                        _cleanup_free_ char *label = bind_label(b);
                        _cleanup_free_ char *what = strdup_printf("%s: source", strempty(label));
                        return idmap_refusal(what ? what : "Bind= source", b->source, r);
                }
        }
        return 0;
}

/* Mode=private: the cage runs (its init is machined's leader) and nothing
 * of it but PID 1 has started yet that the agent depends on; wire its veth,
 * address, route and NAT before the agent is attached. */
static int network_up(Host *h, const CageSpec *s) {
        pid_t leader;
        int r = bus_machine_leader(h->bus, s->name, &leader);
        if (r < 0)
                return log_error("cage %s: cannot find its init to set up its network: %s", s->name, strerror(-r));
        _cleanup_free_ char *routes = NULL, *error = NULL;
        size_t size;
        _cleanup_close_ int fd = open("/proc/net/route", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || config_read_fd(fd, &routes, &size) < 0)
                return log_error("/proc/net/route: cannot read the host's routes: %s", strerror(errno));
        NetworkLease l;
        if ((r = network_lease_take(NULL, s->name, routes, &l)) < 0)
                return log_error("%s: no free /30 for cage %s in 10.231.0.0/16: %s", NETWORK_LEASE_DIR, s->name,
                                 r == -EBUSY ? "all in use or overlapping the host's routes" : strerror(-r));
        if ((r = network_setup(s->name, &l, s->user.uid, s->allow, s->n_allow, leader, &error)) < 0)
                return log_error("cage %s: setting up its network (Mode=private): %s", s->name, error ? error : strerror(-r));
        return 0;
}

/* SSHAgent=yes: the relay is the one process a cage makes nspawn-cage leave
 * on the host. It runs in its own scope bound to the cage's unit, so the
 * host's systemd counts and limits it and stops it with the cage. */
static int relay_up(Host *h, const CageSpec *s, const char *cage_unit, Forward *fwd) {
        pid_t leader;
        _cleanup_free_ char *error = NULL, *scope = strdup_printf(FORWARD_RELAY_SCOPE_FMT, s->name),
                            *desc = strdup_printf("nspawn-cage %s: ssh-agent relay for %s", s->name, s->user.name);
        int r;
        if (!scope || !desc)
                return log_error("out of memory");
        if ((r = bus_machine_leader(h->bus, s->name, &leader)) < 0 || (r = forward_fork_relay(fwd, &s->user, s->name, leader)) < 0)
                return log_error("cage %s: starting the ssh-agent relay (SSHAgent=yes): %s", s->name, strerror(-r));
        CageScope c = { .unit = scope, .bound_to = cage_unit, .description = desc, .pid = fwd->relay_pid,
                        .tasks_max = FORWARD_RELAY_TASKS_MAX, .memory_max = FORWARD_RELAY_MEMORY_MAX };
        if ((r = bus_start_scope(h->bus, h->event, &c, UINT64_C(30000000), &error)) < 0)
                return log_error("cage %s: the ssh-agent relay's scope (SSHAgent=yes): %s", s->name, error ? error : strerror(-r));
        if ((r = forward_release_relay(fwd)) < 0)
                return log_error("cage %s: the ssh-agent relay did not start: %s", s->name, strerror(-r));
        return 0;
}

/* Build the closure, render the rootfs and the settings, start the unit.
 * Every failure undoes what was made. Returns the locked cage dir fd. */
static int cage_start_locked(Host *h, Cage *cage, const Args *a, const Display *display, Forward *fwd, uid_t uid_base,
                             int uid_lock_fd, int *ret_lock_fd) {
        CageSpec *s = cage->spec;
        _cleanup_free_ char *unit = unit_name(s->name), *gcroot = strdup_printf("%s/gcroots/%s", STATE_DIR, s->name);
        _cleanup_free_ char *settings = NULL, *etc_settings = NULL, *error = NULL, *bad = NULL, *tmp = NULL;
        _cleanup_strv_free_ char **paths = NULL;
        _cleanup_close_ int cage_fd = -1;
        int r;
        if (!unit || !gcroot || settings_path(SETTINGS_DIR, s->name, &settings) < 0 || settings_path(SETTINGS_ETC_DIR, s->name, &etc_settings) < 0)
                return log_error("out of memory");
        if (access(etc_settings, F_OK) == 0)
                return log_error("%s exists and would override the cage's settings; remove it (nspawn-cage never reads it)", etc_settings);

        const Setting *top = &cage->config->settings[SETTING_TOPLEVEL];
        if (top->set) {
                /* Built at system build time: no Nix evaluation now. */
                if (access(top->string, F_OK) < 0)
                        return log_error("%s:%u: Toplevel=%s is not in the Nix store; rebuild the system", top->origin.file, top->origin.line, top->string);
                _cleanup_strv_free_ char **closure = NULL;
                if ((r = closure_query(top->string, &closure)) < 0)
                        return log_error("nix-store --query --requisites %s failed", top->string);
                if (strv_extend(&paths, top->string) < 0)
                        return log_error("out of memory");
                for (size_t i = 0; closure[i]; i++)
                        if (!streq(closure[i], top->string) && strv_extend(&paths, closure[i]) < 0)
                                return log_error("out of memory");
                if (closure_add_root(paths[0], gcroot) < 0)
                        return log_error("registering the GC root %s failed", gcroot);
        } else if (a->closure) {
                if (read_closure_file(cage, a->closure, &paths) < 0)
                        return -1;
                for (size_t i = 0; paths[i]; i++)
                        if (access(paths[i], F_OK) < 0)
                                return log_error("--closure %s: %s is not in the Nix store", a->closure, paths[i]);
                if (closure_add_root(paths[0], gcroot) < 0)
                        return log_error("registering the GC root %s failed", gcroot);
        } else {
                ClosureRequest req = { .nixpkgs = s->nixpkgs, .packages = s->packages, .name = s->name,
                                       .data_dir = a->data_dir ? a->data_dir : PKGDATADIR };
                if ((r = closure_realise(&req, gcroot, &paths, &error)) < 0) {
                        (void) unlink(gcroot);
                        return log_error("building the closure failed: %s", error ? error : strerror(-r));
                }
        }
        if ((r = cage_spec_set_closure(s, paths, &bad)) < 0) {
                (void) unlink(gcroot);
                return log_error("closure: %s", bad ? bad : "empty");
        }
        if (protect_git(s) < 0) {
                (void) unlink(gcroot);
                return -1;
        }
        _cleanup_free_ char *audit = NULL;
        if (project_audit_start(s, &audit) < 0) {
                (void) unlink(gcroot);
                return -1;
        }
        /* The binds below the project were added just now: stage them too. */
        if (check_idmap(s) < 0) {
                (void) unlink(gcroot);
                return -1;
        }
        if ((r = set_cage_paths(s, uid_base)) < 0) {
                (void) unlink(gcroot);
                return log_error("out of memory");
        }

        /* The rootfs, under a temporary name, then published. */
        RootfsPlan plan = {};
        if ((r = rootfs_plan_build(s, &plan)) < 0 || (r = state_begin_cage(h->state_fd, s->name, &cage_fd, &tmp)) < 0) {
                rootfs_plan_done(&plan);
                (void) unlink(gcroot);
                return log_error("%s: preparing the cage: %s", STATE_DIR, strerror(-r));
        }
        (void) flock(cage_fd, LOCK_EX);
        _cleanup_close_ int rootfd = openat(cage_fd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        r = rootfd < 0 ? -errno : rootfs_apply(&plan, rootfd, &bad);
        rootfs_plan_done(&plan);
        CageRecord rec = { .name = s->name, .project = s->project, .user = s->user.name, .uid = s->user.uid, .unit = unit,
                           .toplevel = s->toplevel, .helper = getpid(), .keep = a->keep, .declared = a->declared != NULL,
                           .created_usec = (uint64_t) time(NULL) * 1000000ULL, .n_store_paths = (unsigned) strv_length(s->store_paths),
                           .uid_base = uid_base };
        _cleanup_free_ char *state_path = NULL;
        _cleanup_strv_free_ char **state_entries = NULL;
        if (r >= 0 && s->persist && s->state_files) {
                if (state_copy_in(s, rootfd, &state_path, &state_entries) < 0) {
                        _cleanup_free_ char *busy = NULL;
                        (void) state_remove_dir(h->state_fd, tmp, &busy);
                        (void) unlink(gcroot);
                        return -1;
                }
                rec.state_dir = state_path;
                rec.state_home = s->user.home;
                rec.state_files = state_entries;
        }
        if (r >= 0)
                r = write_file_atomic_at(cage_fd, PROJECT_AUDIT_FILE, audit, 0600);
        if (r >= 0)
                r = state_write_record(cage_fd, &rec);
        if (r >= 0)
                r = state_commit_cage(h->state_fd, tmp, s->name);
        if (r < 0) {
                _cleanup_free_ char *busy = NULL;
                log_error("rendering the rootfs%s%s: %s", bad ? " at " : "", strempty(bad),
                          r == -EEXIST ? "a cage of that name appeared meanwhile" : strerror(-r));
                (void) state_remove_dir(h->state_fd, tmp, &busy);
                (void) unlink(gcroot);
                return -1;
        }

        if (stage_mounts(s) < 0) {
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }
        _cleanup_free_ char *cage_dir = strdup_printf("%s/cages/%s", STATE_DIR, s->name);
        if (!cage_dir || (r = display_stage(display, cage_fd, cage_dir, s)) < 0) {
                log_error("%s/display: forwarding the display: %s", strempty(cage_dir), strerror(cage_dir ? -r : ENOMEM));
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }
        _cleanup_free_ char *fwd_error = NULL;
        if ((r = forward_stage(fwd, cage_fd, cage_dir, s, &fwd_error)) < 0) {
                log_error("%s/forward: %s", cage_dir, fwd_error ? fwd_error : strerror(-r));
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }

        _cleanup_free_ char *text = NULL;
        if ((r = settings_render(s, &text, &bad)) < 0) {
                if (r == -EPERM)
                        log_error("Bind=%s: a bind must come from its staging mount, and it has none", strempty(bad));
                else
                        log_error("cannot write '%s' safely into a .nspawn file", strempty(bad));
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }
        (void) mkdir("/run/systemd", 0755);
        (void) mkdir(SETTINGS_DIR, 0755);
        _cleanup_close_ int sfd = open(SETTINGS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *sname = strdup_printf("%s.nspawn", s->name);
        /* nspawn reads it as root; nobody else needs the cage's paths and ids. */
        if (sfd < 0 || !sname || (r = write_file_atomic_at(sfd, sname, text, 0600)) < 0) {
                log_error("%s: %s", settings, strerror(sfd < 0 ? errno : -r));
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }

        _cleanup_free_ char *rootfs = strdup_printf("%s/cages/%s/rootfs", STATE_DIR, s->name);
        CageUnit cu = { .spec = s, .unit = unit, .nspawn = NSPAWN_PATH, .rootfs = rootfs, .unified_cgroup = true,
                        .uid_lock_fd = uid_lock_fd };
        if (!rootfs)
                return log_error("out of memory");
        if (!cgroup_is_unified("/"))
                fprintf(stderr, "nspawn-cage: note: this host has cgroup v1 controllers: Swap= (MemorySwapMax=) and MemoryHigh= "
                                "cannot be enforced here; Memory=, CPUs= and Tasks= are, by the v1 memory, cpu and pids controllers.\n");
        if ((r = bus_start_cage(h->bus, h->event, &cu, a->timeout_usec, &error)) < 0) {
                log_error("starting cage %s: %s", s->name, error ? error : strerror(-r));
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }
        if (s->network == NETWORK_PRIVATE && network_up(h, s) < 0) {
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }
        if (fwd->ssh_listen_fd >= 0 && relay_up(h, s, unit, fwd) < 0) {
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }
        /* nspawn has bound them into the cage: the host needs them no more. */
        if ((r = staging_umount(s->name)) < 0)
                fprintf(stderr, "nspawn-cage: note: %s: cannot detach a staging mount (%s); stop or gc removes it\n", s->project_staged, strerror(-r));
        if ((r = display_unstage(cage_fd)) < 0 || (r = forward_unstage(cage_fd)) < 0) {
                log_error("%s: detaching the staged sockets and files: %s", cage_dir, strerror(-r));
                cage_teardown_keep_lock(h, s->name);
                return -1;
        }
        *ret_lock_fd = TAKE_FD(cage_fd);
        return 0;
}

/* [State] Directory=: made in the user's state directory, as the user, and
 * bound into the cage's home. */
static int state_prepare(CageSpec *s) {
        if (!s->persist)
                return 0;
        _cleanup_close_ int sfd = -1;
        _cleanup_free_ char *path = NULL;
        const char *bad = NULL;
        int r = agent_state_open(&s->user, s->preset, &sfd, &path);
        if (r < 0)
                return log_error("agent state of preset %s in %s/.local/state/nspawn-cage: %s%s", s->preset, s->user.home, strerror(-r),
                                 r == -EPERM ? " (a directory there is not yours; fix its owner or set [State] Persist=no)" : "");
        if ((r = agent_state_make_dirs(&s->user, sfd, s->state_dirs, &bad)) < 0)
                return log_error("agent state %s/%s: %s", path, strempty(bad), strerror(-r));
        if (cage_spec_add_state_binds(s, path) < 0)
                return log_error("out of memory");
        return 0;
}

/* [Network] Allow=: each name as the host resolves it now, before anything
 * of the cage is made; the answers are pinned in its /etc/hosts and its
 * nftables set, and stay until it stops. */
static int resolve_allow(CageSpec *s) {
        /* The caller's environment (sudo --preserve-env) must not steer the
         * host's resolver: an administrator's AllowEgress= names are his. */
        static const char *const resolver_env[] = { "LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES" };
        for (size_t i = 0; s->n_allow > 0 && i < ELEMENTSOF(resolver_env); i++)
                (void) unsetenv(resolver_env[i]);
        for (size_t i = 0; i < s->n_allow; i++) {
                NetworkAllow *a = &s->allow[i];
                const char *why = NULL;
                int r = network_resolve_ipv4(a->host, &a->addrs, &why);
                if (r == -ENOMEM)
                        return log_error("out of memory");
                if (r < 0)
                        return log_error("%s: Allow=%s:%u: %s does not resolve on the host (%s)%s; nothing was started: fix the name or remove it",
                                         a->where, a->host, (unsigned) a->port, a->host, strempty(why),
                                         r == -EAGAIN ? ", for now" : "");
        }
        return 0;
}

/* The cage gets a 64K uid range of its own, locked from the pick until the
 * unit holds the lock (as nspawn's stdin) and dropped on any failure. */
static int cage_start(Host *h, Cage *cage, const Args *a, const Display *display, Forward *fwd, int *ret_lock_fd) {
        uid_t base;
        int uid_lock = -1;
        if (state_prepare(cage->spec) < 0 || check_idmap(cage->spec) < 0) /* fail early, before any build */
                return -1;
        if (resolve_allow(cage->spec) < 0)
                return -1;
        if (cage->spec->network == NETWORK_HOST)
                fprintf(stderr, "nspawn-cage: warning: Mode=host: cage %s shares the host's network namespace: every service listening on "
                                "the host's loopback and the host's abstract UNIX sockets (X11's @/tmp/.X11-unix/X0, D-Bus session buses, ...) "
                                "are reachable from it\n", cage->spec->name);
        int r = idmap_pick_range(NULL, cage->spec->name, &base, &uid_lock);
        if (r < 0)
                return log_error("%s: no free 64K uid range for the cage's user namespace: %s", IDMAP_LOCK_DIR,
                                 r == -EBUSY ? "all tried are in use" : strerror(-r));
        r = cage_start_locked(h, cage, a, display, fwd, base, uid_lock, ret_lock_fd);
        if (r < 0)
                idmap_release_range(NULL, base, uid_lock);
        else
                close(uid_lock);
        return r;
}

/* X11=, Wayland=, GPU=: find and verify the user's session from the
 * environment sudo kept (DISPLAY and XAUTHORITY by default; WAYLAND_DISPLAY
 * and XDG_RUNTIME_DIR with --preserve-env), before anything is made. */
static int open_display(const Cage *cage, Display *ret) {
        const CageSpec *s = cage->spec;
        if (!s->x11 && !s->wayland && !s->gpu)
                return 0;
        char host[256] = "";
        (void) gethostname(host, sizeof host - 1);
        DisplayEnv env = { .display = getenv("DISPLAY"), .xauthority = getenv("XAUTHORITY"),
                           .wayland_display = getenv("WAYLAND_DISPLAY"), .xdg_runtime_dir = getenv("XDG_RUNTIME_DIR"),
                           .hostname = host };
        const Setting *trusted = &cage->config->settings[SETTING_X11_TRUSTED];
        _cleanup_free_ char *error = NULL;
        int r = display_open(s, &env, trusted->number, ret, &error);
        if (r < 0)
                return log_error("%s", error ? error : strerror(-r));
        return 0;
}

/* SSHAgent=, GitConfig=: open what is forwarded as the user, before
 * anything is made; errors name the line that asked for it. */
static int open_forward(const Cage *cage, Forward *f) {
        const CageSpec *s = cage->spec;
        _cleanup_free_ char *error = NULL;
        int r;
        if (s->ssh_agent && (r = forward_open_ssh_agent(&s->user, getenv("SSH_AUTH_SOCK"), f, &error)) < 0) {
                const Origin *o = &cage->config->settings[SETTING_SSH_AGENT].origin;
                return log_error("%s:%u: SSHAgent=yes: %s", strempty(o->file), o->line, error ? error : strerror(-r));
        }
        if (s->git_config && (r = forward_open_git(&s->user, f, &error)) < 0) {
                const Origin *o = &cage->config->settings[SETTING_GIT_CONFIG].origin;
                return log_error("%s:%u: %s", strempty(o->file), o->line, error ? error : strerror(-r));
        }
        return 0;
}

/* Keep the values of Pass= for the shells opened into the cage later
 * (root's, 0600, on tmpfs; removed with the cage). */
static int keep_environment(Host *h, const CageSpec *s, char *const *passed) {
        int r = state_save_environment(ENVIRONMENT_DIR, s->name, passed);
        if (r < 0) {
                log_error("%s/%s: keeping the environment for later shells: %s", ENVIRONMENT_DIR, s->name, strerror(-r));
                cage_teardown(h, s->name);
                return -1;
        }
        return 0;
}

/* Start a cage with what it takes from the caller: the values of Pass=,
 * the display and the forwards (dropped once the cage holds its own), and
 * keep the values for later shells. Returns them and the locked cage dir. */
static int cage_launch(Host *h, Cage *cage, const Args *a, char ***ret_passed, int *ret_lock_fd) {
        _cleanup_(strv_free_erasep) char **passed = NULL;
        if (passed_environment(cage, &passed) < 0)
                return -1;
        _cleanup_(display_done) Display display = DISPLAY_NULL;
        if (open_display(cage, &display) < 0)
                return -1;
        _cleanup_(forward_done) Forward fwd = FORWARD_NULL;
        if (open_forward(cage, &fwd) < 0)
                return -1;
        _cleanup_close_ int lock_fd = -1;
        if (cage_start(h, cage, a, &display, &fwd, &lock_fd) < 0)
                return -1;
        display_done(&display); /* the cage holds what it needs: drop the sockets and the cookie */
        forward_done(&fwd);
        if (keep_environment(h, cage->spec, passed) < 0)
                return -1;
        *ret_passed = TAKE_PTR(passed);
        *ret_lock_fd = TAKE_FD(lock_fd);
        return 0;
}

/* The cage runs on without the nspawn-cage that started it: its record
 * names no helper any more, so gc does not wait for that pid. */
static void record_detached(Host *h, const char *name, int cage_fd) {
        CageRecord rec = {};
        if (state_read_record(h->state_fd, name, &rec) < 0)
                return;
        rec.helper = 0;
        (void) state_write_record(cage_fd, &rec);
        cage_record_done(&rec);
}

static char **default_command(const Args *a) {
        return a->command;
}

static int verb_run(const Args *a) {
        _cleanup_(cage_done) Cage cage = {};
        _cleanup_(host_done) Host h = { .state_fd = -1 };
        if (require_root() < 0 || cage_load(&cage, a) < 0)
                return 1;
        CageSpec *s = cage.spec;
        if (s->user.uid == 0)
                return log_error("the cage's user would be root; run nspawn-cage through sudo as the user who owns the project"), 1;
        if (declared_name_refuse(a, s->name) < 0)
                return 1;
        if (host_open(&h) < 0 || check_machined(&h) < 0)
                return 1;

        _cleanup_strv_free_ char **shell = NULL;
        if (strv_extend(&shell, "bash") < 0 || strv_extend(&shell, "-l") < 0)
                return log_error("out of memory"), 1;
        char *const *command = default_command(a) ? default_command(a) : a->shell ? shell : s->command;

        CageRecord rec = {};
        if (state_read_record(h.state_fd, s->name, &rec) >= 0) {
                bool mine = rec.uid == s->user.uid;
                bool running = cage_running(&h, &rec);
                bool busy = cage_locked(&h, s->name);
                cage_record_done(&rec);
                if (!mine)
                        return log_error("a cage named %s belongs to another user; choose another --name", s->name), 1;
                if (running) {
                        /* A second start on a running cage attaches to it. */
                        if (!s->toplevel) {
                                char **p = NULL;
                                CageRecord r2 = {};
                                if (state_read_record(h.state_fd, s->name, &r2) >= 0 && r2.toplevel && strv_extend(&p, r2.toplevel) >= 0) {
                                        _cleanup_free_ char *bad = NULL;
                                        (void) cage_spec_set_closure(s, p, &bad);
                                }
                                strv_free(p);
                                cage_record_done(&r2);
                        }
                        _cleanup_(strv_free_erasep) char **passed = NULL;
                        if (passed_environment(&cage, &passed) < 0)
                                return 1;
                        int st = attach(&h, s, command, passed);
                        return st < 0 ? 1 : st;
                }
                if (busy)
                        return log_error("cage %s is being started or stopped by another nspawn-cage; try again", s->name), 1;
                if (cage_teardown(&h, s->name) < 0)
                        return log_error("cage %s left state that could not be removed; see above, then run 'nspawn-cage gc'", s->name), 1;
        }

        _cleanup_(strv_free_erasep) char **passed = NULL;
        _cleanup_close_ int lock_fd = -1;
        if (cage_launch(&h, &cage, a, &passed, &lock_fd) < 0)
                return 1;
        int status = attach(&h, s, command, passed);
        if (a->keep) {
                record_detached(&h, s->name, lock_fd);
                fprintf(stderr, "nspawn-cage: cage %s keeps running: 'nspawn-cage shell %s', 'machinectl shell %s@%s', 'nspawn-cage stop %s'\n",
                        s->name, s->name, s->user.name, s->name, s->name);
        } else if (cage_teardown(&h, s->name) < 0)
                status = status ? status : 1;
        return status < 0 ? 1 : status;
}

/* The presets a user can pick with Preset=: their own first, then the
 * shipped ones (a user preset of the same name wins, as in load_preset). */
static int verb_presets(const Args *a) {
        _cleanup_(host_user_done) HostUser user = {};
        if (invoking_user(&user) < 0)
                return 1;
        _cleanup_free_ char *user_dir = strdup_printf("%s/.config/nspawn-cage/presets", user.home);
        _cleanup_free_ char *sys_dir = strdup_printf("%s/templates/presets", a->data_dir ? a->data_dir : PKGDATADIR);
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
                        ConfigError err = {};
                        if (fd >= 0 && config_read_fd(fd, &data, &size) >= 0 && preset_parse(path, data, size, &p, &err) >= 0) {
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
                                fprintf(stderr, "nspawn-cage: %s:%u: %s\n", path, err.line, err.message ? err.message : "cannot be read");
                        preset_done(&p);
                        config_error_done(&err);
                        free(list[i]);
                }
                free(list);
                user_fs_leave(&id);
        }
        return 0;
}

/* A cage declared by the administrator (the NixOS module writes them):
 * started and left running, for nspawn-cage@NAME.service. */
static int verb_start(const Args *a) {
        _cleanup_(cage_done) Cage cage = {};
        _cleanup_(host_done) Host h = { .state_fd = -1 };
        if (require_root() < 0)
                return 1;
        if (invoked_through_sudo())
                return log_error("start is for declared cages and runs as root (systemctl start nspawn-cage@%s)", a->project), 1;
        if (!machine_name_is_valid(a->project))
                return log_error("start NAME: '%s' is not a valid cage name", a->project), 1;
        _cleanup_free_ char *file = strdup_printf("%s/cages/%s.conf", a->admin_dir ? a->admin_dir : ADMIN_DIR, a->project);
        if (!file)
                return 1;
        if (access(file, F_OK) < 0)
                return log_error("no declared cage %s: %s does not exist", a->project, file), 1;
        Args b = *a;
        b.declared = file;
        b.name = a->project;
        b.keep = true;
        b.project = NULL;
        if (cage_load(&cage, &b) < 0 || host_open(&h) < 0 || check_machined(&h) < 0)
                return 1;
        if (cage.spec->user.uid == 0)
                return log_error("%s: User=root is refused; a cage's user must not be root", file), 1;
        CageRecord rec = {};
        if (state_read_record(h.state_fd, cage.spec->name, &rec) >= 0) {
                bool running = cage_running(&h, &rec);
                /* Only this declared cage (kind and user) is "already running":
                 * anything else of that name is not the administrator's. */
                bool same = rec.declared && rec.uid == cage.spec->user.uid;
                if (running && !same) {
                        log_error("a cage named %s is running, but it is %s's %s cage (uid %u, project %s), not the one declared in %s (User=%s); "
                                  "not taking it for that: stop it with 'nspawn-cage stop %s', then start again",
                                  rec.name, rec.user, rec.declared ? "declared" : "ad hoc", (unsigned) rec.uid, rec.project, file,
                                  cage.spec->user.name, rec.name);
                        cage_record_done(&rec);
                        return 1;
                }
                cage_record_done(&rec);
                if (running) {
                        printf("cage %s is already running\n", cage.spec->name);
                        return 0;
                }
                if (cage_teardown(&h, cage.spec->name) < 0)
                        return 1;
        }
        /* The values of Pass= (from File= or EnvironmentFile= of the
         * unit) are kept for the shells opened into the cage later. */
        _cleanup_(strv_free_erasep) char **kept = NULL;
        _cleanup_close_ int lock_fd = -1;
        if (cage_launch(&h, &cage, &b, &kept, &lock_fd) < 0)
                return 1;
        record_detached(&h, cage.spec->name, lock_fd);
        printf("cage %s started: 'machinectl shell %s@%s', 'nspawn-cage stop %s'\n", cage.spec->name, cage.spec->user.name,
               cage.spec->name, cage.spec->name);
        return 0;
}

/* The cage the verb names (NAME of a cage of the caller's, or a PROJECT
 * directory that has one), after checking for root and opening the host:
 * the start of every verb that acts on one cage. */
static int open_cage(Host *h, const Args *a, CageRecord *ret) {
        _cleanup_(host_user_done) HostUser user = {};
        const char *what = a->project;
        if (require_root() < 0 || host_open(h) < 0 || invoking_user(&user) < 0)
                return -1;
        if (!machine_name_is_valid(what) || strchr(what, '/') || state_read_record(h->state_fd, what, ret) < 0) {
                _cleanup_(cage_done) Cage cage = {};
                if (cage_load(&cage, a) < 0)
                        return -1;
                if (state_read_record(h->state_fd, cage.spec->name, ret) < 0)
                        return log_error("no cage named %s, and no running cage for that project; 'nspawn-cage list' shows them", what);
        }
        if (user.uid != 0 && ret->uid != user.uid) {
                cage_record_done(ret);
                return log_error("cage %s belongs to another user", what);
        }
        if (user.uid == 0 && cage_owner_check(a, ret) < 0) {
                cage_record_done(ret);
                return -1;
        }
        return 0;
}

static int verb_shell(const Args *a) {
        _cleanup_(host_done) Host h = { .state_fd = -1 };
        CageRecord rec = {};
        if (open_cage(&h, a, &rec) < 0)
                return 1;
        if (!cage_running(&h, &rec)) {
                log_error("cage %s is not running; start it with 'nspawn-cage --keep %s'", rec.name, rec.project);
                cage_record_done(&rec);
                return 1;
        }
        CageSpec s = { .name = rec.name, .project = rec.project, .toplevel = rec.toplevel };
        _cleanup_(host_user_done) HostUser owner = {};
        if (host_user_from_uid(rec.uid, &owner) < 0) {
                cage_record_done(&rec);
                return log_error("the cage's user (uid %u) no longer exists", (unsigned) rec.uid), 1;
        }
        s.user = owner;
        _cleanup_(strv_free_erasep) char **kept = NULL;
        int r = state_load_environment(ENVIRONMENT_DIR, rec.name, &kept);
        if (r < 0) {
                log_error("%s/%s: %s", ENVIRONMENT_DIR, rec.name, r == -EPERM ? "not root's or readable by others; ignored" : strerror(-r));
                kept = NULL;
        }
        char *shell[] = { "bash", "-l", NULL };
        int st = attach(&h, &s, a->command ? a->command : shell, kept);
        cage_record_done(&rec);
        return st < 0 ? 1 : st;
}

static int verb_stop(const Args *a) {
        _cleanup_(host_done) Host h = { .state_fd = -1 };
        CageRecord rec = {};
        if (open_cage(&h, a, &rec) < 0)
                return 1;
        int r = cage_teardown(&h, rec.name);
        cage_record_done(&rec);
        return r < 0 ? 1 : 0;
}

/* Change the limits of a running cage, bounded by the administrator's
 * [Policy] like any configuration. Runtime only: a restart uses the files. */
static int verb_set(const Args *a) {
        _cleanup_(host_done) Host h = { .state_fd = -1 };
        _cleanup_(config_freep) Config *policy = NULL;
        CageRecord rec = {};
        if (open_cage(&h, a, &rec) < 0)
                return 1;
        _cleanup_free_ char *unit = strdup(rec.unit), *name = strdup(rec.name);
        cage_record_done(&rec);
        if (!unit || !name || config_new(&policy) < 0 || load_admin_layer(policy, a->admin_dir ? a->admin_dir : ADMIN_DIR) < 0)
                return 1;
        static const struct { const char *key; unsigned mask; SettingId max; } keys[] = {
                { "Memory", LIMIT_MEMORY, SETTING_MAX_MEMORY }, { "Swap", LIMIT_SWAP, SETTING_MAX_SWAP },
                { "CPUs", LIMIT_CPUS, SETTING_MAX_CPUS }, { "Tasks", LIMIT_TASKS, SETTING_MAX_TASKS },
        };
        uint64_t v[4] = {};
        unsigned mask = 0;
        for (size_t i = 0; a->assignments && a->assignments[i]; i++) {
                const char *as = a->assignments[i], *eq = strchr(as, '=');
                size_t k = 0;
                while (k < ELEMENTSOF(keys) && !(eq && strlen(keys[k].key) == (size_t) (eq - as) && strncmp(as, keys[k].key, (size_t) (eq - as)) == 0))
                        k++;
                if (k == ELEMENTSOF(keys))
                        return log_error("set %s: '%s': expected Memory=, Swap=, CPUs= or Tasks=", name, as), 1;
                int r = k == 2 ? parse_cpus(eq + 1, &v[k]) : k == 3 ? parse_count(eq + 1, &v[k]) : parse_size(eq + 1, &v[k]);
                if (r < 0)
                        return log_error("set %s: %s: not a valid value (see nspawn-cage.conf(5))", name, as), 1;
                if (k == 0 && v[k] < (UINT64_C(16) << 20))
                        return log_error("set %s: Memory=%s is too small; a cage needs at least 16M", name, eq + 1), 1;
                const Setting *mx = &policy->settings[keys[k].max];
                if (v[k] > mx->number) {
                        _cleanup_free_ char *lim = setting_format_value(policy, keys[k].max);
                        return log_error("set %s: %s asks for more than allowed: the administrator's maximum is %s=%s (%s:%u)",
                                         name, as, setting_key(keys[k].max), strempty(lim), strempty(mx->origin.file), mx->origin.line), 1;
                }
                mask |= keys[k].mask;
        }
        if (!mask)
                return log_error("set %s: give at least one of Memory=, Swap=, CPUs=, Tasks=", name), 1;
        _cleanup_free_ char *error = NULL;
        int r = bus_set_limits(h.bus, unit, mask, v[0], v[1], v[2], v[3], &error);
        if (r < 0)
                return log_error("set %s: %s", name, error ? error : strerror(-r)), 1;
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

static int verb_status(const Args *a) {
        _cleanup_(host_done) Host h = { .state_fd = -1 };
        CageRecord rec = {};
        if (open_cage(&h, a, &rec) < 0)
                return 1;
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
        StrBuf b = {};
        if (a->json) {
                strbuf_append(&b, "{\"name\":");
                strbuf_append_json(&b, rec.name);
                strbuf_append(&b, ",\"state\":");
                strbuf_append_json(&b, running ? "running" : strempty(state));
                strbuf_append(&b, ",\"project\":");
                strbuf_append_json(&b, rec.project);
                strbuf_append(&b, ",\"user\":");
                strbuf_append_json(&b, rec.user);
                strbuf_append(&b, ",\"unit\":");
                strbuf_append_json(&b, rec.unit);
                strbuf_append(&b, ",\"toplevel\":");
                strbuf_append_json(&b, rec.toplevel);
                strbuf_appendf(&b, ",\"store_paths\":%u,\"uptime_sec\":%" PRIu64, rec.n_store_paths, since ? now - since : 0);
#define NUM(k, v) strbuf_appendf(&b, ",\"" k "\":%s%" PRIu64 "%s", (v) == UINT64_MAX ? "null" : "", (v) == UINT64_MAX ? (uint64_t) 0 : (v), "")
                if (u.memory_current == UINT64_MAX) strbuf_append(&b, ",\"memory_current\":null"); else NUM("memory_current", u.memory_current);
                if (u.memory_max == UINT64_MAX) strbuf_append(&b, ",\"memory_max\":null"); else NUM("memory_max", u.memory_max);
                if (u.cpu_usage_nsec == UINT64_MAX) strbuf_append(&b, ",\"cpu_usage_nsec\":null"); else NUM("cpu_usage_nsec", u.cpu_usage_nsec);
                if (u.cpu_quota_per_sec_usec == UINT64_MAX) strbuf_append(&b, ",\"cpu_quota_per_sec_usec\":null"); else NUM("cpu_quota_per_sec_usec", u.cpu_quota_per_sec_usec);
                if (u.tasks_current == UINT64_MAX) strbuf_append(&b, ",\"tasks_current\":null"); else NUM("tasks_current", u.tasks_current);
                if (u.tasks_max == UINT64_MAX) strbuf_append(&b, ",\"tasks_max\":null"); else NUM("tasks_max", u.tasks_max);
                if (ooms == UINT64_MAX) strbuf_append(&b, ",\"oom_kills\":null"); else NUM("oom_kills", ooms);
#undef NUM
                strbuf_append(&b, "}\n");
        } else {
                strbuf_appendf(&b, "%s (%s)\n", rec.name, running ? "running" : strempty(state));
                strbuf_appendf(&b, "%12s: %s\n%12s: %s (uid %u)\n%12s: %s\n", "project", rec.project, "user", rec.user, (unsigned) rec.uid, "unit", rec.unit);
                if (since)
                        strbuf_appendf(&b, "%12s: %" PRIu64 " s\n", "uptime", now - since);
                format_usage(&b, "memory", u.memory_current, u.memory_max, true);
                strbuf_appendf(&b, "%12s: %.2f s", "cpu time", u.cpu_usage_nsec == UINT64_MAX ? 0.0 : (double) u.cpu_usage_nsec / 1e9);
                if (u.cpu_quota_per_sec_usec != UINT64_MAX)
                        strbuf_appendf(&b, " (quota %.2f CPUs)", (double) u.cpu_quota_per_sec_usec / 1e6);
                strbuf_append(&b, "\n");
                format_usage(&b, "tasks", u.tasks_current, u.tasks_max, false);
                if (ooms != UINT64_MAX)
                        strbuf_appendf(&b, "%12s: %" PRIu64 "\n", "oom kills", ooms);
                else
                        strbuf_appendf(&b, "%12s: unknown\n", "oom kills");
                strbuf_appendf(&b, "%12s: %u under %s\n", "store paths", rec.n_store_paths, strempty(rec.toplevel));
        }
        cage_record_done(&rec);
        _cleanup_free_ char *text = NULL;
        if (strbuf_steal(&b, &text) < 0)
                return 1;
        fputs(text, stdout);
        return 0;
}

static int verb_list(const Args *a) {
        _cleanup_(host_done) Host h = { .state_fd = -1 };
        _cleanup_(host_user_done) HostUser user = {};
        _cleanup_strv_free_ char **names = NULL;
        if (require_root() < 0 || host_open(&h) < 0 || invoking_user(&user) < 0)
                return 1;
        if (state_list(h.state_fd, &names) < 0)
                return log_error("%s/cages: cannot list", STATE_DIR), 1;
        StrBuf b = {};
        if (a->json)
                strbuf_append(&b, "[");
        else
                strbuf_appendf(&b, "%-32s %-10s %-10s %s\n", "NAME", "USER", "STATE", "PROJECT");
        bool first = true;
        for (size_t i = 0; names && names[i]; i++) {
                CageRecord rec = {};
                if (state_read_record(h.state_fd, names[i], &rec) < 0)
                        continue;
                if (user.uid != 0 && rec.uid != user.uid) {
                        cage_record_done(&rec);
                        continue;
                }
                const char *state = cage_running(&h, &rec) ? "running" : "stale";
                if (a->json) {
                        strbuf_append(&b, first ? "\n  {\"name\":" : ",\n  {\"name\":");
                        strbuf_append_json(&b, rec.name);
                        strbuf_append(&b, ",\"user\":");
                        strbuf_append_json(&b, rec.user);
                        strbuf_append(&b, ",\"state\":");
                        strbuf_append_json(&b, state);
                        strbuf_append(&b, ",\"project\":");
                        strbuf_append_json(&b, rec.project);
                        strbuf_append(&b, ",\"unit\":");
                        strbuf_append_json(&b, rec.unit);
                        strbuf_append(&b, "}");
                } else
                        strbuf_appendf(&b, "%-32s %-10s %-10s %s\n", rec.name, rec.user, state, rec.project);
                first = false;
                cage_record_done(&rec);
        }
        if (a->json)
                strbuf_append(&b, first ? "]\n" : "\n]\n");
        _cleanup_free_ char *text = NULL;
        if (strbuf_steal(&b, &text) < 0)
                return 1;
        fputs(text, stdout);
        return 0;
}

/* Remove what crashed helpers and killed cages left: unlocked cages whose
 * unit is gone (or that were not to be kept), temporary directories,
 * orphaned settings files, GC roots and units. */
static bool cage_dir_exists(const char *name, void *userdata) {
        Host *h = userdata;
        _cleanup_free_ char *dir = strdup_printf("cages/%s", name);
        struct stat st;
        return !dir || fstatat(h->state_fd, dir, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int verb_gc(const Args *a) {
        _cleanup_(host_done) Host h = { .state_fd = -1 };
        _cleanup_strv_free_ char **names = NULL, **tmps = NULL;
        int ret = 0, removed = 0;
        (void) a;
        if (require_root() < 0 || host_open(&h) < 0)
                return 1;
        if (invoked_through_sudo())
                return log_error("gc acts on every user's cages: run it as root, not through sudo"), 1;
        (void) state_list(h.state_fd, &names);
        for (size_t i = 0; names && names[i]; i++) {
                CageRecord rec = {};
                bool bad = state_read_record(h.state_fd, names[i], &rec) < 0;
                bool stale = bad || (!cage_locked(&h, names[i]) && (!cage_running(&h, &rec) || !rec.keep));
                cage_record_done(&rec);
                if (!stale)
                        continue;
                if (cage_teardown(&h, names[i]) < 0)
                        ret = -1;
                else {
                        printf("removed cage %s\n", names[i]);
                        removed++;
                }
        }
        /* Network leases (and their nftables tables) of cages that are gone. */
        unsigned n_leases = 0;
        int rn = network_gc(NULL, cage_dir_exists, &h, &n_leases);
        if (rn < 0)
                ret = log_error("%s: cannot clean up: %s", NETWORK_LEASE_DIR, strerror(-rn));
        removed += (int) n_leases;
        /* Lock files of uid ranges whose cage is gone (nobody holds them). */
        unsigned n_locks = 0;
        int rl = idmap_gc_locks(NULL, &n_locks);
        if (rl < 0)
                ret = log_error("%s: cannot clean up: %s", IDMAP_LOCK_DIR, strerror(-rl));
        removed += (int) n_locks;
        (void) state_list_temporary(h.state_fd, &tmps);
        for (size_t i = 0; tmps && tmps[i]; i++) {
                _cleanup_free_ char *rel = strdup_printf("cages/%s", tmps[i]), *busy = NULL;
                _cleanup_close_ int fd = rel ? openat(h.state_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
                if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue; /* a start in progress */
                if (state_remove_dir(h.state_fd, rel, &busy) < 0)
                        ret = log_error("%s/%s: cannot remove%s%s", STATE_DIR, rel, busy ? ", mounted: " : "", strempty(busy));
                else
                        removed++;
        }
        /* Settings files and GC roots of cages that no longer exist. */
        const char *dirs[] = { SETTINGS_DIR, STATE_DIR "/gcroots" };
        for (size_t k = 0; k < ELEMENTSOF(dirs); k++) {
                DIR *d = opendir(dirs[k]);
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        _cleanup_free_ char *name = strdup(de->d_name);
                        if (!name || name[0] == '.')
                                continue;
                        if (k == 0) {
                                size_t l = strlen(name);
                                if (l < 8 || !streq(name + l - 7, ".nspawn"))
                                        continue;
                                name[l - 7] = 0;
                                _cleanup_free_ char *p = strdup_printf("%s/%s", dirs[k], de->d_name);
                                char head[128] = "";
                                FILE *f = p ? fopen(p, "re") : NULL;
                                if (f) {
                                        if (!fgets(head, sizeof head, f))
                                                head[0] = 0;
                                        fclose(f);
                                }
                                if (!strstr(head, "written by nspawn-cage"))
                                        continue; /* not ours */
                        }
                        _cleanup_free_ char *cdir = strdup_printf("cages/%s", name);
                        struct stat st;
                        if (!cdir || fstatat(h.state_fd, cdir, &st, AT_SYMLINK_NOFOLLOW) == 0)
                                continue;
                        _cleanup_free_ char *p = strdup_printf("%s/%s", dirs[k], de->d_name);
                        if (p && unlink(p) == 0)
                                removed++;
                }
                if (d)
                        closedir(d);
        }
        printf("%d item%s removed\n", removed, removed == 1 ? "" : "s");
        return ret < 0 ? 1 : 0;
}

static void help(void) {
        printf("Usage: nspawn-cage [OPTIONS] [run] PROJECT [-- COMMAND...]\n"
               "       nspawn-cage [OPTIONS] VERB [ARGS]\n"
               "Run a coding agent in a systemd-nspawn container built from a Nix closure.\n\n"
               "Verbs:\n"
               "  [run] PROJECT [-- COMMAND...] Start a cage on PROJECT and run the agent (or COMMAND)\n"
               "                                in it on this terminal; the cage stops when it ends\n"
               "  start NAME                    Start the cage declared in %s/cages/NAME.conf\n"
               "  shell NAME|PROJECT [-- CMD]   Attach another terminal to a running cage\n"
               "  list [--json]                 List cages\n"
               "  presets                       List the presets Preset= can name\n"
               "  status NAME [--json]          State, project, uptime, use against the limits\n"
               "  set NAME KEY=VALUE...         Change Memory=, Swap=, CPUs=, Tasks= of a running cage\n"
               "  stop NAME                     Stop a cage and remove everything it left\n"
               "  gc                            Remove what crashed or killed cages left behind\n"
               "  config [--json] PROJECT       Show the effective settings and where each came from\n"
               "  render [--output DIR] PROJECT Write NAME.nspawn and NAME.rootfs without starting anything\n\n"
               "Options:\n"
               "  -h --help                     Show this help\n"
               "     --version                  Show the version\n"
               "     --shell                    Run a login shell instead of the agent\n"
               "     --preset NAME              The preset to use (instead of Preset= of your configuration)\n"
               "     --keep                     Keep the cage running after the command ends\n"
               "  -n --name NAME                Machine name (default: derived from the project path)\n"
               "     --timeout SECONDS          How long the cage may take to boot (default 120)\n"
               "     --json                     JSON output (config, list, status)\n"
               "  -o --output DIR               Where render writes (default: .)\n"
               "     --closure FILE             Store paths to use instead of building with Nix,\n"
               "                                one a line, the top-level path first\n"
               "     --admin-config-dir DIR     Read the administrator layer from DIR (not under sudo)\n"
               "     --user-config FILE         Read the user layer from FILE (not under sudo)\n"
               "     --data-dir DIR             Presets and Nix expressions from DIR (not under sudo)\n\n"
               "Configuration: %s/nspawn-cage.conf{,.d/*.conf}, ~/.config/nspawn-cage/config,\n"
               "PROJECT/.nspawn-cage.conf. See nspawn-cage(1) and nspawn-cage.conf(5).\n",
               ADMIN_DIR, ADMIN_DIR);
}

enum { ARG_VERSION = 0x100, ARG_JSON, ARG_CLOSURE, ARG_ADMIN_DIR, ARG_USER_CONFIG, ARG_DATA_DIR, ARG_KEEP, ARG_SHELL, ARG_TIMEOUT, ARG_PRESET };

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
        { "keep", no_argument, NULL, ARG_KEEP },
        { "shell", no_argument, NULL, ARG_SHELL },
        { "timeout", required_argument, NULL, ARG_TIMEOUT },
        { "preset", required_argument, NULL, ARG_PRESET },
        {}
};

static int parse_args(int argc, char **argv, Args *a) {
        int c;
        while ((c = getopt_long(argc, argv, "ho:n:", options, NULL)) >= 0) {
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
                case ARG_KEEP: a->keep = true; break;
                case ARG_SHELL: a->shell = true; break;
                case ARG_PRESET: a->preset = optarg; break;
                case ARG_TIMEOUT: {
                        uint64_t v;
                        if (parse_count(optarg, &v) < 0 || v == COUNT_INFINITY || v > 3600)
                                return log_error("--timeout %s: give seconds, 1 to 3600", optarg);
                        a->timeout_usec = v * 1000000ULL;
                        break;
                }
                default: return log_error("see 'nspawn-cage --help'");
                }
        }
        return 1;
}

int main(int argc, char **argv) {
        Args a = { .timeout_usec = 120 * 1000000ULL };
        /* Before any library looks at it: what sudo let through must not
         * steer the bus, the loader or Nix for root (hostenv.h). */
        if (hostenv_sanitize() < 0)
                return log_error("cannot clean the environment: %s", strerror(ENOMEM)), 1;
        /* Everything after "--" is the command for the cage, untouched. */
        int dashdash = argc;
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--")) {
                        dashdash = i;
                        break;
                }
        if (dashdash + 1 < argc)
                a.command = argv + dashdash + 1;
        argv[dashdash < argc ? dashdash : argc] = NULL;
        int r = parse_args(dashdash, argv, &a);
        if (r <= 0)
                return r < 0 ? 1 : 0;
        /* Options that name something root would take as given (store paths
         * to put into the cage, a configuration layer, presets and Nix
         * expressions) are the caller's choice: not through sudo. */
        const char *named = a.closure ? "--closure" : a.admin_dir ? "--admin-config-dir" : a.user_config ? "--user-config" : a.data_dir ? "--data-dir" : NULL;
        if (named && invoked_through_sudo())
                return log_error("%s is for tests and inspection and is refused under sudo: root would trust what it names%s", named,
                                 a.closure ? "; leave it out, and nspawn-cage builds the closure from the administrator's package set" : ""), 1;
        char **pos = argv + optind;
        int npos = dashdash - optind;
        typedef enum { TARGET_NONE, TARGET_PROJECT, TARGET_CAGE, TARGET_DECLARED } Target;
        static const struct {
                const char *name;
                int (*run)(const Args *a);
                Target target;
                bool command;
        } verbs[] = {
                { "run", verb_run, TARGET_PROJECT, true },
                { "start", verb_start, TARGET_DECLARED, false },
                { "set", verb_set, TARGET_CAGE, false },
                { "shell", verb_shell, TARGET_CAGE, true },
                { "list", verb_list, TARGET_NONE, false },
                { "presets", verb_presets, TARGET_NONE, false },
                { "status", verb_status, TARGET_CAGE, false },
                { "stop", verb_stop, TARGET_CAGE, false },
                { "gc", verb_gc, TARGET_NONE, false },
                { "config", verb_config, TARGET_PROJECT, false },
                { "render", verb_render, TARGET_PROJECT, false },
        };
        size_t v = 0; /* "run" when the first word is no verb */
        for (size_t i = 0; npos > 0 && i < ELEMENTSOF(verbs); i++)
                if (streq(pos[0], verbs[i].name)) {
                        v = i;
                        pos++;
                        npos--;
                        break;
                }
        a.verb = verbs[v].name;
        if (streq(a.verb, "set") && npos >= 2) {
                a.assignments = pos + 1;
                npos = 1;
        }
        static const char *const target_name[] = {
                [TARGET_PROJECT] = "PROJECT directory", [TARGET_CAGE] = "cage NAME or PROJECT", [TARGET_DECLARED] = "declared cage NAME",
        };
        if (verbs[v].target != TARGET_NONE && npos != 1)
                return log_error("%s needs exactly one %s; see 'nspawn-cage --help'", a.verb, target_name[verbs[v].target]), 1;
        if (verbs[v].target == TARGET_NONE && npos != 0)
                return log_error("%s takes no arguments", a.verb), 1;
        if (a.command && !verbs[v].command)
                return log_error("only run and shell take a COMMAND after --"), 1;
        if (a.preset && verbs[v].target != TARGET_PROJECT)
                return log_error("--preset is for run, config and render (a declared cage's preset is in its file)"), 1;
        a.project = verbs[v].target != TARGET_NONE ? pos[0] : NULL;
        return verbs[v].run(&a);
}
