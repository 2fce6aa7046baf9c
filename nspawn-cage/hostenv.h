/* hostenv.h: the caller's environment as root may keep it. Through sudo
 * (with SETENV, --preserve-env, or a sudoers without env_reset) whatever the
 * caller sets reaches root's process; the variables that steer the
 * libraries and tools root runs (libsystemd, glibc, libmount, Nix, the
 * sanitizers) are dropped first thing in main(), before any of them runs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Whether a variable named `name` (of `len` bytes; the part before '=' of
 * an environ entry) is dropped. What nspawn-cage reads on purpose (SUDO_*,
 * TERM, DISPLAY, WAYLAND_DISPLAY, XAUTHORITY, XDG_RUNTIME_DIR,
 * SSH_AUTH_SOCK, LANG, LC_*, the Pass= names) is not. */
bool hostenv_is_dropped(const char *name, size_t len);

/* Unset every dropped variable of the process and set PATH to a fixed
 * list of system directories. Returns how many were dropped, or -errno. */
int hostenv_sanitize(void);

#define HOSTENV_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
