/* verbs.h: the command line as the verbs see it, and what they share:
 * opening the host, finding the cage a verb names. Verbs are the only code
 * that prints an error (cage_error_print), once. */
#pragma once

#include "agentenv.h"
#include "error.h"
#include "host.h"
#include "layers.h"
#include "state.h"

typedef struct Args {
        const char *verb;
        LoadOptions load; /* project, --name, the layers' and data's directories, --preset */
        bool json;
        const char *output;
        const char *closure;
        char **command;
        char **assignments; /* set: KEY=VALUE... */
        bool keep;
        bool rebuild; /* --rebuild */
        bool shell;
        const char *worktree; /* run --worktree BRANCH */
        bool follow; /* denials --follow */
        uint64_t timeout_usec;
        HostEnv env; /* the caller's environment, as sanitised */
} Args;

bool invoked_through_sudo(void);
/* Print "nspawn-cage: MESSAGE" and return 1: a verb's refusal. */
int verb_fail(const char *fmt, ...) _printf_(1, 2);
int require_root(CageError *err);
/* The system bus, the event loop and STATE_DIR (and RUNTIME_DIR checked). */
int host_open(Host *h, CageError *err);
/* The cage the verb names (NAME of a cage of the caller's, or a PROJECT
 * directory that has one), after checking for root and opening the host. */
int open_cage(Host *h, const Args *a, CageRecord *ret, CageError *err);

int verb_run(const Args *a);
int verb_start(const Args *a);
int verb_shell(const Args *a);
int verb_stop(const Args *a);
int verb_set(const Args *a);
int verb_status(const Args *a);
int verb_list(const Args *a);
int verb_gc(const Args *a);
int verb_presets(const Args *a);
int verb_config(const Args *a);
int verb_render(const Args *a);
int verb_denials(const Args *a);
/* run's last line when the egress proxy refused something since since_usec. */
void egress_print_summary(const char *name, uint64_t since_usec);
