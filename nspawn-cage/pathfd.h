/* pathfd.h: resolve a path once, into an fd, beneath a directory fd and
 * along no symbolic link; then act on the fd. Every path nspawn-cage opens
 * as root in a place someone else controls goes through path_open_nofollow(). */
#pragma once

#include <stdint.h>
#include <linux/openat2.h>

#include "util.h"

/* openat2() with O_NOFOLLOW|O_CLOEXEC, no symbolic or magic links anywhere
 * in path, plus `resolve` (RESOLVE_BENEATH, RESOLVE_NO_XDEV); the fd or
 * -errno. Where the kernel has no openat2() (before 5.6: ENOSYS) it walks
 * the path instead. */
int path_open_nofollow(int dirfd, const char *path, uint64_t flags, uint64_t resolve);
/* That walk, exported for the tests: one component at a time with
 * O_NOFOLLOW, ".." refused (-EXDEV), a link anywhere -ELOOP, a mount
 * crossed under RESOLVE_NO_XDEV -EXDEV; -ENOSYS for a `resolve` flag it
 * cannot honour (RESOLVE_IN_ROOT). */
int path_open_nofollow_walk(int dirfd, const char *path, uint64_t flags, uint64_t resolve);
/* For a file a user names on purpose through links of theirs (NixOS's
 * /run/secrets is one): links in its directories are followed, the file
 * itself is no link (O_NOFOLLOW), nor any magic link on the way. */
int path_open_last_nofollow(int dirfd, const char *path, uint64_t flags);
