/* hostenv.c: which variables of the caller's environment root drops at
 * start (see hostenv.h). A deny list rather than an allow list: Pass= may
 * name any variable the user wants the agent to have, and those must live
 * on until the cage starts. */
#include "autoconfig.h"

#include "hostenv.h"
#include "util.h"

extern char **environ;

/* Families read by code root runs, not by nspawn-cage itself. */
static const char *const dropped_prefixes[] = {
        "SYSTEMD_",      /* libsystemd: log target, bus and sd-device behaviour */
        "DBUS_",         /* DBUS_SYSTEM_BUS_ADDRESS: which "system bus" root talks to */
        "NIX_",          /* NIX_CONF_DIR, NIX_PATH, NIX_REMOTE...: closure.c sets its own */
        "LD_",           /* the dynamic loader, for any child */
        "LIBMOUNT_", "LIBBLKID_", "LIBSMARTCOLS_", /* util-linux libraries: debug files, fstab */
        "MALLOC_", "GLIBC_", "GCONV_", /* glibc tunables and charset modules */
        "ASAN_", "UBSAN_", "LSAN_", "MSAN_", "TSAN_", /* sanitizer builds: log_path= writes files */
        "LISTEN_",       /* sd_listen_fds() */
        "DEBUGINFOD_",   /* elfutils, loaded by libsystemd for stack traces */
};

static const char *const dropped_names[] = {
        "NOTIFY_SOCKET", "LOCPATH", "NLSPATH", "TZDIR", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS",
        "TMPDIR", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH", "container", "container_uuid",
        "PATH", /* set again to HOSTENV_PATH */
};

bool hostenv_is_dropped(const char *name, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(dropped_prefixes); i++) {
                size_t n = strlen(dropped_prefixes[i]);
                if (len >= n && strncmp(name, dropped_prefixes[i], n) == 0)
                        return true;
        }
        for (size_t i = 0; i < ELEMENTSOF(dropped_names); i++)
                if (strlen(dropped_names[i]) == len && strncmp(name, dropped_names[i], len) == 0)
                        return true;
        return false;
}

int hostenv_sanitize(void) {
        _cleanup_strv_free_ char **drop = NULL;
        int n = 0;
        /* Collect first: unsetenv() rearranges environ under the loop. */
        for (char **e = environ; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                size_t len = eq ? (size_t) (eq - *e) : strlen(*e);
                if (!hostenv_is_dropped(*e, len))
                        continue;
                char *name = strndup(*e, len);
                if (!name || strv_push(&drop, name) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; drop && drop[i]; i++) {
                if (unsetenv(drop[i]) < 0)
                        return -errno;
                if (!streq(drop[i], "PATH"))
                        n++;
        }
        if (setenv("PATH", HOSTENV_PATH, 1) < 0)
                return -errno;
        return n;
}
