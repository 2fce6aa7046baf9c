/* pty.c: the terminal side of attaching to a cage: bytes between our
 * stdin/stdout and the master of a pseudo-terminal inside the cage, driven by
 * the caller's sd-event loop (where the agent's unit ending is seen too).
 *
 * Nothing written to the pty is lost, by construction rather than timing:
 * - we hold the slave side open ourselves (TIOCGPTPEER) from the start, so
 *   the master never reads EIO while the agent's unit has not opened its tty
 *   yet, and the kernel keeps what was written after the agent closed it;
 * - the agent's unit has no TTYReset=/TTYVHangup=: systemd resetting the tty
 *   at the unit's end flushes (TCIOFLUSH) whatever we had not read yet, which
 *   lost the output of short commands. We set the termios here instead;
 * - at the end, pty_forward_finish() closes our slave and reads until EIO,
 *   which the kernel returns only once every slave is closed and everything
 *   they wrote has been read.
 * The original termios of our terminal is kept in a static so that any exit
 * path can restore it. */
#include "autoconfig.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "pty.h"
#include "util.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

struct PtyForward {
        sd_event *event;
        int master, peer, in_fd, out_fd;
        sd_event_source *in_source, *master_source, *winch_source, *retry_source;
        bool in_tty, out_tty, out_gone, in_partial_line;
        struct sigaction saved_sigpipe;
        PtyOutputGone output_gone;
        void *userdata;
        char buf[65536];
};

static struct termios saved_termios;
static int saved_termios_fd = -1;

void pty_restore_terminal(void) {
        if (saved_termios_fd >= 0)
                (void) tcsetattr(saved_termios_fd, TCSADRAIN, &saved_termios);
}

/* Waits for room instead of dropping bytes when out is non-blocking (a
 * terminal shared with a program that set O_NONBLOCK) or a slow pipe. */
static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                                (void) poll(&pfd, 1, -1);
                                continue;
                        }
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static void sync_window_size(PtyForward *f) {
        struct winsize ws;
        if (f->out_tty && ioctl(f->out_fd, TIOCGWINSZ, &ws) >= 0)
                (void) ioctl(f->master, TIOCSWINSZ, &ws);
        else if (f->in_tty && ioctl(f->in_fd, TIOCGWINSZ, &ws) >= 0)
                (void) ioctl(f->master, TIOCSWINSZ, &ws);
}

/* The agent's output goes to out_fd; once out is gone (EPIPE: `| head`
 * ended), it is read and dropped so the agent never blocks on a full pty,
 * and the caller is told once, as a shell pipeline's SIGPIPE would. */
static void emit(PtyForward *f, size_t n) {
        if (f->out_gone)
                return;
        if (write_all(f->out_fd, f->buf, n) < 0) {
                f->out_gone = true;
                if (f->output_gone)
                        f->output_gone(f->userdata);
        }
}

/* The end of piped input, as a terminal says it: VEOF at the start of a
 * line; after a last line without its newline the first VEOF only hands
 * that line over, so a second one is needed. */
static void send_eof(PtyForward *f) {
        (void) write_all(f->master, "\004\004", f->in_partial_line ? 2 : 1);
}

static int on_input(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PtyForward *f = userdata;
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof buf);
        (void) revents;
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (k <= 0) {
                /* End of a pipe: tell the program as a terminal would, with
                 * the EOF character (the pty stays in canonical mode then). */
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
                if (!f->in_tty)
                        send_eof(f);
                return 0;
        }
        (void) write_all(f->master, buf, (size_t) k);
        f->in_partial_line = buf[k - 1] != '\n';
        return 0;
}

/* The pty's own modes, set here because the agent's unit does not reset
 * the tty: a terminal's defaults, UTF-8 input; no echo of piped input; no
 * output processing when our stdout is not a terminal, so that bytes arrive
 * as the agent wrote them ("\n" stays "\n", binary output unchanged). */
static void set_pty_modes(PtyForward *f) {
        struct termios t;
        if (tcgetattr(f->master, &t) < 0)
                return;
        t.c_iflag |= IUTF8;
        if (!f->in_tty)
                t.c_lflag &= ~(tcflag_t) (ECHO | ECHONL);
        if (!f->out_tty)
                t.c_oflag &= ~(tcflag_t) OPOST;
        (void) tcsetattr(f->master, TCSANOW, &t);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        PtyForward *f = userdata;
        (void) s;
        (void) usec;
        set_pty_modes(f); /* a hang-up reset them */
        (void) sd_event_source_set_enabled(f->master_source, SD_EVENT_ON);
        return 0;
}

static int on_master(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PtyForward *f = userdata;
        (void) revents;
        ssize_t k = read(fd, f->buf, sizeof f->buf);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (k <= 0) {
                /* EIO while we hold a slave: only a vhangup of the tty does
                 * that (our slave is hung up with the others). It is not the
                 * end, the agent's unit ending is; poll would report the
                 * hang-up at once, so look again in 50 ms. */
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
                uint64_t now;
                if (sd_event_now(f->event, CLOCK_MONOTONIC, &now) < 0)
                        return 0;
                if (f->retry_source) {
                        (void) sd_event_source_set_time(f->retry_source, now + 50 * 1000);
                        (void) sd_event_source_set_enabled(f->retry_source, SD_EVENT_ONESHOT);
                } else
                        (void) sd_event_add_time(f->event, &f->retry_source, CLOCK_MONOTONIC, now + 50 * 1000, 0, on_retry, f);
                return 0;
        }
        emit(f, (size_t) k);
        return 0;
}

static int on_winch(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) s;
        (void) si;
        sync_window_size(userdata);
        return 0;
}

int pty_forward_new(sd_event *e, int master, int in_fd, int out_fd, PtyOutputGone output_gone, void *userdata,
                    PtyForward **ret) {
        _cleanup_(pty_forward_freep) PtyForward *f = calloc(1, sizeof *f);
        int r;
        if (!f)
                return -ENOMEM;
        f->peer = -1;
        f->event = sd_event_ref(e);
        f->master = master;
        f->in_fd = in_fd;
        f->out_fd = out_fd;
        f->output_gone = output_gone;
        f->userdata = userdata;
        f->in_tty = isatty(in_fd);
        f->out_tty = isatty(out_fd);
        /* A closed stdout must come back as EPIPE, not kill us before the
         * cage is torn down. */
        struct sigaction ign = { .sa_handler = SIG_IGN };
        (void) sigaction(SIGPIPE, &ign, &f->saved_sigpipe);
        f->peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (f->peer < 0)
                return -errno;
        if (fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) < 0)
                return -errno;
        set_pty_modes(f);

        if (f->in_tty && saved_termios_fd < 0 && tcgetattr(in_fd, &saved_termios) >= 0) {
                saved_termios_fd = in_fd;
                struct termios raw = saved_termios;
                cfmakeraw(&raw);
                raw.c_oflag = saved_termios.c_oflag; /* keep output processing: "\n" stays a newline */
                (void) tcsetattr(in_fd, TCSANOW, &raw);
        }
        sync_window_size(f);
        if ((r = sd_event_add_io(e, &f->master_source, master, EPOLLIN, on_master, f)) < 0)
                return r;
        r = sd_event_add_io(e, &f->in_source, in_fd, EPOLLIN, on_input, f);
        if (r == -EPERM) {
                /* epoll refuses regular files (and /dev/null): read them at once. */
                char buf[4096];
                ssize_t k;
                while ((k = read(in_fd, buf, sizeof buf)) > 0) {
                        (void) write_all(master, buf, (size_t) k);
                        f->in_partial_line = buf[k - 1] != '\n';
                }
                send_eof(f);
        } else if (r < 0)
                return r;
        if (f->in_tty || f->out_tty) {
                sigset_t ss;
                sigemptyset(&ss);
                sigaddset(&ss, SIGWINCH);
                sigprocmask(SIG_BLOCK, &ss, NULL);
                if ((r = sd_event_add_signal(e, &f->winch_source, SIGWINCH, on_winch, f)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(f);
        return 0;
}

int pty_forward_finish(PtyForward *f, unsigned idle_msec) {
        if (!f)
                return 0;
        /* Ours was the last slave unless something in the cage still holds
         * the tty (a process that left the agent's unit): then stop after
         * idle_msec without data instead of waiting for it. */
        closep(&f->peer);
        f->peer = -1;
        sd_event_source_disable_unref(f->master_source);
        f->master_source = NULL;
        for (;;) {
                ssize_t n = read(f->master, f->buf, sizeof f->buf);
                if (n > 0) {
                        emit(f, (size_t) n);
                        continue;
                }
                if (n == 0 || (errno != EAGAIN && errno != EINTR))
                        return 0; /* EIO: every slave closed, everything read */
                struct pollfd p = { .fd = f->master, .events = POLLIN };
                int k = poll(&p, 1, (int) idle_msec);
                if (k == 0)
                        return -ETIMEDOUT;
                if (k < 0 && errno != EINTR)
                        return -errno;
        }
}

PtyForward *pty_forward_free(PtyForward *f) {
        if (!f)
                return NULL;
        sd_event_source_disable_unref(f->in_source);
        sd_event_source_disable_unref(f->master_source);
        sd_event_source_disable_unref(f->winch_source);
        sd_event_source_disable_unref(f->retry_source);
        sd_event_unref(f->event);
        closep(&f->peer);
        (void) sigaction(SIGPIPE, &f->saved_sigpipe, NULL);
        if (saved_termios_fd == f->in_fd) {
                pty_restore_terminal();
                saved_termios_fd = -1;
        }
        free(f);
        return NULL;
}
