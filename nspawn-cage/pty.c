/* pty.c: the terminal side of attaching to a cage. Everything is driven by
 * the caller's sd-event loop so that D-Bus signals (the agent's unit ending)
 * and terminal I/O are handled in one place. The original termios is kept in
 * a static so that it can be restored from any exit path. */
#include "autoconfig.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "pty.h"
#include "util.h"

struct PtyForward {
        sd_event *event;
        int master;
        sd_event_source *in_source, *master_source, *winch_source, *retry_source;
        bool stdin_tty, stdout_tty, stdin_eof;
        char out[65536];
        size_t out_len;
};

static struct termios saved_termios;
static bool termios_saved;

void pty_restore_terminal(void) {
        if (termios_saved)
                (void) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
}

static void write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct timespec ts = { 0, 1000000 };
                                nanosleep(&ts, NULL);
                                continue;
                        }
                        return;
                }
                p += k;
                n -= (size_t) k;
        }
}

static void sync_window_size(PtyForward *f) {
        struct winsize ws;
        if (f->stdout_tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0)
                (void) ioctl(f->master, TIOCSWINSZ, &ws);
        else if (f->stdin_tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) >= 0)
                (void) ioctl(f->master, TIOCSWINSZ, &ws);
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PtyForward *f = userdata;
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (k <= 0) {
                /* End of a pipe: tell the program as a terminal would, with
                 * the EOF character (the pty is in canonical mode). */
                f->stdin_eof = true;
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
                if (!f->stdin_tty) {
                        char eof = 4;
                        write_all(f->master, &eof, 1);
                }
                return 0;
        }
        write_all(f->master, buf, (size_t) k);
        (void) revents;
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        PtyForward *f = userdata;
        (void) sd_event_source_set_enabled(f->master_source, SD_EVENT_ON);
        (void) s;
        (void) usec;
        return 0;
}

static int on_master(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PtyForward *f = userdata;
        ssize_t k = read(fd, f->out, sizeof f->out);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (k <= 0) {
                /* EIO: no slave side open right now. Not the end: before the
                 * agent's unit opens its tty, or while systemd resets it (opens
                 * and closes it), there is none either, and the agent's output
                 * would then wait for the final drain. Look again in 50 ms;
                 * the unit's end is what ends us. */
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
        write_all(STDOUT_FILENO, f->out, (size_t) k);
        (void) revents;
        return 0;
}

static int on_winch(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        sync_window_size(userdata);
        (void) s;
        (void) si;
        return 0;
}

int pty_forward_new(sd_event *e, int master, PtyForward **ret) {
        PtyForward *f = calloc(1, sizeof *f);
        int r;
        if (!f)
                return -ENOMEM;
        f->event = sd_event_ref(e);
        f->master = master;
        f->stdin_tty = isatty(STDIN_FILENO);
        f->stdout_tty = isatty(STDOUT_FILENO);
        (void) fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);

        if (f->stdin_tty && tcgetattr(STDIN_FILENO, &saved_termios) >= 0) {
                termios_saved = true;
                struct termios raw = saved_termios;
                cfmakeraw(&raw);
                raw.c_oflag = saved_termios.c_oflag; /* keep output processing: "\n" stays a newline */
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        }
        if (!f->stdin_tty) {
                /* No terminal: keep the cage's pty from echoing piped input. */
                struct termios t;
                if (tcgetattr(master, &t) >= 0) {
                        t.c_lflag &= ~(tcflag_t) (ECHO | ECHONL);
                        (void) tcsetattr(master, TCSANOW, &t);
                }
        }
        sync_window_size(f);
        r = sd_event_add_io(e, &f->master_source, master, EPOLLIN, on_master, f);
        if (r >= 0) {
                /* epoll refuses regular files: treat them as read at once. */
                r = sd_event_add_io(e, &f->in_source, STDIN_FILENO, EPOLLIN, on_stdin, f);
                if (r == -EPERM) {
                        char buf[4096];
                        ssize_t k;
                        while ((k = read(STDIN_FILENO, buf, sizeof buf)) > 0)
                                write_all(master, buf, (size_t) k);
                        char eof = 4;
                        write_all(master, &eof, 1);
                        r = 0;
                }
        }
        if (r >= 0 && (f->stdin_tty || f->stdout_tty)) {
                sigset_t ss;
                sigemptyset(&ss);
                sigaddset(&ss, SIGWINCH);
                sigprocmask(SIG_BLOCK, &ss, NULL);
                r = sd_event_add_signal(e, &f->winch_source, SIGWINCH, on_winch, f);
        }
        if (r < 0) {
                pty_forward_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

void pty_forward_drain(PtyForward *f) {
        if (!f)
                return;
        /* The kernel hands the pty's data over asynchronously: what the agent
         * wrote last may arrive after its unit is already inactive. Read until
         * every slave side is closed (EIO), or nothing came for 500 ms (a loaded machine may take that
         * long; only a process still holding the pty makes us wait it out). */
        for (int i = 0; i < 1000; i++) {
                struct pollfd p = { .fd = f->master, .events = POLLIN };
                int k = poll(&p, 1, 500);
                if (k <= 0)
                        break;
                ssize_t n = read(f->master, f->out, sizeof f->out);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n <= 0)
                        break;
                write_all(STDOUT_FILENO, f->out, (size_t) n);
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
        pty_restore_terminal();
        termios_saved = false;
        free(f);
        return NULL;
}
