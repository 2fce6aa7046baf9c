/* agentenv.h: the agent's command and environment, and so which secret it
 * gets. Precedence, lowest first: the user's basics (HOME, USER, TERM...),
 * the values of Pass= ([Environment] File= where it has the name, else the
 * caller's environment), what the display and the forwards staged for this
 * cage (the host's own DISPLAY etc. never reach the agent), then Set=.
 * Pure functions of their arguments: the host environment is passed in. */
#pragma once

#include "config.h"
#include "error.h"
#include "spec.h"

/* Where a value of Pass= may come from besides File=: the caller's
 * environment (what sudo kept; a declared cage's EnvironmentFile=). */
typedef struct HostEnv {
        char *const *environ; /* NAME=VALUE entries, NULL-terminated */
} HostEnv;

const char *host_env_get(const HostEnv *e, const char *name);

/* The agent's argv: a bare command name is looked up in the cage's
 * profile, on the host side of the same store path, and run as /bin/NAME. */
int agent_command(const CageSpec *s, char *const *command, char ***ret, CageError *err);

/* The values of Pass= for the agent (NAME=VALUE): from file_entries
 * (envfile_parse() of File=) where it has the name, else from env. TERM
 * and the display's variables are the agent's own: never passed. Values
 * holding control characters are dropped. */
int agent_passed_values(char *const *pass, char *const *file_entries, const HostEnv *env, char ***ret, CageError *err);

/* The same, reading [Environment] File= (as the user unless the
 * administrator set it); errors name where File= is set. */
int agent_passed_environment(const CageSpec *s, const Setting *file_setting, const HostEnv *env, char ***ret, CageError *err);

/* The whole environment, in the precedence above: kept (the values of
 * Pass=), staged (display and forwards), then s->set. term: the caller's
 * TERM (used when Pass= names TERM). */
int agent_environment(const CageSpec *s, const char *term, char *const *kept, char *const *staged, char ***ret, CageError *err);
