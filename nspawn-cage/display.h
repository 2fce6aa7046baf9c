/* display.h: forwarding the invoking user's X11 display, Wayland compositor
 * and GPU nodes into a cage. Every socket is found and verified with the
 * user's file system identity, the X11 cookie is made with the user's rights,
 * and only single sockets are bound: never /tmp/.X11-unix or /run/user/UID. */
#pragma once

#include <sys/types.h>

#include "spec.h"

/* What the caller's environment (the part sudo kept) says about the
 * session; NULL for unset. */
typedef struct DisplayEnv {
        const char *display;         /* DISPLAY: ":N" */
        const char *xauthority;      /* XAUTHORITY; unset: ~/.Xauthority */
        const char *wayland_display; /* WAYLAND_DISPLAY; unset: wayland-0 */
        const char *xdg_runtime_dir; /* XDG_RUNTIME_DIR; must be /run/user/UID */
        const char *hostname;        /* this host's name, to pick a trusted cookie */
} DisplayEnv;

/* The verified, opened pieces of a session, ready to be staged. */
typedef struct Display {
        bool x11, wayland, gpu;
        unsigned x11_number;
        int x11_socket_fd;     /* O_PATH, the socket DISPLAY names */
        char *cookie;          /* the cage's Xauthority file (wildcard family) */
        size_t cookie_size;
        char *wayland_name;    /* WAYLAND_DISPLAY, a name in XDG_RUNTIME_DIR */
        int wayland_socket_fd; /* O_PATH */
        char **gpu_nodes;      /* /dev/dri/card0, /dev/dri/renderD128, ... */
} Display;

#define DISPLAY_NULL ((Display) { .x11_socket_fd = -1, .wayland_socket_fd = -1 })

void display_done(Display *d);

/* ":N", ":N.S", "unix:N" or "unix:N.S": a local display. */
int display_parse_x11(const char *display, unsigned *ret_number);
/* A plain name in XDG_RUNTIME_DIR: no '/', not "." or "..". */
bool display_wayland_name_is_valid(const char *name);

/* Xauthority files (Xau's format: big-endian counted strings). Find the
 * MIT-MAGIC-COOKIE-1 of display `number` for this host (FamilyLocal with
 * `hostname`, or FamilyWild); with `any_host`, the first of that number. */
int xauth_find_cookie(const char *data, size_t size, unsigned number, const char *hostname, bool any_host,
                      char **ret_cookie, size_t *ret_size);
/* One FamilyWild entry for display `number`: any host name matches. */
int xauth_render_wild(unsigned number, const char *cookie, size_t cookie_size, char **ret, size_t *ret_size);

/* Ask the X server of display `number`, as user `u` and with the cookie of
 * their Xauthority `xauth_fd`, for an untrusted authorization: runs the
 * xauth configure fixed (tools.h). The result is one wildcard entry. */
int xauth_generate(const HostUser *u, int xauth_fd, unsigned number, char **ret, size_t *ret_size, CageError *error);

/* Verify and open what the spec asks for (x11, wayland, gpu), with the
 * user's identity; make the X11 cookie (untrusted through the X SECURITY
 * extension, or the user's own with `trusted`). On failure *ret_error says
 * which variable or path and why. */
int display_open(const CageSpec *s, const DisplayEnv *env, bool trusted, Display *ret, CageError *error);

/* Stage the opened pieces in the cage's state directory (`cage_fd`, known
 * to systemd-nspawn as `cage_dir`): display/run becomes the agent's
 * XDG_RUNTIME_DIR (the Wayland socket and the cookie, nothing else),
 * display/XN the X11 socket; both are bind mounts of the verified files,
 * so systemd-nspawn never resolves a path the user controls. Adds the
 * binds to the spec and writes display/environment. */
int display_stage(const Display *d, int cage_fd, const char *cage_dir, CageSpec *s);
/* Undo display_stage's mounts; safe when nothing was staged. Called once
 * the cage has booted (it keeps its own copies: the staged mounts are
 * private), and again at teardown. */
int display_unstage(int cage_fd);

/* The agent's DISPLAY, XAUTHORITY, WAYLAND_DISPLAY and XDG_RUNTIME_DIR, as
 * display_stage wrote them; nothing (and 0) when the cage has no display. */
int display_read_environment(int cage_fd, char ***ret);
