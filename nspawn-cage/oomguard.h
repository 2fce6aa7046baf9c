/* oomguard.h: while a command runs, kill the biggest process of a cage
 * that thrashes at its memory limit, which the kernel's OOM killer leaves
 * alone as long as reclaim frees anything (oomguard.c says why). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

/* On the cage's cgroup: the kills of the guard, which `status` adds to the
 * kernel's memory.events oom_kill. */
#define OOMGUARD_XATTR "user.nspawn_cage.oom_kills"

typedef struct OomGuard {
        pid_t pid;
        int report_fd;
} OomGuard;
#define OOM_GUARD_NULL { .pid = 0, .report_fd = -1 }

/* Fork the guard for the cgroup `cgroup` (as ControlGroup= names it; v2).
 * Call it as root before dropping capabilities: it keeps CAP_KILL. */
int oomguard_start(const char *cgroup, OomGuard *ret);
/* End it; the command names of what it killed are added to *killed. */
int oomguard_stop(OomGuard *g, char ***killed);

static inline void oomguard_stopp(OomGuard *g) {
        char **none = NULL;
        (void) oomguard_stop(g, &none);
        for (size_t i = 0; none && none[i]; i++)
                free(none[i]);
        free(none);
}

/* What the guard knows from one second to the next. */
typedef struct OomGuardState {
        uint64_t max, oom;  /* memory.events' max and oom_kill a second ago */
        unsigned stalled;   /* seconds at the limit, stalled, without a kernel kill */
        bool victim;        /* a process killed by the guard is not gone yet */
        unsigned waited;    /* seconds waited for it */
        bool after_victim;  /* one left less than FOLLOW_UP_WINDOW s ago ... */
        unsigned since_victim; /* ... this many */
} OomGuardState;

/* One second: memory.events' max and oom_kill now, whether memory.pressure
 * says the cage thrashes, whether the last victim is gone. True: kill the
 * biggest process now (then set s->victim if one was killed). */
bool oomguard_step(OomGuardState *s, uint64_t max, uint64_t oom, bool thrashing, bool victim_gone);

/* The process the guard kills: the biggest (resident and swapped) in the
 * cgroup directory dfd and below it, but not in init.scope or supervisor
 * (the cage's PID 1, nspawn) nor one with oom_score_adj -1000; 0 if none. */
pid_t oomguard_biggest(int dfd);

/* The test on memory.pressure's text: every task stalled long enough. */
bool oomguard_thrashing(const char *pressure);
