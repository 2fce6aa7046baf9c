/* bus.c: the D-Bus side of a cage, with sd-bus. Starting waits on the
 * systemd1 JobRemoved signal of our own job: the unit is Type=notify and
 * nspawn runs with --notify-ready=yes, so the job finishes exactly when the
 * cage's own systemd has booted. The agent runs like `systemd-run -M NAME
 * --wait --pty`: a transient unit of the cage's systemd, reached over the
 * machine's bus, whose ExecMainStatus is read back: machine1's shell would
 * lose it. */
#include "autoconfig.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>

#include "bus.h"
#include "pty.h"
#include "util.h"

#define SYSTEMD "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define MANAGER "org.freedesktop.systemd1.Manager"
#define MACHINED "org.freedesktop.machine1"
#define MACHINED_PATH "/org/freedesktop/machine1"
#define MACHINE_MANAGER "org.freedesktop.machine1.Manager"

/* What systemd said, else strerror(r), into the error record. */
static int bus_error_set(CageError *error, const sd_bus_error *e, int r) {
        if (e && sd_bus_error_is_set(e))
                return cage_error_set(error, r, "%s", e->message ? e->message : e->name);
        return cage_error_set(error, r, "%s", strerror(-r));
}

/* ---- waiting for a job ---- */

typedef struct JobWait {
        const char *job;
        char *result;
        bool done;
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        JobWait *w = userdata;
        uint32_t id;
        const char *path, *unit, *result;
        (void) error;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->job && streq(path, w->job)) {
                w->result = strdup(result);
                w->done = true;
        }
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        *(bool *) userdata = true;
        return 0;
}

/* Run the loop until the job in *w is removed or the timeout. The loop is
 * the caller's and lives on: flags, not sd_event_exit(), end the wait. */
static int wait_job(sd_event *e, JobWait *w, uint64_t timeout_usec) {
        _cleanup_(sd_event_source_disable_unrefp) sd_event_source *t = NULL;
        bool timed_out = false;
        int r = sd_event_add_time_relative(e, &t, CLOCK_MONOTONIC, timeout_usec, 0, on_timeout, &timed_out);
        if (r < 0)
                return r;
        while (!w->done && !timed_out)
                if ((r = sd_event_run(e, UINT64_MAX)) < 0)
                        return r;
        return w->done ? 0 : -ETIMEDOUT;
}

/* ---- building StartTransientUnit ---- */

/* systemd expands $NAME, ${NAME} and $$ in a command's arguments when it
 * runs it, transient units included: `sh -c 'kill $$'` would reach the agent
 * as `kill $`. Each '$' is sent as "$$" so the words arrive as they were. */
static char *escape_dollars(const char *s) {
        size_t n = 0;
        for (const char *p = s; *p; p++)
                n += *p == '$' ? 2 : 1;
        char *e = malloc(n + 1), *q = e;
        if (!e)
                return NULL;
        for (const char *p = s; *p; p++) {
                *q++ = *p;
                if (*p == '$')
                        *q++ = '$';
        }
        *q = 0;
        return e;
}

static int append_exec(sd_bus_message *m, const char *key, const char *path, char *const *argv) {
        _cleanup_strv_free_ char **words = NULL;
        int r;
        for (size_t i = 0; argv[i]; i++) {
                char *w = escape_dollars(argv[i]);
                if (!w || strv_push(&words, w) < 0)
                        return -ENOMEM;
        }
        if ((r = sd_bus_message_open_container(m, 'r', "sv")) < 0 || (r = sd_bus_message_append(m, "s", key)) < 0 ||
            (r = sd_bus_message_open_container(m, 'v', "a(sasb)")) < 0 || (r = sd_bus_message_open_container(m, 'a', "(sasb)")) < 0 ||
            (r = sd_bus_message_open_container(m, 'r', "sasb")) < 0 || (r = sd_bus_message_append(m, "s", path)) < 0 ||
            (r = sd_bus_message_append_strv(m, words)) < 0 || (r = sd_bus_message_append(m, "b", 0)) < 0)
                return r;
        for (int i = 0; i < 4; i++)
                if ((r = sd_bus_message_close_container(m)) < 0)
                        return r;
        return 0;
}

static int append_strv_property(sd_bus_message *m, const char *key, char *const *l) {
        int r;
        if ((r = sd_bus_message_open_container(m, 'r', "sv")) < 0 || (r = sd_bus_message_append(m, "s", key)) < 0 ||
            (r = sd_bus_message_open_container(m, 'v', "as")) < 0 || (r = sd_bus_message_append_strv(m, (char **) l)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0)
                return r;
        return sd_bus_message_close_container(m);
}

/* The limits as unit properties. Memory= is MemoryMax= alone: past it the
 * kernel OOM-kills the offending process in seconds. MemoryHigh= is set to
 * infinity (also on a running cage an older nspawn-cage started): any value
 * below MemoryMax= throttles a process that allocates little by little for
 * minutes instead of killing it (tests/vm/README.md has the figures). */
static int append_limits(sd_bus_message *m, unsigned mask, uint64_t memory, uint64_t swap, uint64_t cpus, uint64_t tasks) {
        int r = 0;
        if (mask & LIMIT_MEMORY)
                r = sd_bus_message_append(m, "(sv)(sv)", "MemoryMax", "t", memory, "MemoryHigh", "t", UINT64_MAX);
        if (r >= 0 && (mask & LIMIT_SWAP))
                r = sd_bus_message_append(m, "(sv)", "MemorySwapMax", "t", swap);
        if (r >= 0 && (mask & LIMIT_CPUS))
                r = sd_bus_message_append(m, "(sv)", "CPUQuotaPerSecUSec", "t",
                                          cpus == UINT64_MAX ? UINT64_MAX : cpus * 10000); /* hundredths of a CPU -> µs per s */
        if (r >= 0 && (mask & LIMIT_TASKS))
                r = sd_bus_message_append(m, "(sv)", "TasksMax", "t", tasks);
        return r;
}

int bus_set_limits(sd_bus *bus, const char *unit, unsigned mask, uint64_t memory, uint64_t swap, uint64_t cpus,
                   uint64_t tasks, CageError *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_method_call(bus, &m, SYSTEMD, SYSTEMD_PATH, MANAGER, "SetUnitProperties");
        if (r < 0 || (r = sd_bus_message_append(m, "sb", unit, 1)) < 0 || (r = sd_bus_message_open_container(m, 'a', "(sv)")) < 0 ||
            (r = append_limits(m, mask, memory, swap, cpus, tasks)) < 0 || (r = sd_bus_message_close_container(m)) < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &err, NULL);
        if (r < 0)
                bus_error_set(error, &err, r);
        return r;
}

static int start_transient(sd_bus *bus, sd_bus_message *m, const char **ret_job_copy, char **ret_job, CageError *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &err, &reply);
        if (r < 0) {
                bus_error_set(error, &err, r);
                return r;
        }
        const char *job;
        if ((r = sd_bus_message_read(reply, "o", &job)) < 0)
                return r;
        if (!(*ret_job = strdup(job)))
                return -ENOMEM;
        *ret_job_copy = *ret_job;
        return 0;
}

/* The properties of a cage's unit: its limits, what systemd must know to
 * run nspawn (notify, delegation, devices), and nspawn's command line. */
static int append_cage_properties(sd_bus_message *m, const CageUnit *u) {
        const CageSpec *s = u->spec;
        _cleanup_free_ char *dir_arg = strdup_printf("--directory=%s", u->rootfs), *machine_arg = strdup_printf("--machine=%s", s->name);
        _cleanup_free_ char *desc = strdup_printf("nspawn-cage %s (%s)", s->name, s->project);
        int r;
        if (!dir_arg || !machine_arg || !desc)
                return -ENOMEM;
        /* Settings come from /run/systemd/nspawn/NAME.nspawn, trusted; the
         * command line only says where and what to run. */
        char *argv[] = { "systemd-nspawn", "--quiet", "--keep-unit", "--register=yes", "--notify-ready=yes",
                         "--settings=trusted", machine_arg, dir_arg, NULL };
        _cleanup_strv_free_ char **env = NULL;
        if (u->unified_cgroup && strv_extend(&env, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1") < 0)
                return -ENOMEM;

        if ((r = append_limits(m, LIMIT_MEMORY | LIMIT_SWAP | LIMIT_CPUS | LIMIT_TASKS, s->memory, s->swap, s->cpus, s->tasks)) < 0)
                return r;
        /* OOMPolicy=continue: an OOM kill inside is the offending process's
         * end, not the cage's (systemd's default, stop, would end it). */
        r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)",
                                  "Description", "s", desc,
                                  "OOMPolicy", "s", "continue",
                                  "Slice", "s", "machine.slice",
                                  "Type", "s", "notify",
                                  "KillMode", "s", "mixed",
                                  "Delegate", "b", 1,
                                  "CollectMode", "s", "inactive-or-failed",
                                  "TimeoutStopUSec", "t", UINT64_C(15000000),
                                  "DevicePolicy", "s", "closed",
                                  "DeviceAllow", "a(ss)", 2, "char-pts", "rw", "/dev/net/tun", "rwm");
        if (r < 0)
                return r;
        /* GPU=: each node display.c binds in, by path (systemd takes its
         * major:minor from the host's node; "char-drm" needs the driver's
         * entry in /proc/devices). */
        if (s->devices) {
                if ((r = sd_bus_message_open_container(m, 'r', "sv")) < 0 || (r = sd_bus_message_append(m, "s", "DeviceAllow")) < 0 ||
                    (r = sd_bus_message_open_container(m, 'v', "a(ss)")) < 0 || (r = sd_bus_message_open_container(m, 'a', "(ss)")) < 0)
                        return r;
                for (size_t i = 0; s->devices[i]; i++)
                        if ((r = sd_bus_message_append(m, "(ss)", s->devices[i], "rw")) < 0)
                                return r;
                for (int i = 0; i < 3; i++)
                        if ((r = sd_bus_message_close_container(m)) < 0)
                                return r;
        }
        if ((r = append_exec(m, "ExecStart", u->nspawn, argv)) < 0)
                return r;
        /* Output to the journal explicitly: "inherit" would write into the
         * lock file. nspawn reads no stdin when it is not a terminal. */
        if (u->uid_lock_fd >= 0 &&
            (r = sd_bus_message_append(m, "(sv)(sv)(sv)", "StandardInputFileDescriptor", "h", u->uid_lock_fd,
                                       "StandardOutput", "s", "journal", "StandardError", "s", "journal")) < 0)
                return r;
        if (env && (r = append_strv_property(m, "Environment", env)) < 0)
                return r;
        return 0;
}

/* Start the transient unit whose properties append(m, data) adds, and wait
 * for its start job: "done" is success, anything else names the job's
 * result and where to look. `what` says what timed out. */
static int start_unit_and_wait(sd_bus *bus, sd_event *e, const char *unit, int (*append)(sd_bus_message *m, const void *data),
                               const void *data, uint64_t timeout_usec, const char *what, CageError *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *job = NULL;
        JobWait w = {};
        int r = sd_bus_match_signal(bus, &slot, SYSTEMD, SYSTEMD_PATH, MANAGER, "JobRemoved", on_job_removed, &w);
        if (r < 0)
                return r;
        (void) sd_bus_call_method(bus, SYSTEMD, SYSTEMD_PATH, MANAGER, "Subscribe", NULL, NULL, NULL);
        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD, SYSTEMD_PATH, MANAGER, "StartTransientUnit");
        if (r < 0 || (r = sd_bus_message_append(m, "ss", unit, "fail")) < 0 ||
            (r = sd_bus_message_open_container(m, 'a', "(sv)")) < 0 || (r = append(m, data)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0)
                return r;
        const char *jobp;
        if ((r = start_transient(bus, m, &jobp, &job, error)) < 0)
                return r;
        w.job = job;
        if ((r = wait_job(e, &w, timeout_usec)) < 0) {
                if (r == -ETIMEDOUT)
                        cage_error_set(error, r, "%s within %" PRIu64 " s", what, timeout_usec / 1000000);
                return r;
        }
        bool ok = streq(w.result, "done");
        if (!ok)
                cage_error_set(error, -EIO, "starting %s: job %s (see 'journalctl -u %s')", unit, w.result, unit);
        free(w.result);
        return ok ? 0 : -EIO;
}

static int append_cage(sd_bus_message *m, const void *data) {
        return append_cage_properties(m, data);
}

int bus_start_cage(sd_bus *bus, sd_event *e, const CageUnit *u, uint64_t timeout_usec, CageError *error) {
        return start_unit_and_wait(bus, e, u->unit, append_cage, u, timeout_usec, "the cage did not boot", error);
}

static int append_scope(sd_bus_message *m, const void *data) {
        const CageScope *c = data;
        return sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)",
                                     "Description", "s", c->description,
                                     "Slice", "s", "machine.slice",
                                     "PIDs", "au", 1, (uint32_t) c->pid,
                                     "BindsTo", "as", 1, c->bound_to,
                                     "PartOf", "as", 1, c->bound_to,
                                     "After", "as", 1, c->bound_to,
                                     "CollectMode", "s", "inactive-or-failed",
                                     "TasksMax", "t", c->tasks_max,
                                     "MemoryMax", "t", c->memory_max);
}

int bus_start_scope(sd_bus *bus, sd_event *e, const CageScope *c, uint64_t timeout_usec, CageError *error) {
        _cleanup_free_ char *what = strdup_printf("starting %s: no answer", c->unit);
        if (!what)
                return -ENOMEM;
        return start_unit_and_wait(bus, e, c->unit, append_scope, c, timeout_usec, what, error);
}

int bus_stop_unit(sd_bus *bus, sd_event *e, const char *unit, uint64_t timeout_usec) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        JobWait w = {};
        int r = sd_bus_match_signal(bus, &slot, SYSTEMD, SYSTEMD_PATH, MANAGER, "JobRemoved", on_job_removed, &w);
        if (r < 0)
                return r;
        (void) sd_bus_call_method(bus, SYSTEMD, SYSTEMD_PATH, MANAGER, "Subscribe", NULL, NULL, NULL);
        r = sd_bus_call_method(bus, SYSTEMD, SYSTEMD_PATH, MANAGER, "StopUnit", &err, &reply, "ss", unit, "replace");
        if (r < 0)
                return sd_bus_error_has_name(&err, "org.freedesktop.systemd1.NoSuchUnit") ? -ENOENT : r;
        const char *job;
        if ((r = sd_bus_message_read(reply, "o", &job)) < 0)
                return r;
        w.job = job;
        r = wait_job(e, &w, timeout_usec);
        free(w.result);
        return r;
}

void bus_reset_failed_unit(sd_bus *bus, const char *unit) {
        (void) sd_bus_call_method(bus, SYSTEMD, SYSTEMD_PATH, MANAGER, "ResetFailedUnit", NULL, NULL, "s", unit);
}

static int unit_path(sd_bus *bus, const char *unit, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, SYSTEMD, SYSTEMD_PATH, MANAGER, "GetUnit", &err, &reply, "s", unit);
        if (r < 0)
                return sd_bus_error_has_name(&err, "org.freedesktop.systemd1.NoSuchUnit") ? -ENOENT : r;
        const char *p;
        if ((r = sd_bus_message_read(reply, "o", &p)) < 0)
                return r;
        return (*ret = strdup(p)) ? 0 : -ENOMEM;
}

/* A unit's object path as systemd names it (what systemctl does): one
 * round trip less than GetUnit, where "not loaded" needs no answer of its
 * own (systemd's stub for it has no control group). */
static int unit_object_path(const char *unit, char **ret) {
        return sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, ret);
}

int bus_unit_active_state(sd_bus *bus, const char *unit, char **ret) {
        _cleanup_free_ char *path = NULL;
        int r = unit_path(bus, unit, &path);
        if (r < 0)
                return r;
        return sd_bus_get_property_string(bus, SYSTEMD, path, "org.freedesktop.systemd1.Unit", "ActiveState", NULL, ret);
}

int bus_unit_usage(sd_bus *bus, const char *unit, UnitUsage *ret) {
        _cleanup_free_ char *path = NULL;
        int r = unit_path(bus, unit, &path);
        if (r < 0)
                return r;
        static const struct { const char *iface, *name; size_t off; } props[] = {
                { "org.freedesktop.systemd1.Service", "MemoryCurrent", offsetof(UnitUsage, memory_current) },
                { "org.freedesktop.systemd1.Service", "MemoryMax", offsetof(UnitUsage, memory_max) },
                { "org.freedesktop.systemd1.Service", "MemorySwapMax", offsetof(UnitUsage, memory_swap_max) },
                { "org.freedesktop.systemd1.Service", "CPUUsageNSec", offsetof(UnitUsage, cpu_usage_nsec) },
                { "org.freedesktop.systemd1.Service", "CPUQuotaPerSecUSec", offsetof(UnitUsage, cpu_quota_per_sec_usec) },
                { "org.freedesktop.systemd1.Service", "TasksCurrent", offsetof(UnitUsage, tasks_current) },
                { "org.freedesktop.systemd1.Service", "TasksMax", offsetof(UnitUsage, tasks_max) },
                { "org.freedesktop.systemd1.Unit", "ActiveEnterTimestamp", offsetof(UnitUsage, active_enter_usec) },
        };
        UnitUsage u = {};
        (void) sd_bus_get_property_string(bus, SYSTEMD, path, "org.freedesktop.systemd1.Service", "ControlGroup", NULL, &u.control_group);
        for (size_t i = 0; i < ELEMENTSOF(props); i++) {
                uint64_t v = UINT64_MAX;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                if (sd_bus_get_property(bus, SYSTEMD, path, props[i].iface, props[i].name, NULL, &reply, "t") >= 0)
                        (void) sd_bus_message_read(reply, "t", &v);
                *(uint64_t *) ((char *) &u + props[i].off) = v;
        }
        *ret = u;
        return 0;
}

int bus_unit_control_group(sd_bus *bus, const char *unit, char **ret) {
        _cleanup_free_ char *path = NULL;
        int r = unit_object_path(unit, &path);
        if (r < 0)
                return r;
        return sd_bus_get_property_string(bus, SYSTEMD, path, "org.freedesktop.systemd1.Service", "ControlGroup", NULL, ret);
}

int bus_machine_leader(sd_bus *bus, const char *name, pid_t *ret_leader) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, MACHINED, MACHINED_PATH, MACHINE_MANAGER, "GetMachine", &err, &reply, "s", name);
        if (r < 0)
                return sd_bus_error_has_name(&err, "org.freedesktop.machine1.NoSuchMachine") ? -ENOENT : r;
        const char *path;
        if ((r = sd_bus_message_read(reply, "o", &path)) < 0 || !ret_leader)
                return r < 0 ? r : 0;
        uint32_t leader = 0;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *pr = NULL;
        r = sd_bus_get_property(bus, MACHINED, path, "org.freedesktop.machine1.Machine", "Leader", NULL, &pr, "u");
        if (r >= 0)
                r = sd_bus_message_read(pr, "u", &leader);
        if (r < 0)
                return r;
        *ret_leader = (pid_t) leader;
        return 0;
}

/* ---- the agent ---- */

typedef struct AgentWait {
        sd_bus *bus;
        char *unit_path;
        JobWait job; /* the start job: until it is gone, "inactive" means "not yet" */
        bool finished;
        int status;
        bool exec_known; /* exec_code/exec_status from the Service interface's last signal */
        int32_t exec_code, exec_status;
} AgentWait;

/* Whether the agent's unit is over and, if so, its status. `state` is its
 * ActiveState if a signal told it (then the Service interface's signal
 * just before it told ExecMainCode/ExecMainStatus), else NULL: then all is
 * asked for. */
static int check_agent(AgentWait *w, const char *state) {
        if (!w->job.done)
                return 0;
        _cleanup_free_ char *asked = NULL;
        if (!state) {
                int r = sd_bus_get_property_string(w->bus, SYSTEMD, w->unit_path, "org.freedesktop.systemd1.Unit", "ActiveState", NULL, &asked);
                if (r < 0)
                        return r;
                state = asked;
        }
        if (!streq(state, "inactive") && !streq(state, "failed"))
                return 0;
        int32_t code = 0, status = 0;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *a = NULL, *b = NULL;
        if (asked || !w->exec_known) {
                if (sd_bus_get_property(w->bus, SYSTEMD, w->unit_path, "org.freedesktop.systemd1.Service", "ExecMainCode", NULL, &a, "i") >= 0)
                        (void) sd_bus_message_read(a, "i", &code);
                if (sd_bus_get_property(w->bus, SYSTEMD, w->unit_path, "org.freedesktop.systemd1.Service", "ExecMainStatus", NULL, &b, "i") >= 0)
                        (void) sd_bus_message_read(b, "i", &status);
        } else {
                code = w->exec_code;
                status = w->exec_status;
        }
        /* Like a shell: the exit code, or 128 + the signal that killed it. */
        w->status = code == CLD_EXITED ? status : code == CLD_KILLED || code == CLD_DUMPED ? 128 + status : 255;
        w->finished = true;
        return 0;
}

/* What a PropertiesChanged signal of the agent's unit says. systemd sends
 * the Service interface's first (ExecMainCode, ExecMainStatus: kept in w),
 * then the Unit interface's (ActiveState): 0 for the first, 1 for the
 * second with the ActiveState it carries in *ret (NULL if none). */
static int read_properties_changed(sd_bus_message *m, AgentWait *w, const char **ret) {
        const char *iface, *name;
        bool service, have_code = false, have_status = false;
        int32_t code = 0, status = 0;
        *ret = NULL;
        int r = sd_bus_message_read(m, "s", &iface);
        if (r < 0)
                return r;
        service = streq(iface, "org.freedesktop.systemd1.Service");
        if (!service && !streq(iface, "org.freedesktop.systemd1.Unit"))
                return 0;
        if ((r = sd_bus_message_enter_container(m, 'a', "{sv}")) < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                if ((r = sd_bus_message_read(m, "s", &name)) < 0)
                        return r;
                if (!service && streq(name, "ActiveState"))
                        r = sd_bus_message_read(m, "v", "s", ret);
                else if (service && streq(name, "ExecMainCode") && (r = sd_bus_message_read(m, "v", "i", &code)) >= 0)
                        have_code = true;
                else if (service && streq(name, "ExecMainStatus") && (r = sd_bus_message_read(m, "v", "i", &status)) >= 0)
                        have_status = true;
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (service) {
                w->exec_known = have_code && have_status;
                w->exec_code = code;
                w->exec_status = status;
                return 0;
        }
        return 1;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (void) error;
        AgentWait *w = userdata;
        const char *state = NULL;
        int r = read_properties_changed(m, w, &state);
        if (r == 0)
                return 0;
        if (r < 0)
                w->exec_known = false;
        /* Unreadable, or without ActiveState: ask, as before the signal. */
        (void) check_agent(w, r > 0 ? state : NULL);
        return 0;
}

static void stop_agent(void *userdata) {
        AgentWait *w = userdata;
        (void) sd_bus_call_method(w->bus, SYSTEMD, w->unit_path, "org.freedesktop.systemd1.Unit", "Stop", NULL, NULL, "s", "replace");
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) s;
        (void) si;
        /* SIGTERM/SIGHUP/SIGINT reached us (not the agent: its terminal is
         * the cage's pty): stop the agent's unit, then its end ends us. */
        stop_agent(userdata);
        return 0;
}

/* The cage's bus closes when the cage stops (nspawn-cage stop, a crash):
 * no signal about the agent's unit will come any more. */
static int cage_gone(sd_bus *cage, CageError *error) {
        if (sd_bus_is_open(cage) > 0)
                return 0;
        cage_error_set(error, -ECONNRESET, "the cage stopped while the command ran");
        return -ECONNRESET;
}

void agent_session_done(AgentSession *s) {
        if (s->master >= 0)
                close(s->master);
        free(s->pty);
        sd_bus_flush_close_unref(s->cage);
        *s = (AgentSession) { .master = -1 };
}

int bus_open_agent_session(sd_bus *host, sd_event *e, const char *machine, AgentSession *ret, CageError *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(agent_session_done) AgentSession s = { .master = -1 };
        int r;

        /* A pty inside the cage, its master here. */
        r = sd_bus_call_method(host, MACHINED, MACHINED_PATH, MACHINE_MANAGER, "OpenMachinePTY", &err, &reply, "s", machine);
        if (r < 0) {
                cage_error_set(error, r, "opening a terminal in the cage: %s", err.message ? err.message : strerror(-r));
                return r;
        }
        int master_borrowed;
        const char *pty_path;
        if ((r = sd_bus_message_read(reply, "hs", &master_borrowed, &pty_path)) < 0)
                return r;
        if ((s.master = fcntl(master_borrowed, F_DUPFD_CLOEXEC, 3)) < 0)
                return -errno;
        if (!(s.pty = strdup(pty_path)))
                return -ENOMEM;
        /* The cage's own system bus. */
        if ((r = sd_bus_open_system_machine(&s.cage, machine)) < 0) {
                cage_error_set(error, r, "connecting to the system bus inside the cage: %s", strerror(-r));
                return r;
        }
        if ((r = sd_bus_attach_event(s.cage, e, 0)) < 0)
                return r;
        *ret = s;
        s = (AgentSession) { .master = -1 };
        return 0;
}

/* The agent's unit in the cage: on the pty, as the user, in the project,
 * with no namespaces and no set-id files of its own. */
static int append_agent_properties(sd_bus_message *m, const AgentRun *a, const char *pty) {
        int r;
        /* No TTYReset=/TTYVHangup=: systemd would flush the pty when the
         * unit ends, before we read what the agent wrote last (pty.c sets
         * the modes instead). StandardInput=tty-fail, not tty: the pty is
         * fresh, no session holds it, and "tty" (wait until it is free)
         * first sets an inotify watch whose close costs the agent's start
         * 8-25 ms (an RCU grace period); tty-fail takes it the same way
         * (TIOCSCTTY) and fails where "tty" would wait for ever. Not a
         * passed fd as systemd-run's: the agent would get no controlling
         * terminal (no job control, no ^C) and systemd would reset the pty. */
        r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)",
                                  "Description", "s", "nspawn-cage agent",
                                  "User", "s", a->user,
                                  "WorkingDirectory", "s", a->directory,
                                  "StandardInput", "s", "tty-fail",
                                  "StandardOutput", "s", "tty",
                                  "StandardError", "s", "tty",
                                  "TTYPath", "s", pty,
                                  "SendSIGHUP", "b", 1,
                                  "IgnoreSIGPIPE", "b", 0,
                                  "AddRef", "b", 1,
                                  "CollectMode", "s", "inactive-or-failed",
                                  "KillMode", "s", "control-group");
        if (r < 0)
                return r;
        /* No nested namespaces for the agent (unshare -Ur would give it a
         * root with every capability over new mount and network namespaces:
         * more kernel to attack). An argument filter of the cage's systemd:
         * nspawn's own filter can only name system calls. 0: none allowed;
         * a Containers= cage's agent: what its engine needs, and its own
         * cgroup subtree for the engine's containers. */
        if ((r = sd_bus_message_append(m, "(sv)", "RestrictNamespaces", "t", a->namespaces)) < 0)
                return r;
        if (a->namespaces != 0 && (r = sd_bus_message_append(m, "(sv)", "Delegate", "b", 1)) < 0)
                return r;
        /* No set-uid or set-gid file made by the agent: in the project it
         * would be the user's on the host (projectaudit.c checks again at
         * the cage's end, for cage root's). */
        if ((r = sd_bus_message_append(m, "(sv)", "RestrictSUIDSGID", "b", 1)) < 0)
                return r;
        /* A process of the agent killed at the cage's memory limit ends
         * alone: the agent's session lives on (the cage's systemd would
         * stop the whole unit by default). */
        if ((r = sd_bus_message_append(m, "(sv)", "OOMPolicy", "s", "continue")) < 0)
                return r;
        if ((r = append_exec(m, "ExecStart", a->argv[0], a->argv)) < 0 ||
            (r = append_strv_property(m, "Environment", a->environ)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0)
                return r;
        return 0;
}

int bus_run_agent(AgentSession *session, sd_event *e, const AgentRun *a, int *ret_status, CageError *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *job_slot = NULL;
        _cleanup_(pty_forward_freep) PtyForward *fwd = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *s_term = NULL, *s_hup = NULL, *s_int = NULL;
        _cleanup_free_ char *job = NULL, *unit = NULL;
        sd_bus *cage = session->cage;
        const char *pty = session->pty;
        int master = session->master;
        int r;

        /* 3. The agent as a transient unit of the cage's systemd. */
        uint64_t rnd = ((uint64_t) getpid() << 32) ^ (uint64_t) time(NULL);
        if (!(unit = strdup_printf("nspawn-cage-agent-%016" PRIx64 ".service", rnd)))
                return -ENOMEM;
        r = sd_bus_message_new_method_call(cage, &m, SYSTEMD, SYSTEMD_PATH, MANAGER, "StartTransientUnit");
        if (r < 0 || (r = sd_bus_message_append(m, "ss", unit, "fail")) < 0 ||
            (r = sd_bus_message_open_container(m, 'a', "(sv)")) < 0)
                return r;
        if ((r = append_agent_properties(m, a, pty)) < 0)
                return r;
        AgentWait w = { .bus = cage };
        _cleanup_free_ char *unit_path = NULL;
        if ((r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &unit_path)) < 0)
                return r;
        w.unit_path = unit_path;
        /* Asynchronous, as systemd-run's: the bus handles our messages in
         * order, so the matches hold before StartTransientUnit is sent on;
         * not waiting for each answer saves three round trips. */
        r = sd_bus_match_signal_async(cage, &slot, SYSTEMD, unit_path, "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                      on_properties_changed, NULL, &w);
        if (r < 0)
                return r;
        r = sd_bus_match_signal_async(cage, &job_slot, SYSTEMD, SYSTEMD_PATH, MANAGER, "JobRemoved", on_job_removed, NULL, &w.job);
        if (r < 0)
                return r;
        (void) sd_bus_call_method_async(cage, NULL, SYSTEMD, SYSTEMD_PATH, MANAGER, "Subscribe", NULL, NULL, NULL);

        /* Forward the terminal before the agent starts: nothing it prints is
         * lost. Our stdout gone (`| head` ended) stops the agent, as SIGPIPE
         * would in a pipeline. */
        if ((r = pty_forward_new(e, master, STDIN_FILENO, STDOUT_FILENO, stop_agent, &w, &fwd)) < 0)
                return r;
        const char *jobp;
        if ((r = start_transient(cage, m, &jobp, &job, error)) < 0)
                return r;
        w.job.job = job;

        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        (void) sd_event_add_signal(e, &s_term, SIGTERM, on_stop_signal, &w);
        (void) sd_event_add_signal(e, &s_hup, SIGHUP, on_stop_signal, &w);
        (void) sd_event_add_signal(e, &s_int, SIGINT, on_stop_signal, &w);

        while (!w.job.done)
                if ((r = sd_event_run(e, UINT64_MAX)) < 0 || (r = cage_gone(cage, error)) < 0)
                        return r;
        if (!streq(strempty(w.job.result), "done")) {
                cage_error_set(error, -EIO, "the command could not be started (job %s): is '%s' executable in the cage?",
                                           strempty(w.job.result), a->argv[0]);
                free(w.job.result);
                return -EIO;
        }
        free(w.job.result);
        (void) check_agent(&w, NULL); /* it may be over already */
        while (!w.finished)
                if ((r = sd_event_run(e, UINT64_MAX)) < 0 || (r = cage_gone(cage, error)) < 0) {
                        (void) pty_forward_finish(fwd, PTY_FINISH_IDLE_MSEC);
                        return r;
                }
        /* The unit is over, so is every process of it: what they wrote is in
         * the pty, and finishing reads it all. */
        (void) pty_forward_finish(fwd, PTY_FINISH_IDLE_MSEC);
        *ret_status = w.status;
        return 0;
}
