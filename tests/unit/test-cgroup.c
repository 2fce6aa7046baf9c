/* test-cgroup.c: what the kernel's log says about a cage's limits (records
 * as Linux 6.1 writes them to /dev/kmsg), counted only for the cage's own
 * cgroup, and the message run gives at its end. */
#include "autoconfig.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "oomguard.h"
#include "tap.h"
#include "util.h"

#define CAGE "/machine.slice/nspawn-cage-lim.service"

static void record(const char *r, LimitHits *h) {
        cgroup_kmsg_record(r, strlen(r), CAGE, h);
}

/* A child holding mib MiB of touched memory, until killed. */
static pid_t holder(size_t mib) {
        int p[2];
        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                char *m = malloc(mib << 20);
                if (m)
                        memset(m, 'x', mib << 20);
                (void) write(p[1], m ? m + (mib << 19) : "x", 1); /* read: the memset is not optimised away */
                for (;;)
                        pause();
        }
        char c;
        (void) read(p[0], &c, 1);
        close(p[0]);
        close(p[1]);
        return pid;
}

/* dir/name/cgroup.procs listing pid, as a cgroup tree has it. */
static void cgroup_dir(const char *dir, const char *name, pid_t pid) {
        _cleanup_free_ char *d = strdup_printf("%s/%s", dir, name), *f = strdup_printf("%s/%s/cgroup.procs", dir, name);
        (void) mkdir(d, 0755);
        FILE *o = fopen(f, "w");
        if (o) {
                fprintf(o, "%d\n", (int) pid);
                fclose(o);
        }
}

int main(void) {
        LimitHits h = {};
        record("6,3121,412345678,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=" CAGE
               ",task_memcg=" CAGE "/payload/system.slice/nspawn-cage-agent-1.service,task=tail,pid=4242,uid=1000\n"
               " SUBSYSTEM=x\n", &h);
        ok(h.killed && streq(h.killed[0], "tail") && !h.killed[1], "an OOM kill whose memcg is the cage's names its task");
        record("6,3122,412345679,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=" CAGE
               "/payload,task_memcg=" CAGE "/payload/x,task=bash,pid=1,uid=1000\n", &h);
        ok(h.killed[1] && streq(h.killed[1], "bash"), "and one whose memcg is below the cage's");
        record("6,3123,412345680,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg="
               "/machine.slice/nspawn-cage-lim.service-2,task_memcg=/machine.slice/nspawn-cage-lim.service-2,task=evil,pid=2,uid=0\n", &h);
        record("6,3124,412345681,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg="
               CAGE ",task=big,pid=3,uid=0\n", &h);
        record("6,3125,412345682,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/machine.slice,task_memcg=" CAGE ",task=x,pid=4,uid=0\n", &h);
        ok(!h.killed[2], "another cgroup of a similar name, the whole machine's OOM, a parent's limit: not the cage's");
        record("3,3126,412345683,-;Memory cgroup out of memory: Killed process 4242 (tail) total-vm:1kB\n", &h);
        ok(!h.killed[2] && !h.forks_refused, "the line without a cgroup adds nothing");
        record("6,3127,412345684,-;cgroup: fork rejected by pids controller in /machine.slice/nspawn-cage-limx.service\n", &h);
        ok(!h.forks_refused, "a refused fork in another cage's cgroup is not ours");
        record("6,3128,412345685,-;cgroup: fork rejected by pids controller in " CAGE "/payload/system.slice/a.service\n", &h);
        ok(h.forks_refused, "one below the cage's cgroup is");
        record("garbage without a separator", &h);
        record("6,1,1,-;", &h);
        ok(!h.killed[2], "records without text are ignored");

        h.oom_kills = 2;
        _cleanup_free_ char *m = limit_hits_message(&h, "lim", UINT64_C(128) << 20, 64);
        is_str(m, "nspawn-cage: cage lim: the memory limit (Memory=128M) killed 2 processes while the command ran: tail, bash"
                  "; the cage runs on\n"
                  "nspawn-cage: cage lim: the task limit (Tasks=64) refused new processes while the command ran "
                  "(fork: Resource temporarily unavailable)\n",
               "the message names the limit, the count and the commands");
        limit_hits_done(&h);

        LimitHits b = { .oom_kills = 5, .thrashed = 1 };
        (void) strv_extend(&b.killed, "bash");
        (void) strv_extend(&b.killed, "bash");
        (void) strv_extend(&b.killed, "bash");
        _cleanup_free_ char *m2 = limit_hits_message(&b, "c", UINT64_MAX, UINT64_MAX);
        is_str(m2, "nspawn-cage: cage c: the memory limit (Memory=?) killed 5 processes while the command ran: bash (3 times) "
                   "and 2 the kernel did not name (1 of them by nspawn-cage: the cage had thrashed at the limit for 10 s "
                   "and the kernel's OOM killer had not acted); the cage runs on\n",
               "repeated names are counted, kills the log did not name (rate limit) are said");
        limit_hits_done(&b);
        /* The guard's seconds: (max, oom_kill, thrashing, victim gone). */
        OomGuardState g = { .max = 100 };
        unsigned t = 0, killed_at = 0;
        for (; t < 20 && !killed_at; t++)
                if (oomguard_step(&g, 101 + t, 0, true, true))
                        killed_at = t + 1;
        ok(killed_at == 10, "the guard kills after 10 s at the limit, stalled, without a kernel kill (at %u s)", killed_at);
        g.victim = true;
        bool again = false;
        for (unsigned i = 0; i < 29; i++)
                again |= oomguard_step(&g, 200 + i, 0, true, false);
        ok(!again, "not again while its victim has not left (29 s)");
        for (t = 0, killed_at = 0; t < 20 && !killed_at; t++)
                if (oomguard_step(&g, 300 + t, 0, true, t > 0))
                        killed_at = t + 1;
        ok(killed_at == 4, "a victim not gone after 30 s is no longer waited for: the next 3 s later (at %u s)", killed_at);
        g = (OomGuardState) { .max = 100, .victim = true };
        for (t = 0, killed_at = 0; t < 20 && !killed_at; t++)
                if (oomguard_step(&g, 101 + t, 0, true, t >= 2))
                        killed_at = t + 1;
        ok(killed_at == 6, "the victim gone and the cage still thrashing: the next 3 s later (at %u s)", killed_at);
        /* ... then the cage below the limit for 5 s, and at it again */
        for (t = 0; t < 5; t++)
                (void) oomguard_step(&g, g.max, 0, true, true);
        for (t = 0, killed_at = 0; t < 20 && !killed_at; t++)
                if (oomguard_step(&g, g.max + 1, 0, true, true))
                        killed_at = t + 1;
        ok(killed_at == 3, "back at the limit, stalled, soon after a victim left: the next after 3 s (%u)", killed_at);
        for (t = 0; t < 31; t++)
                (void) oomguard_step(&g, g.max, 0, false, true);
        for (t = 0, killed_at = 0; t < 20 && !killed_at; t++)
                if (oomguard_step(&g, g.max + 1, 0, true, true))
                        killed_at = t + 1;
        ok(killed_at == 10, "30 s after the last victim left: 10 s again (%u)", killed_at);
        g = (OomGuardState) { .max = 100 };
        again = false;
        for (t = 0; t < 30; t++)
                again |= oomguard_step(&g, 101 + t, t / 5, true, true);
        ok(!again, "the kernel killing every 5 s: the guard leaves it to the kernel");
        g = (OomGuardState) { .max = 100 };
        again = false;
        for (t = 0; t < 30; t++)
                again |= oomguard_step(&g, 100 + t / 2, 0, t % 2 == 0, true); /* at the limit (max grows) on odd seconds, stalled on even ones */
        ok(!again, "stalled but not at the limit, or at it without stalling: nothing");
        /* The guard's choice, in a tree shaped like a cage's cgroup: the
         * biggest below, not the cage's PID 1 (init.scope); the same on
         * every walk of the same directory (the first walk used to consume
         * a shared directory offset: later walks found nothing). */
        char tree[] = "/tmp/test-cgroup-XXXXXX";
        pid_t small = holder(8), big = holder(40), pid1 = holder(80);
        if (mkdtemp(tree)) {
                cgroup_dir(tree, ".", getpid());
                cgroup_dir(tree, "payload", small);
                cgroup_dir(tree, "payload/system.slice", 0);
                cgroup_dir(tree, "payload/system.slice/nspawn-cage-agent-1.service", big);
                cgroup_dir(tree, "init.scope", pid1);
        }
        int dfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        pid_t first = oomguard_biggest(dfd), second = oomguard_biggest(dfd), third = oomguard_biggest(dfd);
        ok(first == big, "the guard picks the biggest process below the cage (%d; 40 MiB: %d), not its PID 1 (80 MiB)", (int) first, (int) big);
        ok(second == big && third == big, "and the same on the second and third walk (%d, %d)", (int) second, (int) third);
        close(dfd);
        for (pid_t k[] = { small, big, pid1 }, *q = k; q < k + 3; q++)
                if (*q > 0) {
                        kill(*q, SIGKILL);
                        waitpid(*q, NULL, 0);
                }
        _cleanup_free_ char *rm = strdup_printf("rm -rf '%s'", tree);
        if (rm)
                (void) system(rm);

        ok(oomguard_thrashing("some avg10=33.60 avg60=31.05 avg300=10.90 total=37880180\nfull avg10=25.31 avg60=22.48 avg300=8.00 total=28104768\n"),
           "thrashing: every task stalled 25%% of the last 10 s (measured while a cage thrashed at its limit)");
        ok(!oomguard_thrashing("some avg10=0.59 avg60=0.10 avg300=0.00 total=1\nfull avg10=0.59 avg60=0.10 avg300=0.00 total=1\n"),
           "not thrashing: 0.59%% (measured while a cage read files at its limit)");
        LimitHits none = {};
        ok(!limit_hits_message(&none, "c", 1, 1), "nothing happened: no message");
        return tap_done();
}
