/* test-hostenv.c: what root drops of the caller's environment at start
 * (audit 14: SYSTEMD_*, DBUS_*, NIX_* reached root when sudoers kept them)
 * and what it keeps because nspawn-cage reads it on purpose. */
#include "autoconfig.h"

#include <stdlib.h>

#include "hostenv.h"
#include "tap.h"
#include "util.h"

int main(void) {
        static const char *const dropped[] = {
                "SYSTEMD_LOG_LEVEL", "SYSTEMD_BUS_TIMEOUT", "DBUS_SYSTEM_BUS_ADDRESS", "DBUS_SESSION_BUS_ADDRESS",
                "NIX_CONF_DIR", "NIX_PATH", "NIX_REMOTE", "NIX_USER_CONF_FILES", "LD_PRELOAD", "LD_LIBRARY_PATH",
                "LIBMOUNT_DEBUG", "LIBMOUNT_FSTAB", "MALLOC_CHECK_", "GLIBC_TUNABLES", "GCONV_PATH", "ASAN_OPTIONS",
                "UBSAN_OPTIONS", "LISTEN_FDS", "NOTIFY_SOCKET", "LOCPATH", "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN",
                "TMPDIR", "container",
        };
        static const char *const kept[] = {
                "SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND", "TERM", "COLORTERM", "DISPLAY", "WAYLAND_DISPLAY",
                "XAUTHORITY", "XDG_RUNTIME_DIR", "SSH_AUTH_SOCK", "LANG", "LC_ALL", "LC_CTYPE", "ANTHROPIC_API_KEY",
                "OPENAI_API_KEY", "HOME", "NIXPKGS", "SYSTEMD", "LDX",
        };
        clearenv(); /* only what is set below */
        for (size_t i = 0; i < ELEMENTSOF(dropped); i++)
                ok(setenv(dropped[i], "/home/mallory/evil", 1) == 0 && hostenv_is_dropped(dropped[i], strlen(dropped[i])), "%s is dropped", dropped[i]);
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                ok(setenv(kept[i], "value", 1) == 0 && !hostenv_is_dropped(kept[i], strlen(kept[i])), "%s is kept", kept[i]);
        ok(hostenv_is_dropped("NIX_PATH=x", 8) && !hostenv_is_dropped("NIX_PATH=x", 3), "only the name's bytes count");
        setenv("PATH", "/home/mallory/bin", 1);
        int n = hostenv_sanitize();
        ok(n == (int) ELEMENTSOF(dropped), "hostenv_sanitize() dropped %d variables (wanted %zu)", n, ELEMENTSOF(dropped));
        bool none = true, all = true;
        for (size_t i = 0; i < ELEMENTSOF(dropped); i++)
                none = none && !getenv(dropped[i]);
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                all = all && getenv(kept[i]) && streq(getenv(kept[i]), "value");
        ok(none, "none of the dropped variables is left in the environment");
        ok(all, "every kept variable is there, unchanged");
        is_str(getenv("PATH"), HOSTENV_PATH, "PATH is the fixed list of system directories");
        return tap_done();
}
