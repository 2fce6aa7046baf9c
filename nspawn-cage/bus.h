/* bus.h: every D-Bus call nspawn-cage makes: systemd1 on the host (the
 * cage's unit), machine1 (registration, the pty inside), and systemd1 inside
 * the cage (the agent's own unit, whose result is its exit status). The
 * caller hands in the connections and the event loop. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "spec.h"

typedef struct CageUnit {
        const CageSpec *spec;
        const char *unit;    /* nspawn-cage-NAME.service */
        const char *nspawn;  /* absolute path of systemd-nspawn */
        const char *rootfs;  /* the machine's root directory */
        /* Make nspawn give the cage cgroup v2 even though the image's systemd
         * lives only in /nix/store, where nspawn < 257 does not look for it. */
        bool unified_cgroup;
        /* The locked uid range file (idmap_pick_range), or -1: handed to the
         * unit as nspawn's stdin, so systemd and nspawn hold the range's lock
         * for as long as the unit lives, whoever started it. */
        int uid_lock_fd;
} CageUnit;

/* Start systemd-nspawn as a transient unit in machine.slice with the
 * limits as properties, and wait (on signals, never by polling) until the
 * cage's systemd reports ready, or the job fails, or the timeout. */
int bus_start_cage(sd_bus *bus, sd_event *e, const CageUnit *u, uint64_t timeout_usec, CageError *error);

/* A host process nspawn-cage leaves running for a cage (the ssh-agent
 * relay): moved into a transient scope of the host's systemd in
 * machine.slice, bound to the cage's unit (BindsTo=, PartOf=, After=: it is
 * stopped first when the cage stops, and with it), with its own TasksMax=
 * and MemoryMax=, so it is counted and limited like the cage. */
typedef struct CageScope {
        const char *unit;     /* nspawn-cage-NAME-WHAT.scope */
        const char *bound_to; /* nspawn-cage-NAME.service */
        const char *description;
        pid_t pid;
        uint64_t tasks_max, memory_max;
} CageScope;
/* Start it and wait for its job (the process is in the scope on success). */
int bus_start_scope(sd_bus *bus, sd_event *e, const CageScope *c, uint64_t timeout_usec, CageError *error);

/* Stop a unit and wait for its job. -ENOENT if it is not loaded. */
int bus_stop_unit(sd_bus *bus, sd_event *e, const char *unit, uint64_t timeout_usec);
/* Forget a failed unit, if any. */
void bus_reset_failed_unit(sd_bus *bus, const char *unit);

/* ActiveState of a unit ("active", "failed", ...), or -ENOENT. */
int bus_unit_active_state(sd_bus *bus, const char *unit, char **ret);

/* Cgroup accounting of a unit, for status. UINT64_MAX where unknown. */
typedef struct UnitUsage {
        uint64_t memory_current, memory_max, cpu_usage_nsec, cpu_quota_per_sec_usec;
        uint64_t tasks_current, tasks_max, memory_swap_max;
        uint64_t active_enter_usec;
        char *control_group; /* caller frees */
} UnitUsage;
int bus_unit_usage(sd_bus *bus, const char *unit, UnitUsage *ret);
/* Its ControlGroup alone (what an attach watches): one call, not ten. */
int bus_unit_control_group(sd_bus *bus, const char *unit, char **ret);

/* Change limits of a running cage's unit (runtime only): the values are
 * those of a CageSpec (UINT64_MAX = infinity), and only those `mask`ed. */
typedef enum LimitMask {
        LIMIT_MEMORY = 1 << 0,
        LIMIT_SWAP = 1 << 1,
        LIMIT_CPUS = 1 << 2,
        LIMIT_TASKS = 1 << 3,
} LimitMask;
int bus_set_limits(sd_bus *bus, const char *unit, unsigned mask, uint64_t memory, uint64_t swap, uint64_t cpus,
                   uint64_t tasks, CageError *error);

/* machine1: is the machine registered, and its leader's PID (not asked
 * for when ret_leader is NULL). */
int bus_machine_leader(sd_bus *bus, const char *name, pid_t *ret_leader);

typedef struct AgentRun {
        const char *machine;
        char *const *argv;    /* argv[0] absolute inside the cage */
        char *const *environ; /* NAME=VALUE for the agent */
        const char *user;
        const char *directory;
        uint64_t namespaces; /* CLONE_NEW* flags it may make (Containers=, builders.h); 0: none */
} AgentRun;

/* What attaching needs from inside the cage: a pty (machine1) and the
 * cage's own system bus. Opening it needs root's full rights (entering the
 * cage's namespaces); running it does not. */
typedef struct AgentSession {
        int master;
        char *pty;
        sd_bus *cage;
} AgentSession;
void agent_session_done(AgentSession *s);
int bus_open_agent_session(sd_bus *host, sd_event *e, const char *machine, AgentSession *ret, CageError *error);

/* Start the agent as a transient unit of the cage's systemd on the pty,
 * forward the terminal until the unit ends, and return its exit status
 * (128+signal when killed). */
int bus_run_agent(AgentSession *s, sd_event *e, const AgentRun *a, int *ret_status, CageError *error);
