/* launch.h: executing a CagePlan (plan.h): the cage's uid range, its
 * rootfs under a temporary name then published, its staging mounts, the
 * display and the forwards, its .nspawn file, its unit, its network and
 * the ssh-agent relay. An undo list records what was made and removes
 * exactly that, in reverse order, when a later step fails. Then the agent
 * is attached (cage_attach). */
#pragma once

#include "agentenv.h"
#include "error.h"
#include "host.h"
#include "layers.h"

typedef struct LaunchOptions {
        const char *closure_file; /* --closure */
        const char *data_dir;     /* Nix expressions */
        bool keep;                /* --keep, or a declared cage */
        bool declared;
        bool rebuild;             /* --rebuild: evaluate Nix even if the closure cache has the entry */
        uint64_t timeout_usec;
        const HostEnv *env;       /* the caller's environment: Pass=, the display, SSH_AUTH_SOCK */
} LaunchOptions;

/* Start the cage with what it takes from the caller (the values of Pass=,
 * the display and the forwards, dropped once the cage holds its own) and
 * keep the values for later shells. Returns them and the locked cage
 * directory, held for the cage's life. */
int cage_launch(Host *h, Cage *cage, const LaunchOptions *o, char ***ret_passed, int *ret_lock_fd, CageError *err);

/* Run command in the running cage as its user on this terminal, with the
 * environment of agentenv.h (kept: the values of Pass=). Returns the
 * command's exit status. */
int cage_attach(Host *h, const CageSpec *s, char *const *command, char *const *kept, const char *term, CageError *err);
