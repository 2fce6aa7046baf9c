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
        int ssh_fd;       /* O_PATH, the socket SSH_AUTH_SOCK names; -1 if none */
        int gitconfig_fd; /* ~/.gitconfig, -1 if not forwarded or absent */
        int gitdir_fd;    /* ~/.config/git, likewise */
} Forward;

#define FORWARD_NULL ((Forward) { .ssh_fd = -1, .gitconfig_fd = -1, .gitdir_fd = -1 })

void forward_done(Forward *f);

/* The socket SSH_AUTH_SOCK (`sock`, NULL: unset) names: an absolute path,
 * no symbolic link anywhere, a socket owned by the user. *ret_error says
 * what is wrong and how to fix it. */
int forward_open_ssh_agent(const HostUser *u, const char *sock, Forward *f, char **ret_error);
/* ~/.gitconfig and ~/.config/git where they exist: owned by the user, no
 * symbolic link below the home directory. */
int forward_open_git(const HostUser *u, Forward *f, char **ret_error);

/* Stage what is open in cage_fd/forward (known to nspawn as cage_dir), add
 * the binds to the spec and write forward/environment. The ssh-agent
 * socket must be idmapped (the agent connects as the user's uid in the
 * cage) unless others may connect to it: -EOPNOTSUPP otherwise. */
int forward_stage(const Forward *f, int cage_fd, const char *cage_dir, CageSpec *s, char **ret_error);
/* Detach the host's staging mounts (the cage keeps its own). */
int forward_unstage(int cage_fd);
/* SSH_AUTH_SOCK for the agent, as forward_stage wrote it. */
int forward_read_environment(int cage_fd, char ***ret);
