/* agentenv.c: the agent's command and environment (agentenv.h). Secrets
 * pass through here: lists holding them are erased when freed. */
#include "autoconfig.h"

#include "agentenv.h"
#include "envfile.h"

const char *host_env_get(const HostEnv *e, const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; e && e->environ && e->environ[i]; i++)
                if (strncmp(e->environ[i], name, n) == 0 && e->environ[i][n] == '=')
                        return e->environ[i] + n + 1;
        return NULL;
}

int agent_command(const CageSpec *s, char *const *command, char ***ret, CageError *err) {
        _cleanup_strv_free_ char **argv = strv_copy(command);
        if (!argv || !argv[0])
                return cage_error_set(err, -EINVAL, "empty command");
        if (!strchr(argv[0], '/')) {
                _cleanup_free_ char *host = strdup_printf("%s/sw/bin/%s", s->toplevel, argv[0]);
                if (!host || access(host, X_OK) < 0)
                        return cage_error_set(err, -ENOENT, "command '%s' is not in the cage's packages; add the package that provides it to Packages=",
                                              argv[0]);
                char *inside = strdup_printf("/bin/%s", argv[0]);
                if (!inside)
                        return cage_error_set(err, -ENOMEM, "out of memory");
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

int agent_environment(const CageSpec *s, const char *term, char *const *kept, char *const *staged, char ***ret, CageError *err) {
        _cleanup_(strv_free_erasep) char **env = NULL;
        int r = 0;
        r = r ?: strv_push(&env, strdup_printf("HOME=%s", s->user.home));
        r = r ?: strv_push(&env, strdup_printf("USER=%s", s->user.name));
        r = r ?: strv_push(&env, strdup_printf("LOGNAME=%s", s->user.name));
        r = r ?: strv_push(&env, strdup("SHELL=/bin/bash"));
        r = r ?: strv_push(&env, strdup("PATH=/bin:/usr/bin"));
        r = r ?: strv_push(&env, strdup_printf("TERM=%s", term && strv_contains(s->pass, "TERM") ? term : "xterm-256color"));
        for (size_t i = 0; kept && kept[i] && r >= 0; i++)
                if (!startswith(kept[i], "TERM=") && !env_has_name(staged, kept[i]))
                        r = strv_extend(&env, kept[i]);
        for (size_t i = 0; staged && staged[i] && r >= 0; i++)
                r = strv_extend(&env, staged[i]);
        for (size_t i = 0; s->set && s->set[i] && r >= 0; i++)
                r = strv_extend(&env, s->set[i]);
        if (r < 0)
                return cage_error_set(err, r, "out of memory");
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

int agent_passed_values(char *const *pass, char *const *file_entries, const HostEnv *env, char ***ret, CageError *err) {
        _cleanup_(strv_free_erasep) char **l = NULL;
        for (size_t i = 0; pass && pass[i]; i++) {
                const char *name = pass[i];
                if (streq(name, "TERM") || is_display_variable(name))
                        continue;
                _cleanup_free_ char *prefix = strdup_printf("%s=", name);
                const char *v = NULL;
                if (!prefix)
                        return cage_error_set(err, -ENOMEM, "out of memory");
                for (size_t j = 0; file_entries && file_entries[j] && !v; j++)
                        v = startswith(file_entries[j], prefix);
                if (!v)
                        v = host_env_get(env, name);
                if (v && !string_has_cc(v) && strv_push(&l, strdup_printf("%s=%s", name, v)) < 0)
                        return cage_error_set(err, -ENOMEM, "out of memory");
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* [Environment] File=: the entries of the names in Pass=. */
static int read_env_file(const CageSpec *s, const Setting *fs, char ***ret, CageError *err) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        int r = envfile_open(s->env_file, s->env_file_as_root ? NULL : &s->user, &fd);
        if (r >= 0)
                r = config_read_fd(fd, &data, &size);
        if (r < 0)
                return cage_error_set(err, r, "%s:%u: File=%s %s", strempty(fs->origin.file), fs->origin.line, s->env_file, envfile_reason(r));
        r = envfile_parse(data, size, s->pass, ret, err);
        explicit_bzero(data, size);
        if (r == -EINVAL) {
                unsigned line = err->line;
                _cleanup_free_ char *reason = strdup(cage_error_message(err, r));
                return cage_error_set(err, r, "%s:%u: %s (File= of %s:%u)", s->env_file, line, strempty(reason), strempty(fs->origin.file),
                                      fs->origin.line);
        }
        return r < 0 ? cage_error_set(err, r, "out of memory") : 0;
}

int agent_passed_environment(const CageSpec *s, const Setting *file_setting, const HostEnv *env, char ***ret, CageError *err) {
        _cleanup_(strv_free_erasep) char **from_file = NULL;
        int r;
        if (s->env_file && (r = read_env_file(s, file_setting, &from_file, err)) < 0)
                return r;
        return agent_passed_values(s->pass, from_file, env, ret, err);
}
