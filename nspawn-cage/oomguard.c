/* oomguard.c: kill the biggest process of a cage that thrashes at Memory=.
 * The kernel's memory-cgroup OOM killer acts only when reclaim frees
 * nothing; a process whose own code pages are charged to the cage evicts
 * and faults them back for minutes instead (measured in tests/vm/oom.sh:
 * never killed in 90 s). While a command runs, a child of nspawn-cage holding
 * only CAP_KILL watches the cage's memory pressure and, after THRASH_SECONDS
 * at the limit with every task stalled, does what the OOM killer would. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <sys/capability.h>

#include "cgroup.h"
#include "oomguard.h"
#include "util.h"

#define THRASH_SECONDS 10
/* Within FOLLOW_UP_WINDOW seconds after a victim left, the next kill comes
 * after FOLLOW_UP_SECONDS at the limit, stalled (several growing processes:
 * measured in tests/vm/oom.sh, 11 s a kill with THRASH_SECONDS each time). */
#define FOLLOW_UP_SECONDS 3
#define FOLLOW_UP_WINDOW 30
/* A victim not gone after this long is no longer waited for. */
#define VICTIM_WAIT_SECONDS 30
#define THRASH_FULL_AVG10 10.0 /* % of the time every task of the cage waited for memory */

static int read_file(int dfd, const char *name, char *buf, size_t size) {
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return 0;
}

/* memory.events' count of key (0 if it has none). */
static uint64_t key_value(const char *text, const char *key) {
        uint64_t v = 0;
        (void) cgroup_keyed_value(text, key, &v);
        return v;
}

bool oomguard_thrashing(const char *pressure) {
        const char *full = strstr(pressure, "full avg10=");
        return full && strtod(full + 11, NULL) >= THRASH_FULL_AVG10;
}

/* The size the OOM killer ranks by: resident and swapped pages. */
static uint64_t process_size(pid_t pid, int *ret_adj) {
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int) pid);
        *ret_adj = 0;
        if (read_file(AT_FDCWD, path, buf, sizeof buf) == 0)
                *ret_adj = atoi(buf);
        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        if (read_file(AT_FDCWD, path, buf, sizeof buf) < 0)
                return 0;
        uint64_t kb = 0;
        const char *p;
        if ((p = strstr(buf, "\nVmRSS:")))
                kb += strtoull(p + 7, NULL, 10);
        if ((p = strstr(buf, "\nVmSwap:")))
                kb += strtoull(p + 8, NULL, 10);
        return kb;
}

/* The biggest process below dfd, but not the cage's PID 1 (init.scope) nor
 * nspawn (supervisor), nor one the OOM killer may not take either. */
static void biggest_below(int dfd, pid_t *best, uint64_t *best_size) {
        char buf[65536];
        if (read_file(dfd, "cgroup.procs", buf, sizeof buf) == 0)
                for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
                        pid_t pid = (pid_t) atoi(l);
                        int adj;
                        uint64_t size = pid > 0 ? process_size(pid, &adj) : 0;
                        if (size > *best_size && adj != -1000) {
                                *best = pid;
                                *best_size = size;
                        }
                }
        /* A directory stream of its own: a dup() of dfd would share its
         * offset, and every walk after the first would see no cgroup below. */
        int d2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
        if (!d) {
                if (d2 >= 0)
                        close(d2);
                return;
        }
        for (struct dirent *e; (e = readdir(d));) {
                if (e->d_type != DT_DIR || e->d_name[0] == '.' || streq(e->d_name, "init.scope") || streq(e->d_name, "supervisor"))
                        continue;
                int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (sub >= 0) {
                        biggest_below(sub, best, best_size);
                        close(sub);
                }
        }
        closedir(d);
}

pid_t oomguard_biggest(int dfd) {
        pid_t pid = 0;
        uint64_t size = 0;
        biggest_below(dfd, &pid, &size);
        return pid;
}

/* The count `status` adds to memory.events' oom_kill (cgroup.c). */
static void count_kill(int dfd) {
        char v[32] = "";
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        ssize_t n = fgetxattr(fd, OOMGUARD_XATTR, v, sizeof v - 1);
        uint64_t c = n > 0 ? strtoull(v, NULL, 10) : 0;
        snprintf(v, sizeof v, "%" PRIu64, c + 1);
        (void) fsetxattr(fd, OOMGUARD_XATTR, v, strlen(v), 0);
        close(fd);
}

/* The process behind pidfd is in the cgroup `cgroup` or below it. */
static bool in_cgroup(pid_t pid, int pidfd, const char *cgroup) {
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/cgroup", (int) pid);
        if (read_file(AT_FDCWD, path, buf, sizeof buf) < 0 || strncmp(buf, "0::", 3) != 0)
                return false;
        size_t n = strlen(cgroup);
        bool in = strncmp(buf + 3, cgroup, n) == 0 && (buf[3 + n] == '/' || buf[3 + n] == '\n');
        /* still alive after the read: the pid was not reused, /proc/PID was that process */
        return in && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
}

/* Kill the biggest process below dfd; returns a pidfd of it (the victim),
 * or -1 when none was killed. */
static int kill_biggest(int dfd, const char *cgroup, int report_fd) {
        pid_t pid = oomguard_biggest(dfd);
        if (pid <= 0)
                return -1;
        char path[64], comm[64] = "?";
        snprintf(path, sizeof path, "/proc/%d/comm", (int) pid);
        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return -1;
        (void) read_file(AT_FDCWD, path, comm, sizeof comm);
        comm[strcspn(comm, "\n")] = 0;
        /* Between cgroup.procs and the pidfd the process may have ended and
         * its pid gone to a process of the host: only one of the cage dies. */
        if (in_cgroup(pid, pidfd, cgroup) && syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0) {
                count_kill(dfd);
                dprintf(report_fd, "%s\n", comm);
                return pidfd;
        }
        close(pidfd);
        return -1;
}

static bool gone(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        return poll(&p, 1, 0) != 0;
}

bool oomguard_step(OomGuardState *s, uint64_t max, uint64_t oom, bool thrashing, bool victim_gone) {
        /* at the limit, all stalled, and the kernel did not act */
        s->stalled = max > s->max && oom == s->oom && thrashing ? s->stalled + 1 : 0;
        s->max = max;
        s->oom = oom;
        /* The last victim leaves first (a dying process still holds its
         * memory and its place at the top), as the kernel's OOM killer
         * waits for its own. */
        if (s->victim) {
                if (!victim_gone && ++s->waited < VICTIM_WAIT_SECONDS)
                        return false;
                s->victim = false;
                s->after_victim = true;
                s->since_victim = s->stalled = 0;
        } else if (s->after_victim && ++s->since_victim >= FOLLOW_UP_WINDOW)
                s->after_victim = false;
        /* Back at the limit and stalled soon after a victim left (several
         * growing processes): the next goes sooner. */
        if (s->stalled < (s->after_victim ? FOLLOW_UP_SECONDS : THRASH_SECONDS))
                return false;
        s->stalled = s->waited = 0;
        return true;
}

__attribute__((noreturn)) static void guard(int dfd, const char *cgroup, int report_fd) {
        char events[1024], pressure[512];
        OomGuardState s = {};
        if (read_file(dfd, "memory.events", events, sizeof events) == 0) {
                s.max = key_value(events, "max");
                s.oom = key_value(events, "oom_kill");
        }
        for (int victim = -1;; sleep(1)) {
                if (getppid() == 1 || read_file(dfd, "memory.events", events, sizeof events) < 0 ||
                    read_file(dfd, "memory.pressure", pressure, sizeof pressure) < 0)
                        _exit(0);
                bool kill_now = oomguard_step(&s, key_value(events, "max"), key_value(events, "oom_kill"), oomguard_thrashing(pressure),
                                              victim < 0 || gone(victim));
                if (victim >= 0 && !s.victim) {
                        close(victim);
                        victim = -1;
                }
                if (kill_now) {
                        victim = kill_biggest(dfd, cgroup, report_fd);
                        s.victim = victim >= 0;
                }
        }
}

int oomguard_start(const char *cgroup, OomGuard *ret) {
        if (!cgroup || cgroup[0] != '/' || strstr(cgroup, ".."))
                return -EINVAL;
        _cleanup_free_ char *path = strdup_printf("/sys/fs/cgroup%s", cgroup);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (faccessat(dfd, "memory.pressure", R_OK, 0) < 0)
                return -errno;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return -errno;
        }
        if (pid == 0) {
                close(p[0]);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                /* Not the terminal's or a pipe's writer: `run | head` sees its end. */
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                for (int fd = 0; null >= 0 && fd < 3; fd++)
                        (void) dup2(null, fd);
                /* CAP_KILL only: the cage's processes are other uids'. */
                cap_value_t keep[] = { CAP_KILL };
                cap_t caps = cap_init();
                if (!caps || cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET) < 0 ||
                    cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET) < 0 || cap_set_proc(caps) < 0)
                        _exit(1);
                cap_free(caps);
                guard(dfd, cgroup, p[1]);
        }
        close(p[1]);
        *ret = (OomGuard) { .pid = pid, .report_fd = p[0] };
        return 0;
}

int oomguard_stop(OomGuard *g, char ***killed) {
        if (g->pid <= 0)
                return 0;
        (void) kill(g->pid, SIGKILL);
        (void) waitpid(g->pid, NULL, 0);
        g->pid = 0;
        char buf[4096];
        ssize_t n = read(g->report_fd, buf, sizeof buf - 1); /* the child is gone: all it wrote is there */
        close(g->report_fd);
        g->report_fd = -1;
        if (n <= 0)
                return 0;
        buf[n] = 0;
        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                if (strv_extend(killed, l) < 0)
                        return -ENOMEM;
        return 0;
}
