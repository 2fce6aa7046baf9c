/* binds.h: a bind's source as nspawn will get it. Opened once, beneath the
 * host's "/" and along no symbolic link, with the file system identity of
 * the layer that named it; checked on that fd; and staged from that same fd
 * at a root-owned path, so a link swapped in after the check changes nothing. */
#pragma once

#include <sys/stat.h>

#include "error.h"
#include "pathfd.h"
#include "spec.h"

/* Open b->source relative to root_fd (the host's "/", opened once) with
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS, O_PATH|O_NOFOLLOW:
 * as root when an administrator's file named it, else with user's file
 * system identity. Then bind_source_check() on the fd. On failure
 * *err says why and what to do. */
int bind_source_open(int root_fd, const BindSpec *b, const HostUser *user, int *ret_fd, CageError *err);

/* What fstat() of a source saw, judged for b. Not an administrator's: only
 * a directory or a regular file, and a writable one owned by uid. */
int bind_source_check(const struct stat *st, const BindSpec *b, uid_t uid, CageError *err);

/* Mount the source fd at b->staged: idmapped so that only the user's ids
 * are mapped into the range at base; a read-only bind the file system under
 * fd cannot idmap, as a plain read-only clone. -errno of the idmapped mount
 * when a writable bind cannot be idmapped. */
int bind_stage(int fd, const BindSpec *b, const HostUser *user, uid_t base);
