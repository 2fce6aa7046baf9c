/* cgroup.h: what the host's cgroup file system can tell and enforce: the
 * hierarchy in use and the OOM kills of a unit's cgroup. Reads only. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* True when /sys/fs/cgroup (under `root`, "/" normally) is cgroup v2. */
bool cgroup_is_unified(const char *root);

/* OOM kills in the cgroup `path` (as systemd's ControlGroup= names it):
 * memory.events of v2 with the kills of nspawn-cage's guard (oomguard.h),
 * else memory.oom_control of v1. */
int cgroup_oom_kills(const char *root, const char *path, uint64_t *ret);

/* What a cage's limits did while one command ran: OOM kills counted by
 * memory.events (hierarchical), the names the kernel logged for them, and
 * forks refused by pids.max. The kernel tells the names and the refused
 * forks only in its log (/dev/kmsg, opened before the command), and on
 * 6.1 counts a refused fork only in the forking task's own cgroup, which
 * is gone with the command's unit: the log is read from where the command
 * started, and only records naming the cage's cgroup count. */
/* The value of the line "KEY VALUE" in a keyed cgroup file's text
 * (memory.events, memory.oom_control); -ENOENT if it has none. */
int cgroup_keyed_value(const char *text, const char *key, uint64_t *ret);

typedef struct LimitHits {
        uint64_t oom_kills;
        char **killed;      /* the command name of each kill logged */
        uint64_t thrashed;  /* of oom_kills, those of nspawn-cage's guard (oomguard.c) */
        bool forks_refused;
} LimitHits;
void limit_hits_done(LimitHits *h);
/* Whether a limit did anything: a kill or a refused fork. */
bool limit_hits_any(const LimitHits *h);

typedef struct LimitWatch {
        char *path;         /* the unit's cgroup, as ControlGroup= names it */
        int kmsg_fd;        /* -1 if the log cannot be read */
        uint64_t oom_kills, forks_refused;
} LimitWatch;
#define LIMIT_WATCH_NULL { .kmsg_fd = -1 }
void limit_watch_done(LimitWatch *w);

/* Begin at the current end of the kernel's log (needs CAP_SYSLOG once, at
 * the open: call it before capabilities are dropped); cgroup v2 only. */
int cgroup_watch_begin(const char *root, const char *path, LimitWatch *ret);
int cgroup_watch_end(const char *root, LimitWatch *w, LimitHits *ret);

/* One /dev/kmsg record ("PRI,SEQ,TS,FLAGS;TEXT\n..."): adds to h what it
 * says about the cgroup `path` or one below it. */
void cgroup_kmsg_record(const char *record, size_t n, const char *path, LimitHits *h);

/* The user's message about h (NULL when nothing happened): which limit
 * did what, in cage `name` with these limits (UINT64_MAX: unknown). */
char *limit_hits_message(const LimitHits *h, const char *name, uint64_t memory_max, uint64_t tasks_max);
