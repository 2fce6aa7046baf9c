/* pty.h: forwarding the user's terminal (or pipes) to a pseudo-terminal
 * inside the cage: raw mode, window size and SIGWINCH, EOF of a pipe, and
 * every byte the agent wrote delivered before the end is reported. */
#pragma once

#include <systemd/sd-event.h>

typedef struct PtyForward PtyForward;

/* Called once when out_fd stops taking output (EPIPE). */
typedef void (*PtyOutputGone)(void *userdata);

/* Forward between in_fd/out_fd and `master` (not taken): holds the pty's
 * slave open until pty_forward_finish(), sets the pty's modes, puts a
 * terminal in_fd in raw mode (restored by pty_forward_free()). */
int pty_forward_new(sd_event *e, int master, int in_fd, int out_fd, PtyOutputGone output_gone, void *userdata,
                    PtyForward **ret);
/* After the agent ended: deliver everything still in the pty. 0 once every
 * slave is closed and all was read; -ETIMEDOUT if something else still holds
 * the slave and nothing came for idle_msec. */
int pty_forward_finish(PtyForward *f, unsigned idle_msec);
#define PTY_FINISH_IDLE_MSEC 2000u
/* Restores the terminal; NULL is fine. */
PtyForward *pty_forward_free(PtyForward *f);
static inline void pty_forward_freep(PtyForward **f) { pty_forward_free(*f); }

/* Put back the terminal if a signal handler must exit early. */
void pty_restore_terminal(void);
