/* verbs.c: what the verbs share (verbs.h). */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdarg.h>

#include "bus.h"
#include "verbs.h"

bool invoked_through_sudo(void) {
        return geteuid() == 0 && getenv("SUDO_UID");
}

int verb_fail(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        cage_vnotice(fmt, ap);
        va_end(ap);
        return 1;
}

int require_root(CageError *err) {
        if (geteuid() != 0)
                return cage_error_set(err, -EPERM, "this needs root: run it as 'sudo nspawn-cage ...'");
        return 0;
}

int host_open(Host *h, CageError *err) {
        int r;
        h->state_fd = -1;
        if ((r = sd_event_new(&h->event)) < 0)
                return cage_error_set(err, r, "cannot create an event loop: %s", strerror(-r));
        if ((r = sd_bus_open_system(&h->bus)) < 0)
                return cage_error_set(err, r, "cannot connect to the system bus (%s): is D-Bus running? nspawn-cage needs systemd as PID 1",
                                      strerror(-r));
        if ((r = sd_bus_attach_event(h->bus, h->event, 0)) < 0)
                return cage_error_set(err, r, "cannot attach the bus: %s", strerror(-r));
        if ((r = state_open(STATE_DIR, &h->state_fd)) < 0)
                return cage_error_set(err, r, "%s: %s (it must be a directory owned by root, not writable by others)", STATE_DIR, strerror(-r));
        /* Leases and kept environments: root's only, like the state (an
         * older version made it 0755: tightened here). */
        _cleanup_close_ int run_fd = open("/run", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rt_fd = -1;
        if (run_fd < 0 || (r = state_dir_open(run_fd, strrchr(RUNTIME_DIR, '/') + 1, &rt_fd)) < 0)
                return cage_error_set(err, run_fd < 0 ? -errno : r, "%s: %s (it must be a directory owned by root, not writable by others)",
                                      RUNTIME_DIR, strerror(run_fd < 0 ? errno : -r));
        return 0;
}

int open_cage(Host *h, const Args *a, CageRecord *ret, CageError *err) {
        _cleanup_(host_user_done) HostUser user = {};
        const char *what = a->load.project;
        int r;
        if ((r = require_root(err)) < 0 || (r = host_open(h, err)) < 0 || (r = invoking_user(a->load.sudo_uid, &user, err)) < 0)
                return r;
        if (!machine_name_is_valid(what) || strchr(what, '/') || state_read_record(h->state_fd, what, ret) < 0) {
                _cleanup_(cage_done) Cage cage = CAGE_NULL;
                if ((r = cage_load(&cage, &a->load, err)) < 0)
                        return r;
                if (state_read_record(h->state_fd, cage.spec->name, ret) < 0)
                        return cage_error_set(err, -ENOENT, "no cage named %s, and no running cage for that project; 'nspawn-cage list' shows them",
                                              what);
        }
        if (user.uid != 0 && ret->uid != user.uid) {
                cage_record_done(ret);
                return cage_error_set(err, -EPERM, "cage %s belongs to another user", what);
        }
        if (user.uid == 0 && (r = cage_owner_check(load_admin_dir(&a->load), ret, streq(a->verb, "shell"), err)) < 0) {
                cage_record_done(ret);
                return r;
        }
        return 0;
}
