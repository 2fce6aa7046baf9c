/* closurecache.h: the closure cache. A start whose package list, nix/cage.nix
 * and package set (Nixpkgs=) are those of an earlier start reuses its
 * top-level store path and closure list without evaluating Nix. Entries live
 * in STATE_DIR/closures/HASH (root's, 0700): `key` (what the entry was built
 * from, compared whole), `closure` (the list, top-level first) and `root`
 * (an indirect GC root holding the top-level). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "closure.h"
#include "error.h"

#define CLOSURE_CACHE_DIR "closures" /* below STATE_DIR */
/* gc drops an entry nothing used for this long (and any stale one). */
#define CLOSURE_CACHE_MAX_IDLE_USEC (30ULL * 24 * 3600 * 1000000)
/* A package set that is a plain directory is walked; beyond this it is
 * not cached (every start evaluates). */
#define CLOSURE_CACHE_TREE_MAX_ENTRIES 2000000U
#define CLOSURE_CACHE_TREE_MAX_DEPTH 128U

typedef struct ClosureKey {
        char *text;        /* "KEY=VALUE" lines: the entry's inputs and their identities */
        char hash[65];     /* SHA-256 of text: the entry's directory name */
        char *uncacheable; /* NULL, or why these inputs have no identity (then Nix evaluates every time) */
} ClosureKey;

void closure_key_done(ClosureKey *k);

/* What a package set named by Nixpkgs= is, immutably: "store:PATH" (a store
 * path, or a link such as a channel resolving to one), "tree:SHA256" (a plain
 * directory: every entry's type, size, owner, mode, inode, mtime and ctime,
 * which no one but root can set back), "flake:REF" (a locked reference).
 * Otherwise *ret_why_not says why it has none. */
int closure_nixpkgs_identity(const char *nixpkgs, char **ret_identity, char **ret_why_not);

/* The key of a request: package list, cage.nix's content, the package
 * set's identity. */
int closure_cache_key(const ClosureRequest *req, ClosureKey *ret, CageError *err);

/* A valid entry for k: 0, its closure, and the entry's directory locked
 * shared (gc leaves it alone) in *ret_lock_fd. -ENOENT if there is none, or
 * it is half-made, stale or its paths are gone (check_store). */
int closure_cache_lookup(int cache_fd, const ClosureKey *k, bool check_store, char ***ret_paths, int *ret_lock_fd);

/* Evaluate and build with Nix (closure_realise), the entry's `root` the
 * GC root, then write the entry. `cache_path` is cache_fd's path (Nix wants
 * one for the root). If the entry held another top-level before,
 * *ret_previous is it (a running cage may still use it). */
int closure_cache_build(int cache_fd, const char *cache_path, const ClosureRequest *req, const ClosureKey *k, char ***ret_paths,
                        int *ret_lock_fd, char **ret_previous, CageError *err);

/* Drop entries that are half-made, stale (their inputs changed: the key
 * computed again from the inputs they record differs), whose paths are
 * gone, or that nothing used for max_idle_usec, unless a top-level in
 * `in_use` is theirs or a start holds them. Their GC root goes with them. */
int closure_cache_gc(int cache_fd, char *const *in_use, uint64_t max_idle_usec, unsigned *ret_removed, CageError *err);
