/* cgroup.h: what the host's cgroup file system can tell and enforce: the
 * hierarchy in use and the OOM kills of a unit's cgroup. Reads only. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* True when /sys/fs/cgroup (under `root`, "/" normally) is cgroup v2. */
bool cgroup_is_unified(const char *root);

/* OOM kills in the cgroup `path` (as systemd's ControlGroup= names it):
 * memory.events of v2, else memory.oom_control of v1. */
int cgroup_oom_kills(const char *root, const char *path, uint64_t *ret);
