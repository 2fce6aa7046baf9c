/* builders.h: what a cage may build with. Each is off by default, set only
 * by the user's or the administrator's layer, and only where the
 * administrator's [Policy] allows it (config.c). NixDaemon=yes: the host's
 * nix-daemon socket and the whole store, read-only, in the cage; the
 * daemon builds what the agent asks, as it would for any local user.
 * Containers=podman: what rootless podman needs, for that cage's agent
 * only: nested namespaces, /dev/fuse, a delegated cgroup. */
#pragma once

#include <sched.h>
#include <stdint.h>

#include "error.h"
#include "spec.h"

#define NIX_DAEMON_SOCKET "/nix/var/nix/daemon-socket/socket"
#define NIX_CONF "/etc/nix/nix.conf"

/* Does nix.conf text make the user trusted (trusted-users or
 * extra-trusted-users naming them, "*", or "@GROUP" of one of `groups`)?
 * 1 and the word in *ret_word, 0 if not. Pure. */
int nix_conf_trusts(const char *text, const char *user, char *const *groups, char **ret_word);

/* NixDaemon=yes: refused for a trusted Nix user (nix_conf: the daemon's
 * configuration file; "include" lines are not followed, see README) or
 * when `socket` is no socket; else the socket bound into the cage at
 * NIX_DAEMON_SOCKET and NIX_REMOTE=daemon set for the agent. A no-op
 * without NixDaemon=. */
int builders_add_nix_daemon(CageSpec *s, const char *nix_conf, const char *socket, CageError *err);

#define FUSE_DEVICE "/dev/fuse"

/* The namespaces (CLONE_NEW* flags) a Containers=podman cage's agent may
 * make: rootless podman's user, mount, pid, ipc, uts and network
 * namespaces, and crun's cgroup namespace. Never time. */
#define CONTAINERS_NAMESPACES \
        ((uint64_t) (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWCGROUP))

/* Containers=podman: refused when `fuse` is no character device; else it
 * is bound into the cage and allowed in its device cgroup. A no-op
 * without Containers=. */
int builders_add_containers(CageSpec *s, const char *fuse, CageError *err);

/* The namespaces the cage's agent may make: none, or CONTAINERS_NAMESPACES. */
uint64_t builders_agent_namespaces(const CageSpec *s);

/* The engine's system-wide configuration in a Containers=podman cage
 * (/etc/containers; the agent's ~/.config/containers may override it):
 * no session keyring (nspawn's system call filter has no keyctl), the
 * cgroupfs manager (the agent has no systemd user session), events in a
 * file; storage that tolerates the one-uid mapping (no newuidmap in a
 * cage); images accepted unsigned, as the engine's own default. */
#define CONTAINERS_CONF                                                                \
        "# Written by nspawn-cage for Containers=podman (see nspawn-cage.conf(5)).\n" \
        "[containers]\n"                                                               \
        "keyring = false\n"                                                            \
        "[engine]\n"                                                                   \
        "cgroup_manager = \"cgroupfs\"\n"                                              \
        "events_logger = \"file\"\n"
#define CONTAINERS_STORAGE_CONF                                                        \
        "# Written by nspawn-cage for Containers=podman (see nspawn-cage.conf(5)).\n" \
        "[storage]\n"                                                                  \
        "driver = \"overlay\"\n"                                                       \
        "[storage.options.overlay]\n"                                                  \
        "ignore_chown_errors = \"true\"\n"
#define CONTAINERS_POLICY "{ \"default\": [ { \"type\": \"insecureAcceptAnything\" } ] }\n"
