/* tools.h: the programs nspawn-cage runs (xauth, nft, ip, nix-build,
 * nix-store, systemd-nspawn) and where they are. Each place was fixed when
 * nspawn-cage was configured (--with-xauth=PATH, --with-nft=PATH, ...): a Nix
 * build names store paths, a distribution build its own. Root never looks a
 * program up in a PATH the caller chose. */
#pragma once

#include <stdbool.h>

#include "error.h"

typedef enum Tool {
        TOOL_XAUTH,
        TOOL_NFT,
        TOOL_IP,
        TOOL_NIX_BUILD,
        TOOL_NIX_STORE,
        TOOL_NSPAWN,
        _TOOL_MAX,
        _TOOL_INVALID = -1,
} Tool;

const char *tool_to_string(Tool t);
Tool tool_from_string(const char *s);

/* The path configure fixed, or "" when the tool is searched for at run time
 * (only nix-build and nix-store may be: Nix is often installed after
 * nspawn-cage, by its own installer). */
const char *tool_configured_path(Tool t);

/* The program to execute: the configured path, or the first executable of
 * TOOLS_NIX_SEARCH_PATH. -ENOENT when there is none (*ret_path untouched). */
int tool_find(Tool t, char **ret_path);

/* Where nix-build and nix-store are searched for when configure fixed no
 * path: NixOS, a Nix profile, a distribution. */
#define TOOLS_NIX_SEARCH_PATH "/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/bin:/bin"

/* Run tool `t` with args (argv[0] excluded, NULL-terminated, at most 14) in
 * the network namespace netns_fd (-1: ours), `input` on its stdin (NULL:
 * /dev/null), with a clean environment. On failure the error record (if
 * error) holds the command and its stderr. */
int tool_run(Tool t, const char *const *args, int netns_fd, const char *input, CageError *error);
