/* envfile.h: [Environment] File=, a file of NAME=VALUE lines holding secrets
 * (API keys, tokens; e.g. a sops/age-decrypted file under /run/secrets).
 * Opened with its reader's file system identity and checked to be private;
 * only the names Pass= lists are taken from it. Values are never logged. */
#pragma once

#include "error.h"
#include "user.h"

#define ENVFILE_MAX (64 * 1024)

/* Open path for reading as user `u` (NULL: as the caller, for the
 * administrator's declared cages) without following a symbolic link in its
 * last component, and check it: -ELOOP a link, -EBADFD not a regular file,
 * -EFBIG larger than ENVFILE_MAX, -EPERM readable or writable by others
 * (not group or owner only), else -errno of the open. */
int envfile_open(const char *path, const HostUser *u, int *ret_fd);

/* Parse the contents (a subset of systemd's EnvironmentFile=): blank lines;
 * comments starting with '#' or ';'; NAME=VALUE with white space allowed
 * around NAME and '='; VALUE unquoted (literal, trailing white space
 * dropped), in '...' (literal) or in "..." (\\ \" \$ \` escape the
 * character); nothing after a closing quote; no control characters, no
 * multi-line values, no `export`. Returns NAME=VALUE for the names in
 * `names` (the last line of a name wins), sorted as `names`. On a bad line:
 * -EINVAL, and *err holds its number and a reason (never the value). */
int envfile_parse(const char *data, size_t size, char *const *names, char ***ret, CageError *err);

/* Zero and free a list holding secrets. */
void strv_free_erase(char **l);
static inline void strv_free_erasep(char ***l) { strv_free_erase(*l); }
