/* pty.h: forwarding the user's terminal to a pseudo-terminal inside the
 * cage: raw mode, window size and SIGWINCH, pipes as well as terminals, and
 * the terminal restored on every way out. */
#pragma once

#include <systemd/sd-event.h>

typedef struct PtyForward PtyForward;

/* Start forwarding between our stdin/stdout and `master` (not taken). */
int pty_forward_new(sd_event *e, int master, PtyForward **ret);
/* Restores the terminal; NULL is fine. */
PtyForward *pty_forward_free(PtyForward *f);
static inline void pty_forward_freep(PtyForward **f) { pty_forward_free(*f); }
/* Drain what the cage wrote that has not reached stdout yet. */
void pty_forward_drain(PtyForward *f);

/* Put back the terminal if a signal handler must exit early. */
void pty_restore_terminal(void);
