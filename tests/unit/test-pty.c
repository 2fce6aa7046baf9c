/* test-pty.c: the pty forwarder on real pseudo-terminal pairs, no cage:
 * the agent's side is a child process on the slave, our stdout a pipe or a
 * file. Each case is a way output was lost or the forwarder hung before. */
#include "autoconfig.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#include "pty.h"
#include "tap.h"
#include "util.h"

static int new_master(void) {
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
                abort();
        return m;
}

static int open_slave(int master, int flags) {
        char *name = ptsname(master);
        return name ? open(name, O_RDWR | O_CLOEXEC | flags) : -1;
}

static int tmpfile_fd(void) {
        char path[] = "/tmp/test-pty-XXXXXX";
        int fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                abort();
        unlink(path);
        return fd;
}

static char *read_back(int fd, size_t *ret_n) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                abort();
        char *b = malloc((size_t) st.st_size + 1);
        ssize_t n = pread(fd, b, (size_t) st.st_size, 0);
        b[n < 0 ? 0 : n] = 0;
        *ret_n = n < 0 ? 0 : (size_t) n;
        return b;
}

/* The agent: opens the slave (as its controlling terminal when setsid),
 * writes `n` bytes of a pattern holding every byte value, exits. */
static pid_t spawn_writer(int master, size_t n, bool vhangup_first) {
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        setsid();
        int s = open_slave(master, 0);
        if (s < 0)
                _exit(2);
        if (vhangup_first) {
                signal(SIGHUP, SIG_IGN); /* the hang-up's SIGHUP is for the session: us */
                (void) write(s, "before\n", 7);
                if (vhangup() < 0)
                        _exit(3);
                close(s);
                if ((s = open_slave(master, 0)) < 0)
                        _exit(4);
        }
        char buf[4096];
        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (char) (i % 256);
        for (size_t done = 0; done < n;) {
                size_t k = n - done < sizeof buf ? n - done : sizeof buf;
                ssize_t w = write(s, buf, k);
                if (w < 0)
                        _exit(5);
                done += (size_t) w;
        }
        _exit(0);
}

static bool pattern_ok(const char *b, size_t n, size_t want) {
        if (n != want)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) b[i] != (i % 4096) % 256)
                        return false;
        return true;
}

/* Run the loop until `pid` exited (its status in *status), at most ~20 s. */
static void run_until_exit(sd_event *e, pid_t pid, int *status) {
        for (int i = 0; i < 2000; i++) {
                if (waitpid(pid, status, WNOHANG) == pid)
                        return;
                (void) sd_event_run(e, 10 * 1000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
}

static int gone_calls;
static void on_gone(void *userdata) {
        (void) userdata;
        gone_calls++;
}

/* A writer whose output waits in the pty after it exited, the loop never
 * having run: all of it arrives, every byte value unchanged. */
static void test_buffered_after_exit(void) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sd_event_default(&e);
        int m = new_master(), out = tmpfile_fd(), in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        PtyForward *f = NULL;
        ok(pty_forward_new(e, m, in, out, on_gone, NULL, &f) == 0, "forwarder on a fresh pty");
        int st;
        pid_t pid = spawn_writer(m, 3000, false);
        waitpid(pid, &st, 0);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer wrote 3000 bytes and exited before anything read them");
        int r = pty_forward_finish(f, 2000);
        size_t n;
        _cleanup_free_ char *b = read_back(out, &n);
        ok(r == 0, "finish ends at EIO: every slave closed, everything read (r=%d)", r);
        ok(pattern_ok(b, n, 3000), "all 3000 bytes arrived unchanged, every byte value (got %zu)", n);
        pty_forward_free(f);
        close(m), close(out), close(in);
}

/* Before the agent opens its tty nothing is there to read: the loop must
 * neither spin (EIO/POLLHUP at once) nor lose what comes after. */
static void test_before_slave_opens(void) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sd_event_default(&e);
        int m = new_master(), out = tmpfile_fd(), in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        PtyForward *f = NULL;
        ok(pty_forward_new(e, m, in, out, on_gone, NULL, &f) == 0, "forwarder before any slave is open");
        int dispatched = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
                if (sd_event_run(e, 20 * 1000) > 0)
                        dispatched++;
                clock_gettime(CLOCK_MONOTONIC, &t1);
        } while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 300);
        ok(dispatched <= 2, "no busy loop while no slave is open: %d dispatches in 300 ms", dispatched);
        int st;
        pid_t pid = spawn_writer(m, 100000, false);
        run_until_exit(e, pid, &st);
        int r = pty_forward_finish(f, 2000);
        size_t n;
        _cleanup_free_ char *b = read_back(out, &n);
        ok(r == 0 && pattern_ok(b, n, 100000), "100000 bytes written after a late open arrive unchanged (got %zu, r=%d)", n, r);
        pty_forward_free(f);
        close(m), close(out), close(in);
}

/* systemd's TTYVHangup= (or anything with CAP_SYS_TTY_CONFIG) hangs the tty
 * up: not the end; what the reopened tty gets still arrives. */
static void test_vhangup(void) {
        if (geteuid() != 0) {
                printf("ok %d # SKIP vhangup needs CAP_SYS_TTY_CONFIG (root)\n", ++tap_n);
                return;
        }
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sd_event_default(&e);
        int m = new_master(), out = tmpfile_fd(), in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        PtyForward *f = NULL;
        ok(pty_forward_new(e, m, in, out, on_gone, NULL, &f) == 0, "forwarder for a tty that will be hung up");
        int st;
        pid_t pid = spawn_writer(m, 5000, true);
        run_until_exit(e, pid, &st);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer hung its tty up, reopened it and wrote (status %d)", st);
        int r = pty_forward_finish(f, 2000);
        size_t n;
        _cleanup_free_ char *b = read_back(out, &n);
        /* "before" may be flushed by the hang-up itself, and the hang-up
         * resets the pty's modes (output processing: "\n" becomes "\r\n"),
         * both the kernel's doing; everything written after it must be there. */
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
                if (!(b[i] == '\r' && i + 1 < n && b[i + 1] == '\n'))
                        b[j++] = b[i];
        n = j;
        const char *tail = n >= 5000 ? b + n - 5000 : b;
        ok(r == 0 && n >= 5000 && pattern_ok(tail, 5000, 5000), "after the vhangup all 5000 bytes arrived (got %zu, r=%d)", n, r);
        pty_forward_free(f);
        close(m), close(out), close(in);
}

/* Our stdout is a non-blocking pipe with a slow reader: EAGAIN is waited
 * out, not a reason to drop bytes. */
static void test_eagain_on_stdout(void) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sd_event_default(&e);
        int p[2], result = tmpfile_fd();
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        (void) fcntl(p[1], F_SETPIPE_SZ, 4096);
        (void) fcntl(p[1], F_SETFL, O_NONBLOCK);
        pid_t reader = fork();
        if (reader == 0) {
                close(p[1]);
                char buf[512];
                ssize_t k;
                struct timespec ms = { 0, 1000000 };
                while ((k = read(p[0], buf, sizeof buf)) > 0) {
                        if (write(result, buf, (size_t) k) != k)
                                _exit(1);
                        nanosleep(&ms, NULL);
                }
                _exit(0);
        }
        close(p[0]);
        int m = new_master(), in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        PtyForward *f = NULL;
        ok(pty_forward_new(e, m, in, p[1], on_gone, NULL, &f) == 0, "forwarder to a non-blocking pipe");
        int st;
        pid_t pid = spawn_writer(m, 262144, false);
        run_until_exit(e, pid, &st);
        int r = pty_forward_finish(f, 2000);
        pty_forward_free(f);
        close(p[1]);
        waitpid(reader, &st, 0);
        size_t n;
        _cleanup_free_ char *b = read_back(result, &n);
        ok(r == 0 && pattern_ok(b, n, 262144), "256 KiB through a 4 KiB non-blocking pipe read slowly: all there (got %zu)", n);
        close(m), close(in), close(result);
}

/* The reader of our stdout went away (`| head`): told once, and the pty is
 * still drained so the agent is never stuck on a full buffer. */
static void test_epipe(void) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sd_event_default(&e);
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        close(p[0]);
        int m = new_master(), in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        PtyForward *f = NULL;
        gone_calls = 0;
        ok(pty_forward_new(e, m, in, p[1], on_gone, NULL, &f) == 0, "forwarder to a pipe nobody reads");
        int st;
        pid_t pid = spawn_writer(m, 200000, false);
        run_until_exit(e, pid, &st);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer of 200000 bytes was not stuck (status %d)", st);
        ok(pty_forward_finish(f, 2000) == 0 && gone_calls == 1, "the caller was told once that output is gone (%d)", gone_calls);
        pty_forward_free(f);
        close(m), close(in), close(p[1]);
}

/* stdin is a pipe: its bytes reach the agent, then its end, as EOF, also
 * after a last line without its newline. */
static void test_stdin_eof(const char *input) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sd_event_default(&e);
        int p[2], out = tmpfile_fd();
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        int m = new_master();
        PtyForward *f = NULL;
        ok(pty_forward_new(e, m, p[0], out, on_gone, NULL, &f) == 0, "forwarder with a pipe as stdin");
        pid_t pid = fork();
        if (pid == 0) {
                close(p[1]);
                setsid();
                int s = open_slave(m, 0);
                char buf[256];
                size_t got = 0;
                ssize_t k;
                while ((k = read(s, buf + got, sizeof buf - got - 1)) > 0)
                        got += (size_t) k;
                buf[got] = 0;
                _exit(k == 0 && streq(buf, input) ? 0 : 1);
        }
        if (write(p[1], input, strlen(input)) != (ssize_t) strlen(input))
                abort();
        close(p[1]);
        int st;
        run_until_exit(e, pid, &st);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the agent read '%s', then EOF (status %d)", input[strlen(input) - 1] == '\n' ? "one\\ntwo\\n" : "one\\ntwo", st);
        (void) pty_forward_finish(f, 2000);
        size_t n;
        _cleanup_free_ char *b = read_back(out, &n);
        ok(n == 0, "piped input is not echoed back to stdout (%zu bytes)", n);
        pty_forward_free(f);
        close(m), close(p[0]), close(out);
}

/* Something else keeps the slave open after the agent ended: finish does
 * not wait for ever. */
static void test_stray_holder(void) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sd_event_default(&e);
        int m = new_master(), out = tmpfile_fd(), in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        PtyForward *f = NULL;
        ok(pty_forward_new(e, m, in, out, on_gone, NULL, &f) == 0, "forwarder with a stray holder of the slave");
        int s = open_slave(m, O_NOCTTY);
        if (write(s, "last words\n", 11) != 11)
                abort();
        int r = pty_forward_finish(f, 300);
        size_t n;
        _cleanup_free_ char *b = read_back(out, &n);
        ok(r == -ETIMEDOUT && n == 11 && memcmp(b, "last words\n", 11) == 0,
           "finish gives up after the idle time, with what was written delivered (r=%d, %zu bytes)", r, n);
        pty_forward_free(f);
        close(s), close(m), close(out), close(in);
}

int main(void) {
        test_buffered_after_exit();
        test_before_slave_opens();
        test_vhangup();
        test_eagain_on_stdout();
        test_epipe();
        test_stdin_eof("one\ntwo\n");
        test_stdin_eof("one\ntwo");
        test_stray_holder();
        return tap_done();
}
