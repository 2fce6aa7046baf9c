/* forward.h: [Forward] SSHAgent= and GitConfig=: the user's ssh-agent
 * socket (never ~/.ssh) and git configuration (~/.gitconfig,
 * ~/.config/git, read-only), found and opened with the user's file system
 * identity without following symbolic links, staged like display.c's
 * sockets (stage.h) and bound at fixed places in the cage. */
#pragma once

#include "spec.h"

/* Where the agent finds the ssh-agent socket (SSH_AUTH_SOCK inside). */
#define FORWARD_SSH_AGENT_PATH "/run/nspawn-cage/ssh-agent"

typedef struct Forward {
        int ssh_fd;        /* O_PATH, the socket SSH_AUTH_SOCK names; -1 if none */
        int ssh_listen_fd; /* the cage's end: a socket of nspawn-cage's, relayed to ssh_fd */
        int gitconfig_fd; /* ~/.gitconfig, -1 if not forwarded or absent */
        int gitdir_fd;    /* ~/.config/git, likewise */
        pid_t relay_pid;  /* the ssh-agent relay, once forked */
        int relay_go_fd;  /* its go pipe until released: the relay waits on it to start */
} Forward;

#define FORWARD_NULL \
        ((Forward) { .ssh_fd = -1, .ssh_listen_fd = -1, .gitconfig_fd = -1, .gitdir_fd = -1, .relay_pid = 0, .relay_go_fd = -1 })

/* The transient scope of the host's systemd the relay runs in (see
 * forward_fork_relay), and its limits: the relay is one process, and
 * RELAY_MAX_PAIRS connections of 2 x 16 KiB buffers each. */
#define FORWARD_RELAY_SCOPE_FMT "nspawn-cage-%s-ssh-agent.scope"
#define FORWARD_RELAY_TASKS_MAX 4
#define FORWARD_RELAY_MEMORY_MAX (UINT64_C(16) << 20)

void forward_done(Forward *f);

/* The socket SSH_AUTH_SOCK (`sock`, NULL: unset) names: an absolute path,
 * no symbolic link anywhere, a socket owned by the user. *ret_error says
 * what is wrong and how to fix it. */
int forward_open_ssh_agent(const HostUser *u, const char *sock, Forward *f, CageError *error);
/* ~/.gitconfig and ~/.config/git where they exist: owned by the user, no
 * symbolic link below the home directory. */
int forward_open_git(const HostUser *u, Forward *f, CageError *error);

/* Stage what is open in cage_fd/forward (known to nspawn as cage_dir), add
 * the binds to the spec and write forward/environment. ssh-agent refuses
 * peers of another uid than its own, and the agent in the cage is
 * base+uid on the host: so the cage gets a socket of nspawn-cage's
 * (forward/ssh-agent, 0666 in a root-only directory), relayed to the
 * user's by forward_start_relay(). The git configuration is staged
 * idmapped where possible (stage.h) and bound read-only. */
int forward_stage(Forward *f, int cage_fd, const char *cage_dir, CageSpec *s, CageError *error);
/* Fork the relay, as the user (so ssh-agent sees its own uid), with only
 * the two sockets and a pidfd of the cage's leader: one process with one
 * poll loop, at most 16 connections from the cage at a time (more are
 * closed at once, logged once to the journal), each copied both ways
 * through two bounded buffers to its own connection to the user's agent.
 * It ends when the leader does (the cage stopped), kept cages included.
 * It waits, accepting nothing, until forward_release_relay(): the caller
 * first moves it (relay_pid) into a scope bound to the cage's unit
 * (bus_start_scope), so the host's systemd counts, limits and stops it with
 * the cage. forward_done() kills a relay never released. */
int forward_fork_relay(Forward *f, const HostUser *u, const char *cage, pid_t leader);
int forward_release_relay(Forward *f);
/* Detach the host's staging mounts (the cage keeps its own). */
int forward_unstage(int cage_fd);
/* SSH_AUTH_SOCK for the agent, as forward_stage wrote it. */
int forward_read_environment(int cage_fd, char ***ret);
