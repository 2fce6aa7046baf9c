/* closure.h: the Nix side of a cage: realise the top-level store path from
 * a package set and a package list (nix/cage.nix), query its closure, and
 * hold a GC root for as long as the cage runs. */
#pragma once

#include "error.h"
#include "util.h"

typedef struct ClosureRequest {
        const char *nixpkgs;   /* path, <channel> or flake reference */
        char *const *packages; /* attribute names */
        const char *name;      /* for the derivation's name; NULL: cage.nix's default, the same for every cage */
        const char *data_dir;  /* where nix/cage.nix lives */
} ClosureRequest;

#define CLOSURE_LIST_MAX (16 * 1024 * 1024)

/* Read a closure list (one store path a line, top-level first). */
int closure_read_list(int fd, char **ret_data, size_t *ret_size);
/* Parse it; on a bad line returns -EINVAL and its number. */
int closure_parse_list(const char *data, size_t size, char ***ret_paths, CageError *err);

/* Build the top-level path with nix-build (its progress and errors go to
 * our stderr) and return it first, followed by its closure. With `gcroot`
 * the result is registered as an indirect GC root at that path. On failure
 * *ret_error may hold Nix's last error line. */
int closure_realise(const ClosureRequest *req, const char *gcroot, char ***ret_paths, CageError *error);

/* Closure of an existing store path (nix-store -qR). */
int closure_query(const char *path, char ***ret_paths);

/* Register `link` as an indirect GC root for an existing store path. */
int closure_add_root(const char *path, const char *link);
