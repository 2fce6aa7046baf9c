/* test-bus.c: bus.c against a fake systemd1 and machine1 on a socketpair.
 * A child process serves the few methods, properties and signals bus.c
 * uses and records what it was asked; the parent calls bus.c's functions
 * as nspawn-cage does and judges what came back and what was sent. */
#include "autoconfig.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus.h"
#include "tap.h"

#define MANAGER "org.freedesktop.systemd1.Manager"
#define FAKE "org.example.Fake"

static StrBuf record; /* "Method NAME=VALUE..." lines of what the fake was asked */

/* The properties of a StartTransientUnit or SetUnitProperties call, as
 * NAME=VALUE for strings, booleans and numbers, NAME for the others. */
static int record_properties(sd_bus_message *m) {
        int r = sd_bus_message_enter_container(m, 'a', "(sv)");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "sv")) > 0) {
                const char *name, *contents;
                char type;
                if ((r = sd_bus_message_read(m, "s", &name)) < 0 || (r = sd_bus_message_peek_type(m, &type, &contents)) < 0)
                        return r;
                if (streq(contents, "t") || streq(contents, "s") || streq(contents, "b")) {
                        uint64_t t = 0;
                        const char *s = NULL;
                        int b = 0;
                        r = sd_bus_message_enter_container(m, 'v', contents);
                        r = r < 0 ? r : contents[0] == 't' ? sd_bus_message_read(m, "t", &t) : contents[0] == 's' ? sd_bus_message_read(m, "s", &s)
                                                                                              : sd_bus_message_read(m, "b", &b);
                        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                        if (contents[0] == 't')
                                strbuf_appendf(&record, " %s=%llu", name, (unsigned long long) t);
                        else
                                strbuf_appendf(&record, " %s=%s", name, contents[0] == 's' ? s : b ? "yes" : "no");
                } else {
                        if ((r = sd_bus_message_skip(m, "v")) < 0)
                                return r;
                        strbuf_appendf(&record, " %s", name);
                }
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

static int job_done(sd_bus_message *m, const char *unit) {
        sd_bus *bus = sd_bus_message_get_bus(m);
        int r = sd_bus_reply_method_return(m, "o", "/org/freedesktop/systemd1/job/7");
        if (r < 0)
                return r;
        /* A unit named *fail* fails its job, *slow* never finishes. */
        if (strstr(unit, "slow"))
                return 1;
        return sd_bus_emit_signal(bus, "/org/freedesktop/systemd1", MANAGER, "JobRemoved", "uoss", 7, "/org/freedesktop/systemd1/job/7",
                                  unit, strstr(unit, "fail") ? "failed" : "done");
}

static int method_get_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *unit;
        (void) userdata;
        int r = sd_bus_message_read(m, "s", &unit);
        if (r < 0)
                return r;
        if (!streq(unit, "cage.service"))
                return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not loaded.", unit);
        return sd_bus_reply_method_return(m, "o", "/fake/unit");
}

static int method_start_transient(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *unit, *mode;
        (void) userdata;
        int r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;
        if (strstr(unit, "denied"))
                return sd_bus_error_set(error, "org.freedesktop.DBus.Error.AccessDenied", "Access denied by the fake");
        strbuf_appendf(&record, "StartTransientUnit %s", unit);
        if ((r = record_properties(m)) < 0)
                return r;
        strbuf_append(&record, "\n");
        return job_done(m, unit);
}

static int method_stop_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *unit, *mode;
        (void) userdata;
        int r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;
        if (!strstr(unit, "cage"))
                return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not loaded.", unit);
        strbuf_appendf(&record, "StopUnit %s %s\n", unit, mode);
        return job_done(m, unit);
}

static int method_set_properties(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *unit;
        int runtime;
        (void) userdata;
        (void) error;
        int r = sd_bus_message_read(m, "sb", &unit, &runtime);
        if (r < 0)
                return r;
        strbuf_appendf(&record, "SetUnitProperties %s runtime=%s", unit, runtime ? "yes" : "no");
        if ((r = record_properties(m)) < 0)
                return r;
        strbuf_append(&record, "\n");
        return sd_bus_reply_method_return(m, NULL);
}

static int method_nothing(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (void) userdata;
        (void) error;
        return sd_bus_reply_method_return(m, NULL);
}

static int method_get_machine(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        (void) userdata;
        int r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        if (!streq(name, "cage"))
                return sd_bus_error_setf(error, "org.freedesktop.machine1.NoSuchMachine", "No machine '%s' known", name);
        return sd_bus_reply_method_return(m, "o", "/fake/machine");
}

static int method_record(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (void) userdata;
        (void) error;
        int r = sd_bus_reply_method_return(m, "s", strempty(record.s));
        strbuf_done(&record);
        return r;
}

static int get_active_state(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                            void *userdata, sd_bus_error *error) {
        (void) bus, (void) path, (void) interface, (void) property, (void) userdata, (void) error;
        return sd_bus_message_append(reply, "s", "active");
}

static int get_leader(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply, void *userdata,
                      sd_bus_error *error) {
        (void) bus, (void) path, (void) interface, (void) property, (void) userdata, (void) error;
        return sd_bus_message_append(reply, "u", (uint32_t) 4242);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("GetUnit", "s", "o", method_get_unit, 0),
        SD_BUS_METHOD("StartTransientUnit", "ssa(sv)a(sa(sv))", "o", method_start_transient, 0),
        SD_BUS_METHOD("StopUnit", "ss", "o", method_stop_unit, 0),
        SD_BUS_METHOD("SetUnitProperties", "sba(sv)", "", method_set_properties, 0),
        SD_BUS_METHOD("Subscribe", "", "", method_nothing, 0),
        SD_BUS_METHOD("ResetFailedUnit", "s", "", method_nothing, 0),
        SD_BUS_VTABLE_END,
};
static const sd_bus_vtable unit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("ActiveState", "s", get_active_state, 0, 0),
        SD_BUS_VTABLE_END,
};
static const sd_bus_vtable machined_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("GetMachine", "s", "o", method_get_machine, 0),
        SD_BUS_VTABLE_END,
};
static const sd_bus_vtable machine_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Leader", "u", get_leader, 0, 0),
        SD_BUS_VTABLE_END,
};
static const sd_bus_vtable fake_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Record", "", "s", method_record, 0),
        SD_BUS_VTABLE_END,
};

/* The child: serve until the parent hangs up. */
static _Noreturn void serve(int fd) {
        sd_bus *bus = NULL;
        sd_id128_t id;
        int r = sd_bus_new(&bus);
        r = r < 0 ? r : sd_bus_set_fd(bus, fd, fd);
        r = r < 0 ? r : sd_id128_randomize(&id);
        r = r < 0 ? r : sd_bus_set_server(bus, 1, id);
        /* A direct connection has no names: say whose the signals are. */
        r = r < 0 ? r : sd_bus_set_sender(bus, "org.freedesktop.systemd1");
        r = r < 0 ? r : sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1", MANAGER, manager_vtable, NULL);
        r = r < 0 ? r : sd_bus_add_object_vtable(bus, NULL, "/fake/unit", "org.freedesktop.systemd1.Unit", unit_vtable, NULL);
        r = r < 0 ? r : sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/machine1", "org.freedesktop.machine1.Manager", machined_vtable, NULL);
        r = r < 0 ? r : sd_bus_add_object_vtable(bus, NULL, "/fake/machine", "org.freedesktop.machine1.Machine", machine_vtable, NULL);
        r = r < 0 ? r : sd_bus_add_object_vtable(bus, NULL, "/fake", FAKE, fake_vtable, NULL);
        r = r < 0 ? r : sd_bus_start(bus);
        while (r >= 0) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
        }
        _exit(0);
}

static char *asked(sd_bus *bus) {
        sd_bus_message *reply = NULL;
        const char *s = NULL;
        char *copy = NULL;
        if (sd_bus_call_method(bus, "org.freedesktop.systemd1", "/fake", FAKE, "Record", NULL, &reply, "") >= 0 &&
            sd_bus_message_read(reply, "s", &s) >= 0)
                copy = strdup(s);
        sd_bus_message_unref(reply);
        return copy;
}

static void test_queries(sd_bus *bus) {
        char *state = NULL;
        pid_t leader = 0;
        ok(bus_unit_active_state(bus, "cage.service", &state) == 0 && streq_ptr(state, "active"), "ActiveState of a loaded unit");
        free(state);
        state = NULL;
        ok(bus_unit_active_state(bus, "other.service", &state) == -ENOENT && !state, "NoSuchUnit is -ENOENT");
        ok(bus_machine_leader(bus, "cage", &leader) == 0 && leader == 4242, "the machine's leader from machine1");
        ok(bus_machine_leader(bus, "gone", NULL) == -ENOENT, "NoSuchMachine is -ENOENT");
}

static void test_limits(sd_bus *bus) {
        CageError err = {};
        int r = bus_set_limits(bus, "cage.service", LIMIT_MEMORY | LIMIT_TASKS, UINT64_C(1) << 30, 0, 0, 64, &err);
        char *got = asked(bus);
        ok(r >= 0 && got && strstr(got, "SetUnitProperties cage.service runtime=yes") && strstr(got, " MemoryMax=1073741824") &&
           strstr(got, " TasksMax=64") && !strstr(got, "CPUQuota"), "set: only the masked limits, at runtime (%s)", strempty(got));
        free(got);
        cage_error_done(&err);
}

static void test_start(sd_bus *bus, sd_event *e) {
        CageSpec s = { .name = (char *) "cage", .project = (char *) "/home/alice/p", .memory = UINT64_C(2) << 30, .swap = 0,
                       .cpus = UINT64_MAX, .tasks = 512 };
        CageUnit u = { .spec = &s, .unit = "nspawn-cage-cage.service", .nspawn = "/usr/bin/systemd-nspawn", .rootfs = "/var/lib/x/rootfs",
                       .unified_cgroup = true, .uid_lock_fd = -1 };
        CageError err = {};
        int r = bus_start_cage(bus, e, &u, 5 * 1000000ULL, &err);
        char *got = asked(bus);
        ok(r == 0, "a cage's unit starts when its job is done (%s)", cage_error_message(&err, r));
        ok(got && strstr(got, "StartTransientUnit nspawn-cage-cage.service ") && strstr(got, " Slice=machine.slice") &&
           strstr(got, " Delegate=yes") && strstr(got, " Type=notify") && strstr(got, " MemoryMax=2147483648") && strstr(got, " TasksMax=512") &&
           strstr(got, " ExecStart"), "its properties: slice, delegation, notify, limits, ExecStart (%s)", strempty(got));
        ok(got && strstr(got, " DevicePolicy=closed"), "devices closed but for what it needs");
        free(got);
        cage_error_done(&err);

        u.unit = "nspawn-cage-fail.service";
        r = bus_start_cage(bus, e, &u, 5 * 1000000ULL, &err);
        ok(r == -EIO && err.message && strstr(err.message, "job failed") && strstr(err.message, "journalctl -u nspawn-cage-fail.service"),
           "a failed job says so, and where to look (%s)", strempty(err.message));
        cage_error_done(&err);

        u.unit = "nspawn-cage-denied.service";
        r = bus_start_cage(bus, e, &u, 5 * 1000000ULL, &err);
        ok(r < 0 && err.message && strstr(err.message, "Access denied by the fake"), "systemd's refusal is the message (%s)", strempty(err.message));
        cage_error_done(&err);

        u.unit = "nspawn-cage-slow.service";
        r = bus_start_cage(bus, e, &u, 200 * 1000ULL, &err);
        ok(r == -ETIMEDOUT && err.message && strstr(err.message, "did not boot within"), "a job that never ends times out (%s)",
           strempty(err.message));
        cage_error_done(&err);
        free(asked(bus));
}

static void test_stop(sd_bus *bus, sd_event *e) {
        ok(bus_stop_unit(bus, e, "nspawn-cage-cage.service", 5 * 1000000ULL) == 0, "stopping waits for the job");
        char *got = asked(bus);
        ok(got && strstr(got, "StopUnit nspawn-cage-cage.service replace"), "StopUnit with mode replace");
        free(got);
        ok(bus_stop_unit(bus, e, "other.service", 5 * 1000000ULL) == -ENOENT, "stopping a unit that is not loaded is -ENOENT");
}

int main(void) {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                return 1;
        pid_t pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                close(fds[0]);
                serve(fds[1]);
        }
        close(fds[1]);
        sd_bus *bus = NULL;
        sd_event *e = NULL;
        int r = sd_bus_new(&bus);
        r = r < 0 ? r : sd_bus_set_fd(bus, fds[0], fds[0]);
        r = r < 0 ? r : sd_bus_start(bus);
        r = r < 0 ? r : sd_event_new(&e);
        r = r < 0 ? r : sd_bus_attach_event(bus, e, 0);
        ok(r >= 0, "a direct connection to the fake systemd (%s)", strerror(r < 0 ? -r : 0));
        if (r >= 0) {
                test_queries(bus);
                test_limits(bus);
                test_start(bus, e);
                test_stop(bus, e);
        }
        sd_bus_flush_close_unref(bus);
        sd_event_unref(e);
        int status;
        (void) waitpid(pid, &status, 0);
        return tap_done();
}
