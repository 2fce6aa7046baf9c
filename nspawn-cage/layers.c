/* layers.c: loading what a cage is made from (layers.h): the user, the
 * project as an fd, the administrator's, the user's and the project's
 * files, the preset, then the spec. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>

#include "layers.h"

void cage_done(Cage *c) {
        host_user_done(&c->user);
        if (c->project_fd >= 0)
                close(c->project_fd);
        config_free(c->config);
        cage_spec_free(c->spec);
        preset_done(&c->preset);
        *c = CAGE_NULL;
}

int invoking_user(const char *sudo_uid, HostUser *ret, CageError *err) {
        uid_t uid = getuid();
        if (geteuid() == 0 && sudo_uid) {
                char *end;
                errno = 0;
                unsigned long v = strtoul(sudo_uid, &end, 10);
                if (errno || *end || end == sudo_uid || v >= UINT32_MAX)
                        return cage_error_set(err, -EINVAL, "SUDO_UID=%s is not a user id; run nspawn-cage through sudo", sudo_uid);
                uid = (uid_t) v;
        }
        int r = host_user_from_uid(uid, ret);
        if (r < 0)
                return cage_error_set(err, r, "cannot look up the invoking user (uid %u): %s", (unsigned) uid, strerror(-r));
        return 0;
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

/* Open and merge one file into a layer (_LAYER_INVALID: a declared cage's
 * file). Missing files are fine. */
static int load_file(Config *c, Layer layer, int dirfd, const char *name, const char *label, bool follow, uid_t owner,
                     bool check_owner, CageError *err) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
        if (fd < 0)
                return errno == ENOENT ? 0 : cage_error_set(err, -errno, "%s %s", label, read_error_reason(-errno));
        struct stat st;
        if (check_owner && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid != owner)
                return cage_error_set(err, -EPERM, "%s %s", label, read_error_reason(-EPERM));
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = config_read_fd(fd, &data, &size);
        if (r < 0)
                return cage_error_set(err, r, "%s %s", label, read_error_reason(r));
        return layer == _LAYER_INVALID ? config_load_declared(c, label, data, size, err)
                                       : config_load_buffer(c, layer, label, data, size, err);
}

/* The file is read after the administrator's layer, as cage_load() reads
 * it, so that its values are checked against the administrator's [Policy]
 * (not the built-in one: AllowNetwork=host, raised maxima). */
int declared_identity(const char *admin_dir, const char *path, HostUser *ret_user, char **ret_project, CageError *err) {
        _cleanup_(config_freep) Config *c = NULL;
        int r;
        if (config_new(&c) < 0)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if ((r = load_admin_layer(c, admin_dir, err)) < 0 ||
            (r = load_file(c, _LAYER_INVALID, AT_FDCWD, path, path, true, 0, false, err)) < 0)
                return r;
        const Setting *u = &c->settings[SETTING_USER], *p = &c->settings[SETTING_PROJECT];
        if (!u->set || !p->set)
                return cage_error_set(err, -EINVAL, "%s: a declared cage needs [Cage] User= and Project=", path);
        errno = 0;
        struct passwd *pw = getpwnam(u->string);
        if (!pw)
                return cage_error_set(err, -ENOENT, "%s:%u: User=%s: no such user", path, u->origin.line, u->string);
        if (host_user_from_uid(pw->pw_uid, ret_user) < 0)
                return cage_error_set(err, -ENOENT, "cannot look up user %s", u->string);
        if (!(*ret_project = strdup(p->string)))
                return cage_error_set(err, -ENOMEM, "out of memory");
        return 0;
}

int load_admin_layer(Config *c, const char *dir, CageError *err) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return errno == ENOENT ? 0 : cage_error_set(err, -errno, "%s: %s", dir, strerror(errno));
        _cleanup_free_ char *main_label = strdup_printf("%s/nspawn-cage.conf", dir);
        _cleanup_free_ char *ddir = strdup_printf("%s/nspawn-cage.conf.d", dir);
        if (!main_label || !ddir)
                return cage_error_set(err, -ENOMEM, "out of memory");
        int r = load_file(c, LAYER_ADMIN, dfd, "nspawn-cage.conf", main_label, true, 0, false, err);
        if (r < 0)
                return r;
        struct dirent **list = NULL;
        int n = scandir(ddir, &list, NULL, alphasort);
        if (n < 0)
                return errno == ENOENT ? 0 : cage_error_set(err, -errno, "%s: %s", ddir, strerror(errno));
        _cleanup_close_ int ddfd = open(ddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (int i = 0; i < n; i++) {
                const char *e = list[i]->d_name;
                size_t l = strlen(e);
                if (r >= 0 && e[0] != '.' && l > 5 && streq(e + l - 5, ".conf")) {
                        _cleanup_free_ char *label = strdup_printf("%s/%s", ddir, e);
                        r = !label ? cage_error_set(err, -ENOMEM, "out of memory")
                          : ddfd < 0 ? cage_error_set(err, -EBADF, "%s: %s", ddir, strerror(EBADF))
                                     : load_file(c, LAYER_ADMIN, ddfd, e, label, true, 0, false, err);
                }
                free(list[i]);
        }
        free(list);
        return r < 0 ? r : 0;
}

/* The preset Preset= names: the user's own first, then the shipped ones. */
static int load_preset(Cage *cage, const LoadOptions *o, CageError *err) {
        const char *name = cage->config->settings[SETTING_PRESET].string;
        _cleanup_free_ char *user_dir = strdup_printf("%s/.config/nspawn-cage/presets", cage->user.home);
        _cleanup_free_ char *sys_dir = strdup_printf("%s/templates/presets", load_data_dir(o));
        _cleanup_free_ char *file = strdup_printf("%s.conf", name);
        if (!user_dir || !sys_dir || !file)
                return cage_error_set(err, -ENOMEM, "out of memory");
        const char *dirs[] = { user_dir, sys_dir };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_close_ int dfd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                _cleanup_close_ int fd = dfd < 0 ? -1 : openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd < 0)
                        continue;
                _cleanup_free_ char *label = strdup_printf("%s/%s", dirs[i], file), *data = NULL;
                size_t size;
                int r = config_read_fd(fd, &data, &size);
                if (r < 0)
                        return cage_error_set(err, r, "%s %s", strempty(label), read_error_reason(r));
                return preset_parse(label, data, size, &cage->preset, err);
        }
        const Origin *or = &cage->config->settings[SETTING_PRESET].origin;
        if (or->file)
                return cage_error_set(err, -ENOENT, "%s:%u: Preset=%s: no such preset in %s or %s; 'nspawn-cage presets' lists them",
                                      or->file, or->line, name, user_dir, sys_dir);
        return cage_error_set(err, -ENOENT, "preset '%s' not found in %s; reinstall nspawn-cage or set Preset=", name, sys_dir);
}

/* The project, opened once as the user (following the links of the path
 * the user gave, as realpath() would): its canonical path, a directory of
 * the user's that may be a project. Every later step uses the fd. */
static int open_project(Cage *cage, const char *arg, char ret_path[static PATH_MAX], CageError *err) {
        FsIdentity id;
        int r = user_fs_enter(&cage->user, &id);
        if (r < 0)
                return cage_error_set(err, r, "cannot take the file system identity of %s: %s", cage->user.name, strerror(-r));
        int fd = open(arg, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int saved = fd < 0 ? errno : 0;
        user_fs_leave(&id);
        if (fd < 0 && saved == ENOENT)
                return cage_error_set(err, -saved, "project %s does not exist; create it or give an existing directory", arg);
        if (fd < 0 && saved == ENOTDIR)
                return cage_error_set(err, -saved, "project %s is not a directory; give the project's directory", arg);
        if (fd < 0)
                return cage_error_set(err, -saved, "project %s: %s", arg, strerror(saved));
        cage->project_fd = fd;
        char proc[64];
        struct stat st;
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(proc, ret_path, PATH_MAX - 1);
        if (n <= 0 || n >= PATH_MAX - 1 || ret_path[0] != '/' || fstat(fd, &st) < 0)
                return cage_error_set(err, -EIO, "project %s: cannot tell its path: %s", arg, strerror(errno ? errno : EIO));
        ret_path[n] = 0;
        if ((r = project_path_check(ret_path, &cage->user, err)) < 0)
                return r;
        if (st.st_uid != cage->user.uid)
                return cage_error_set(err, -EPERM, "project %s is owned by uid %u, not by you (%s); cage only your own projects",
                                      ret_path, (unsigned) st.st_uid, cage->user.name);
        return 0;
}

static int check_allow_users(const Cage *cage, CageError *err) {
        const Setting *allow = &cage->config->settings[SETTING_ALLOW_USERS];
        bool ok = allow->n_items == 0;
        for (size_t i = 0; i < allow->n_items; i++)
                ok = ok || streq(allow->items[i].value, "*") || streq(allow->items[i].value, cage->user.name);
        if (!ok)
                return cage_error_set(err, -EPERM, "%s:%u: user %s is not in AllowUsers=; ask the administrator to add you",
                                      allow->origin.file, allow->origin.line, cage->user.name);
        return 0;
}

/* The user's layer (their file, --preset), the project's, the preset: read
 * with the user's file system identity. */
static int load_user_layers(Cage *cage, const LoadOptions *o, const char *project, CageError *err) {
        _cleanup_free_ char *user_conf = o->user_config ? strdup(o->user_config)
                                                        : strdup_printf("%s/.config/nspawn-cage/config", cage->user.home);
        _cleanup_free_ char *project_conf = strdup_printf("%s/.nspawn-cage.conf", project);
        _cleanup_free_ char *text = o->preset ? strdup_printf("[Cage]\nPreset=%s\n", o->preset) : NULL;
        if (!user_conf || !project_conf || (o->preset && !text))
                return cage_error_set(err, -ENOMEM, "out of memory");
        FsIdentity id;
        int r = user_fs_enter(&cage->user, &id);
        if (r < 0)
                return cage_error_set(err, r, "cannot take the file system identity of %s: %s", cage->user.name, strerror(-r));
        if (!o->declared)
                r = load_file(cage->config, LAYER_USER, AT_FDCWD, user_conf, user_conf, true, cage->user.uid, true, err);
        /* The user's word, on the command line: read as their layer. */
        if (r >= 0 && text)
                r = config_load_buffer(cage->config, LAYER_USER, "--preset", text, strlen(text), err);
        if (r >= 0)
                r = load_file(cage->config, LAYER_PROJECT, cage->project_fd, ".nspawn-cage.conf", project_conf, false, cage->user.uid,
                              true, err);
        if (r >= 0)
                r = load_preset(cage, o, err);
        user_fs_leave(&id);
        return r;
}

int cage_load(Cage *cage, const LoadOptions *o, CageError *err) {
        _cleanup_free_ char *declared_project = NULL;
        LoadOptions declared;
        char project[PATH_MAX];
        int r;
        if (o->declared) {
                if ((r = declared_identity(load_admin_dir(o), o->declared, &cage->user, &declared_project, err)) < 0)
                        return r;
                declared = *o;
                declared.project = declared_project;
                o = &declared;
        } else if ((r = invoking_user(o->sudo_uid, &cage->user, err)) < 0)
                return r;
        if ((r = open_project(cage, o->project, project, err)) < 0)
                return r;
        if ((r = config_new(&cage->config)) < 0)
                return cage_error_set(err, r, "out of memory");
        if ((r = load_admin_layer(cage->config, load_admin_dir(o), err)) < 0)
                return r;
        /* A declared cage's file is the administrator's too; no user layer then. */
        if (o->declared && (r = load_file(cage->config, _LAYER_INVALID, AT_FDCWD, o->declared, o->declared, true, 0, false, err)) < 0)
                return r;
        if ((r = check_allow_users(cage, err)) < 0 || (r = load_user_layers(cage, o, project, err)) < 0)
                return r;
        if ((r = cage_spec_resolve(cage->config, project, &cage->user, o->name, &cage->preset, &cage->spec, err)) < 0)
                return r;
        /* The administrator's CA certificates: a directory, no key, so that
         * neither the user nor the project can add one. */
        _cleanup_free_ char *ca_dir = strdup_printf("%s/ca-certificates", load_admin_dir(o));
        if (!ca_dir)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if ((r = cage_spec_add_ca_files(cage->spec, ca_dir)) < 0)
                return cage_error_set(err, r, "%s: %s", ca_dir, strerror(-r));
        return 0;
}

char *declared_file(const char *admin_dir, const char *name) {
        return strdup_printf("%s/cages/%s.conf", admin_dir, name);
}

bool is_declared(const char *file) {
        struct stat st;
        return fstatat(AT_FDCWD, file, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/* A declared cage's name is the administrator's: an ad hoc cage taking it
 * would be what `start NAME` and root's `shell NAME` find instead. */
int declared_name_refuse(const char *admin_dir, const char *name, CageError *err) {
        _cleanup_free_ char *file = declared_file(admin_dir, name);
        if (!file)
                return cage_error_set(err, -ENOMEM, "out of memory");
        if (is_declared(file))
                return cage_error_set(err, -EEXIST, "cage name %s is taken by the cage the administrator declared in %s; choose another --name "
                                      "(to enter that cage if it is yours: 'nspawn-cage shell %s')", name, file, name);
        return 0;
}

int cage_owner_check(const char *admin_dir, const CageRecord *rec, bool entering, CageError *err) {
        _cleanup_free_ char *file = declared_file(admin_dir, rec->name), *dproject = NULL;
        _cleanup_(host_user_done) HostUser duser = {};
        _cleanup_(cage_error_done) CageError why = {};
        if (!file)
                return cage_error_set(err, -ENOMEM, "out of memory");
        bool declared = is_declared(file);
        bool known = declared && declared_identity(admin_dir, file, &duser, &dproject, &why) >= 0;
        if (declared && !known)
                cage_notice("%s", cage_error_message(&why, -EINVAL));
        const char *kind = rec->declared ? "declared" : "ad hoc";
        if (declared && (!rec->declared || !known || duser.uid != rec->uid)) {
                if (entering)
                        return cage_error_set(err, -EPERM, "cage %s is %s's %s cage (uid %u, project %s), not the one declared in %s%s%s; not "
                                              "entering it: 'nspawn-cage stop %s' removes it, 'nspawn-cage start %s' then starts the declared one",
                                              rec->name, rec->user, kind, (unsigned) rec->uid, rec->project, file, duser.name ? " for " : "",
                                              strempty(duser.name), rec->name, rec->name);
                cage_notice("warning: cage %s is %s's %s cage (uid %u, project %s), not the one declared in %s", rec->name, rec->user,
                            kind, (unsigned) rec->uid, rec->project, file);
                return 0;
        }
        if (rec->uid != 0)
                cage_notice("cage %s is %s's (uid %u, %s, project %s)", rec->name, rec->user, (unsigned) rec->uid,
                            declared ? "declared" : "ad hoc", rec->project);
        return 0;
}
