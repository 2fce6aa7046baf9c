/* host.c: the host's bus, event loop and state directory, and what they
 * say about one cage (host.h). */
#include "autoconfig.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "bus.h"
#include "host.h"

void host_done(Host *h) {
        sd_bus_flush_close_unref(h->bus);
        sd_event_unref(h->event);
        if (h->state_fd >= 0)
                close(h->state_fd);
        *h = HOST_NULL;
}

char *unit_name(const char *name) { return strdup_printf("nspawn-cage-%s.service", name); }

int settings_path(const char *dir, const char *name, char **ret) {
        return (*ret = strdup_printf("%s/%s.nspawn", dir, name)) ? 0 : -ENOMEM;
}

int host_check_machined(Host *h, CageError *err) {
        int r = bus_machine_leader(h->bus, "nspawn-cage-probe", NULL);
        if (r == -ENOENT)
                return 0;
        return cage_error_set(err, r, "systemd-machined is not available (%s); install systemd-container and start systemd-machined.service",
                              strerror(-r));
}

bool cage_locked(Host *h, const char *name) {
        _cleanup_free_ char *dir = strdup_printf("cages/%s", name);
        _cleanup_close_ int fd = dir ? openat(h->state_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        return false;
}

bool cage_running(Host *h, const CageRecord *rec) {
        _cleanup_free_ char *state = NULL;
        if (bus_unit_active_state(h->bus, rec->unit, &state) < 0)
                return false;
        return streq(state, "active") && bus_machine_leader(h->bus, rec->name, NULL) >= 0;
}

void cage_record_detached(Host *h, const char *name, int cage_fd) {
        CageRecord rec = {};
        if (state_read_record(h->state_fd, name, &rec) < 0)
                return;
        rec.helper = 0;
        (void) state_write_record(cage_fd, &rec);
        cage_record_done(&rec);
}

bool cage_dir_exists(const char *name, void *userdata) {
        Host *h = userdata;
        _cleanup_free_ char *dir = strdup_printf("cages/%s", name);
        struct stat st;
        return !dir || fstatat(h->state_fd, dir, &st, AT_SYMLINK_NOFOLLOW) == 0;
}
