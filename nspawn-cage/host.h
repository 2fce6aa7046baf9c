/* host.h: what a verb holds of the host while it acts on cages: the system
 * bus, the event loop and STATE_DIR as an fd; and the questions asked of
 * them about one cage (is it running, is it being started). The verb opens
 * them (verbs.c); modules take them as arguments. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "error.h"
#include "state.h"

typedef struct Host {
        sd_bus *bus;
        sd_event *event;
        int state_fd; /* STATE_DIR */
} Host;

#define HOST_NULL ((Host) { .state_fd = -1 })
void host_done(Host *h);

/* nspawn-cage-NAME.service */
char *unit_name(const char *name);
/* DIR/NAME.nspawn */
int settings_path(const char *dir, const char *name, char **ret);

int host_check_machined(Host *h, CageError *err);
/* Its starter holds a lock on its directory for its whole life. */
bool cage_locked(Host *h, const char *name);
/* Its unit is active and machined knows its leader. */
bool cage_running(Host *h, const CageRecord *rec);
/* The cage runs on without the nspawn-cage that started it: its record
 * names no helper any more, so gc does not wait for that pid. */
void cage_record_detached(Host *h, const char *name, int cage_fd);
/* For network_gc(): does cage name still have its directory? */
bool cage_dir_exists(const char *name, void *userdata);
