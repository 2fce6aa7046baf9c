/* test-idmap.c: the project's idmapped mount as a cage sees it. Without root:
 * map parsing and range picking in a scratch lock directory. As root, in a
 * private mount namespace: a fake project owned by 1000, idmapped at a
 * staging path, used from processes in a user namespace shifted like a
 * cage's (0..65535 -> BASE) as the agent (1000) and as cage root; what they
 * leave is checked on the host side. */
#include "autoconfig.h"

#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <grp.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <linux/capability.h>
#include <systemd/sd-bus.h>

#include "idmap.h"
#include "tap.h"
#include "util.h"

#define BASE UINT32_C(0x70000000) /* above nspawn's pick range: never a real container's */
#define U 1000
#define G 1000

static void skip(const char *why) {
        printf("ok %d # SKIP %s\n", ++tap_n, why);
}

/* ---- without root ---- */

static void test_overlaps(void) {
        ok(idmap_map_overlaps("         0 1879048192      65536\n", BASE, 0x10000), "a cage's map covers its range");
        ok(!idmap_map_overlaps("         0          0 4294967295\n", BASE, 0x10000), "the initial namespace's identity map takes nothing");
        ok(!idmap_map_overlaps("0 1879113728 65536\n", BASE, 0x10000), "the next range up does not overlap");
        ok(!idmap_map_overlaps("0 1878982656 65536\n", BASE, 0x10000), "the next range down does not overlap");
        ok(idmap_map_overlaps("0 100000 10\n1000 1879048000 500\n", BASE, 0x10000), "a partial overlap on a later line counts");
        ok(!idmap_map_overlaps("", BASE, 0x10000) && !idmap_map_overlaps("garbage\n", BASE, 0x10000), "empty or unparsable maps take nothing");
}

static int rm_cb(const char *p, const struct stat *st, int type, struct FTW *f) {
        (void) st;
        (void) f;
        return (type == FTW_DP ? rmdir(p) : unlink(p)) < 0 ? 0 : 0;
}

static void rm_rf(const char *p) {
        (void) nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void test_pick(void) {
        char dir[] = "/tmp/test-idmap-lock.XXXXXX";
        if (!mkdtemp(dir)) {
                ok(0, "scratch lock dir: %s", strerror(errno));
                return;
        }
        _cleanup_free_ char *locks = strdup_printf("%s/nspawn-uid", dir);
        uid_t b1 = 0, b2 = 0, b3 = 0;
        int fd1 = -1, fd2 = -1, fd3 = -1;
        int r = idmap_pick_range(locks, "demo", &b1, &fd1);
        ok(r == 0 && fd1 >= 0 && b1 % 0x10000 == 0 && b1 >= IDMAP_BASE_MIN && b1 <= IDMAP_BASE_MAX,
           "a range is picked: 64K-aligned, in nspawn's container range (0x%x, %d)", (unsigned) b1, r);
        _cleanup_free_ char *lockfile = strdup_printf("%s/%u", locks, (unsigned) b1);
        struct stat st;
        ok(lockfile && stat(lockfile, &st) == 0, "its lock file is %s/BASE in decimal", "nspawn-uid");
        r = idmap_pick_range(locks, "demo", &b2, &fd2);
        ok(r == 0 && b2 != b1, "while it is held, the same name gets another range (0x%x)", (unsigned) b2);
        idmap_release_range(locks, b2, fd2);
        idmap_release_range(locks, b1, fd1);
        ok(stat(lockfile, &st) < 0 && errno == ENOENT, "releasing removes the lock file");
        r = idmap_pick_range(locks, "demo", &b3, &fd3);
        ok(r == 0 && b3 == b1, "the pick is stable for a name");
        idmap_release_range(locks, b3, fd3);

        /* Someone else (systemd-nspawn, with an OFD lock; or a flock holder)
         * holds that base: it is skipped. */
        (void) mkdir(locks, 0755);
        int other = open(lockfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        ok(other >= 0 && fcntl(other, F_OFD_SETLK, &fl) == 0, "another holder takes an OFD lock like nspawn's");
        r = idmap_pick_range(locks, "demo", &b2, &fd2);
        ok(r == 0 && b2 != b1, "a base locked (OFD) by another is skipped");
        idmap_release_range(locks, b2, fd2);
        close(other);
        other = open(lockfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        ok(other >= 0 && flock(other, LOCK_EX) == 0, "another holder takes a flock");
        r = idmap_pick_range(locks, "demo", &b2, &fd2);
        ok(r == 0 && b2 != b1, "a base locked (flock) by another is skipped");
        idmap_release_range(locks, b2, fd2);
        close(other);
        ok(idmap_pick_range(locks, "", &b2, &fd2) == -EINVAL, "an empty name is refused");
        ok(idmap_preferred_base("demo") == b1, "idmap_preferred_base names the first candidate (what render shows)");

        /* Lock files left behind: what teardown and gc may remove. */
        r = idmap_pick_range(locks, "demo", &b2, &fd2);
        ok(r == 0 && idmap_remove_lock(locks, b2, "demo") == -EBUSY, "a held lock file is not removed (-EBUSY)");
        close(fd2); /* the holder dies without releasing: the file stays */
        ok(stat(lockfile, &st) == 0, "a killed holder leaves its lock file");
        ok(idmap_remove_lock(locks, b2, "other") == -ESRCH, "another cage's lock file is not removed (-ESRCH)");
        ok(idmap_remove_lock(locks, b2, "demo") == 1 && stat(lockfile, &st) < 0, "an unheld lock file of this cage is removed");
        ok(idmap_remove_lock(locks, b2, "demo") == 0, "and removing it again is a no-op");
        int nspawns = open(lockfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600); /* nspawn's own: empty */
        close(nspawns);
        r = idmap_pick_range(locks, "gone", &b3, &fd3);
        close(fd3);
        unsigned n = 99;
        ok(r == 0 && idmap_gc_locks(locks, &n) == 0 && n == 1, "gc removes the unheld nspawn-cage lock files only (%u)", n);
        ok(stat(lockfile, &st) == 0, "an nspawn lock file (not written by nspawn-cage) stays");
        rm_rf(dir);
}

/* ---- as root: processes in a cage-like user namespace ---- */

typedef int (*CageFn)(const char *staging, int out_fd);

/* Run fn in a child whose user namespace maps 0..65535 to BASE.., as
 * uid:gid inside with no supplementary groups, like a process in the
 * cage. Returns its exit status (fn's return: 0 or an errno); its output
 * (out_fd) lands in out. */
static int in_cage(uid_t uid, gid_t gid, CageFn fn, const char *staging, char *out, size_t out_size) {
        int sync[2], pipe_out[2];
        if (pipe2(sync, O_CLOEXEC) < 0 || pipe2(pipe_out, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char c;
                close(sync[1]);
                close(pipe_out[0]);
                if (unshare(CLONE_NEWUSER) < 0)
                        _exit(200);
                if (read(sync[0], &c, 1) != 1) /* the parent wrote our maps */
                        _exit(201);
                if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(202);
                _exit(fn(staging, pipe_out[1]));
        }
        close(sync[0]);
        close(pipe_out[1]);
        /* Give the child time to unshare: poll its userns link. */
        char self_ns[64] = "", child_ns[64] = "", path[64];
        (void) !readlink("/proc/self/ns/user", self_ns, sizeof self_ns - 1);
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int) pid);
        for (int i = 0; i < 2000; i++) {
                memset(child_ns, 0, sizeof child_ns);
                if (readlink(path, child_ns, sizeof child_ns - 1) > 0 && !streq(child_ns, self_ns))
                        break;
                usleep(1000);
        }
        char map[64];
        snprintf(map, sizeof map, "0 %u 65536\n", (unsigned) BASE);
        const char *files[] = { "uid_map", "gid_map" };
        for (size_t i = 0; i < 2; i++) {
                snprintf(path, sizeof path, "/proc/%d/%s", (int) pid, files[i]);
                int fd = open(path, O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, map, strlen(map)) < 0)
                        printf("# writing %s: %s\n", path, strerror(errno));
                if (fd >= 0)
                        close(fd);
        }
        (void) !write(sync[1], "x", 1);
        close(sync[1]);
        size_t n = 0;
        ssize_t l;
        while (out && n + 1 < out_size && (l = read(pipe_out[0], out + n, out_size - 1 - n)) > 0)
                n += (size_t) l;
        if (out)
                out[n] = 0;
        close(pipe_out[0]);
        int status;
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char at_buf[PATH_MAX];
static const char *at(const char *staging, const char *name) {
        snprintf(at_buf, sizeof at_buf, "%s/%s", staging, name);
        return at_buf;
}
#define RET(x) return (x) < 0 ? errno : 0

static int agent_create(const char *staging, int out) {
        (void) out;
        int fd = open(at(staging, "agent-file"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return errno;
        close(fd);
        RET(mkdir(at(staging, "agent-dir"), 0755));
}

static int see_owners(const char *staging, int out) {
        struct stat a, b;
        if (stat(at(staging, "hostroot"), &a) < 0 || stat(at(staging, "mine"), &b) < 0)
                return errno;
        dprintf(out, "%u:%u %u:%u", (unsigned) a.st_uid, (unsigned) a.st_gid, (unsigned) b.st_uid, (unsigned) b.st_gid);
        return 0;
}

static int write_hostroot(const char *staging, int out) {
        (void) out;
        int fd = open(at(staging, "hostroot"), O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
                close(fd);
        RET(fd);
}

static int read_secret(const char *staging, int out) {
        (void) out;
        int fd = open(at(staging, "secret"), O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
                close(fd);
        RET(fd);
}

static int root_create(const char *staging, int out) {
        (void) out;
        int fd = open(at(staging, "root-file"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
                close(fd);
        RET(fd);
}

static int root_mkdir(const char *staging, int out) {
        (void) out;
        RET(mkdir(at(staging, "root-dir"), 0755));
}

static int root_chown_0(const char *staging, int out) {
        (void) out;
        RET(chown(at(staging, "mine"), 0, 0));
}

static int root_chown_2000(const char *staging, int out) {
        (void) out;
        RET(chown(at(staging, "mine"), 2000, 2000));
}

static int root_chown_1000(const char *staging, int out) {
        (void) out;
        RET(chown(at(staging, "mine"), U, G));
}

static int root_chgrp_0(const char *staging, int out) {
        (void) out;
        RET(chown(at(staging, "mine"), (uid_t) -1, 0));
}

static int root_mknod(const char *staging, int out) {
        (void) out;
        RET(mknod(at(staging, "null"), S_IFCHR | 0666, makedev(1, 3)));
}

static int agent_chmod_suid(const char *staging, int out) {
        (void) out;
        RET(chmod(at(staging, "idcopy"), 06755));
}

static int root_chmod_suid(const char *staging, int out) {
        (void) out;
        RET(chmod(at(staging, "mine"), 06644));
}

static int run_idcopy(const char *staging, int out) {
        pid_t pid = fork();
        if (pid == 0) {
                dup2(out, 1);
                execl(at(staging, "idcopy"), "id", "-u", (char *) NULL);
                _exit(127);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) < 0)
                return errno;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static int root_setcap(const char *staging, int out) {
        (void) out;
        struct vfs_cap_data cap = { .magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE };
        cap.data[0].permitted = 1U << CAP_SETUID;
        RET(setxattr(at(staging, "idcopy"), "security.capability", &cap, XATTR_CAPS_SZ_2, 0));
}

static int mountinfo_options(const char *mountpoint, char *buf, size_t size) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                char mp[PATH_MAX], opts[1024];
                if (sscanf(line, "%*s %*s %*s %*s %4095s %1023s", mp, opts) == 2 && streq(mp, mountpoint)) {
                        snprintf(buf, size, "%s", opts);
                        return 1;
                }
        }
        return 0;
}

static bool has_opt(const char *opts, const char *o) {
        size_t n = strlen(o);
        for (const char *s = opts; (s = strstr(s, o)); s += n)
                if ((s == opts || s[-1] == ',') && (s[n] == 0 || s[n] == ','))
                        return true;
        return false;
}

static int copy_file(const char *from, const char *to, mode_t mode) {
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        char buf[65536];
        ssize_t l;
        if (in < 0 || out < 0)
                return -errno;
        while ((l = read(in, buf, sizeof buf)) > 0)
                if (write(out, buf, (size_t) l) != l)
                        return -EIO;
        return l < 0 ? -errno : 0;
}

static void test_mount(void) {
        const unsigned n_root_tests = 29;
        if (geteuid() != 0) {
                for (unsigned i = 0; i < n_root_tests; i++)
                        skip("not root: idmapped mounts need CAP_SYS_ADMIN");
                return;
        }
        /* Every mount of this test dies with this namespace. */
        if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0) {
                for (unsigned i = 0; i < n_root_tests; i++)
                        skip("cannot make a private mount namespace");
                return;
        }
        const char *tmp = getenv("NSPAWN_CAGE_IDMAP_TESTDIR") ? getenv("NSPAWN_CAGE_IDMAP_TESTDIR") : "/var/tmp";
        _cleanup_free_ char *dir = strdup_printf("%s/test-idmap.XXXXXX", tmp);
        if (!dir || !mkdtemp(dir)) {
                ok(0, "scratch dir in %s: %s", tmp, strerror(errno));
                return;
        }
        (void) chmod(dir, 0755);
        int r = idmap_supported(dir);
        if (r < 0) {
                char why[256];
                snprintf(why, sizeof why, "%s: no idmapped mounts here (%s)", tmp, strerror(-r));
                for (unsigned i = 0; i < n_root_tests; i++)
                        skip(why);
                rm_rf(dir);
                return;
        }
        ok(1, "idmap_supported(%s): yes", tmp);

        _cleanup_free_ char *project = strdup_printf("%s/project", dir), *staging = strdup_printf("%s/staging", dir);
        _cleanup_free_ char *reverse = strdup_printf("%s/reverse", dir);
        char p[PATH_MAX], out[256];
        mkdir(project, 0755);
        chown(project, U, G);
        snprintf(p, sizeof p, "%s/mine", project);
        close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        chown(p, U, G);
        snprintf(p, sizeof p, "%s/hostroot", project);
        close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        snprintf(p, sizeof p, "%s/secret", project);
        close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        snprintf(p, sizeof p, "%s/idcopy", project);
        copy_file("/usr/bin/id", p, 0755);
        chown(p, U, G);

        _cleanup_close_ int pfd = open(project, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = idmap_mount_project(pfd, U, G, BASE, staging);
        ok(r == 0, "idmapped mount of the project at the staging path (%s)", strerror(-r));
        char opts[1024] = "";
        ok(mountinfo_options(staging, opts, sizeof opts) > 0 && has_opt(opts, "idmapped") && has_opt(opts, "nosuid") &&
           has_opt(opts, "nodev"), "it is idmapped, nosuid, nodev (%s)", opts);
        ok(idmap_mount_project(pfd, U, G, BASE, staging) == -EBUSY, "a second mount at the same staging path is refused");
        ok(idmap_mount_project(pfd, 70000, G, BASE, staging) == -ERANGE, "a uid beyond the cage's 64K is refused");

        /* The agent: uid 1000 inside, kernel uid BASE+1000. */
        r = in_cage(U, G, agent_create, staging, NULL, 0);
        ok(r == 0, "the agent creates a file and a directory (%s)", strerror(r));
        struct stat st = {};
        snprintf(p, sizeof p, "%s/agent-file", project);
        ok(stat(p, &st) == 0 && st.st_uid == U && st.st_gid == G, "on the host they are owned by %u:%u (%u:%u)", U, G,
           (unsigned) st.st_uid, (unsigned) st.st_gid);
        snprintf(p, sizeof p, "%s/agent-dir", project);
        ok(stat(p, &st) == 0 && st.st_uid == U && st.st_gid == G, "the directory too");
        r = in_cage(U, G, see_owners, staging, out, sizeof out);
        is_str(r == 0 ? out : strerror(r), "65534:65534 1000:1000", "inside, a host-root file reads as the overflow id, the user's as 1000");
        ok(in_cage(U, G, write_hostroot, staging, NULL, 0) == EACCES, "the agent cannot write a host-root file");

        /* Cage root: uid 0 inside, kernel uid BASE, all capabilities in its
         * user namespace, none on the host. */
        r = in_cage(0, 0, root_create, staging, NULL, 0);
        snprintf(p, sizeof p, "%s/root-file", project);
        if (r == 0)
                ok(stat(p, &st) == 0 && st.st_uid == U, "cage root's file was created, owned by %u on the host", U);
        else
                ok(r == EOVERFLOW, "cage root cannot create a file: %s", strerror(r));
        ok(in_cage(0, 0, root_mkdir, staging, NULL, 0) == EOVERFLOW, "cage root cannot create a directory (EOVERFLOW)");
        ok(in_cage(0, 0, root_chown_0, staging, NULL, 0) == EOVERFLOW, "cage root cannot chown to 0 (EOVERFLOW)");
        ok(in_cage(0, 0, root_chown_2000, staging, NULL, 0) == EOVERFLOW, "cage root cannot chown to 2000 (EOVERFLOW)");
        ok(in_cage(0, 0, root_chgrp_0, staging, NULL, 0) == EOVERFLOW, "cage root cannot chgrp to 0 (EOVERFLOW)");
        ok(in_cage(0, 0, root_chown_1000, staging, NULL, 0) == 0, "cage root may chown to 1000:1000 (the user's own)");
        ok(in_cage(0, 0, write_hostroot, staging, NULL, 0) == EACCES, "cage root cannot write a host-root file (no DAC override on unmapped inodes)");
        ok(in_cage(0, 0, read_secret, staging, NULL, 0) == EACCES, "cage root cannot read a host-root 0600 file");
        r = in_cage(0, 0, root_mknod, staging, NULL, 0);
        ok(r == EPERM || r == EOVERFLOW, "cage root cannot make a device node (%s)", strerror(r));
        r = in_cage(0, 0, root_setcap, staging, NULL, 0);
        char cap[64];
        snprintf(p, sizeof p, "%s/idcopy", project);
        ssize_t cl = getxattr(p, "security.capability", cap, sizeof cap);
        if (r == 0) {
                struct vfs_ns_cap_data *c = (struct vfs_ns_cap_data *) cap;
                ok(cl == XATTR_CAPS_SZ_3 && c->rootid != 0, "a file capability set by cage root is namespaced, not for host root (rootid %u)",
                   cl == XATTR_CAPS_SZ_3 ? (unsigned) c->rootid : 0);
        } else
                ok(cl < 0, "cage root cannot set a file capability (%s)", strerror(r));

        /* setuid/setgid: only ever the user's own ids; not honored in the cage. */
        ok(in_cage(U, G, agent_chmod_suid, staging, NULL, 0) == 0, "the agent may chmod 6755 its own file");
        r = in_cage(2000, 2000, run_idcopy, staging, out, sizeof out);
        out[strcspn(out, "\n")] = 0;
        is_str(r == 0 ? out : "failed", "2000", "run by uid 2000 in the cage, a setuid-1000 file does not change its uid (nosuid)");
        snprintf(p, sizeof p, "%s/idcopy", project);
        (void) stat(p, &st);
        ok(in_cage(0, 0, root_chmod_suid, staging, NULL, 0) == 0, "cage root may chmod 6644 a file of the user's");
        struct stat st2 = {};
        snprintf(p, sizeof p, "%s/mine", project);
        ok(stat(p, &st2) == 0 && (st2.st_mode & S_ISUID) && st2.st_uid == U && st2.st_gid == G,
           "on the host, such setuid/setgid files name only the user's own ids (idcopy %u:%u %o, mine %u:%u %o)",
           (unsigned) st.st_uid, (unsigned) st.st_gid, (unsigned) st.st_mode & 07777,
           (unsigned) st2.st_uid, (unsigned) st2.st_gid, (unsigned) st2.st_mode & 07777);

        /* Direction: the other way round ("BASE+U U 1") maps nothing the cage
         * can use: the agent's files would be unmapped. */
        _cleanup_close_ int userns = -1;
        r = idmap_userns_fd(BASE + U, U, BASE + G, G, &userns);
        r = r < 0 ? r : idmap_mount(pfd, userns, reverse, 0);
        ok(r == 0, "a mount with the reverse mapping can be made");
        r = in_cage(U, G, see_owners, reverse, out, sizeof out);
        is_str(r == 0 ? out : strerror(r), "65534:65534 65534:65534", "with the reverse mapping the agent's own files are unmapped: 'U BASE+U 1' is the direction");
        (void) idmap_umount(reverse);

        /* Teardown. */
        ok(idmap_umount(staging) == 0 && mountinfo_options(staging, opts, sizeof opts) == 0, "idmap_umount detaches it");
        ok(idmap_umount(staging) == 0, "and is idempotent");
        snprintf(p, sizeof p, "%s/agent-file", project);
        ok(stat(p, &st) == 0 && st.st_uid == U, "the project's files stay on the host");
        rm_rf(dir);
}

/* start-unit: StartTransientUnit as bus.c builds it for a cage, plus
 * StandardInputFileDescriptor=3 (the locked range fd): systemd keeps it,
 * and so the lock, until the unit is gone. Does not wait for the job. */
static int start_unit(const char *unit, char **argv) {
        sd_bus *bus = NULL;
        sd_bus_message *m = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        int r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                                   "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)",
                                          "Slice", "s", "machine.slice",
                                          "Type", "s", "notify",
                                          "KillMode", "s", "mixed",
                                          "Delegate", "b", 1,
                                          "CollectMode", "s", "inactive-or-failed",
                                          "DevicePolicy", "s", "closed",
                                          "DeviceAllow", "a(ss)", 2, "char-pts", "rw", "/dev/net/tun", "rwm",
                                          "Environment", "as", 1, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1",
                                          "StandardInputFileDescriptor", "h", 3);
        if (r >= 0 && (r = sd_bus_message_open_container(m, 'r', "sv")) >= 0 && (r = sd_bus_message_append(m, "s", "ExecStart")) >= 0 &&
            (r = sd_bus_message_open_container(m, 'v', "a(sasb)")) >= 0 && (r = sd_bus_message_open_container(m, 'a', "(sasb)")) >= 0 &&
            (r = sd_bus_message_open_container(m, 'r', "sasb")) >= 0 && (r = sd_bus_message_append(m, "s", argv[0])) >= 0 &&
            (r = sd_bus_message_append_strv(m, argv)) >= 0 && (r = sd_bus_message_append(m, "b", 0)) >= 0)
                for (int i = 0; i < 5 && r >= 0; i++)
                        r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &err, NULL);
        if (r < 0)
                fprintf(stderr, "StartTransientUnit: %s\n", err.message ? err.message : strerror(-r));
        sd_bus_error_free(&err);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        return r;
}

/* The integration test (tests/integration/idmap.sh) drives the module
 * through this same binary: `test-idmap VERB ARGS`, one line out, 0 or 1. */
static int helper(int argc, char **argv) {
        int r = -EINVAL;
        if (argc == 3 && streq(argv[1], "pick")) {
                uid_t base;
                int fd;
                if ((r = idmap_pick_range(NULL, argv[2], &base, &fd)) >= 0) {
                        printf("%u\n", (unsigned) base);
                        idmap_release_range(NULL, base, fd);
                }
        } else if (argc >= 4 && streq(argv[1], "pick-exec")) {
                /* Pick, then run CMD with the locked fd as fd 3 and the base
                 * in $IDMAP_BASE: CMD hands the lock on to the cage's unit. */
                uid_t base;
                int fd;
                char b[16];
                if ((r = idmap_pick_range(NULL, argv[2], &base, &fd)) >= 0) {
                        snprintf(b, sizeof b, "%u", (unsigned) base);
                        if ((fd == 3 ? fcntl(fd, F_SETFD, 0) : dup2(fd, 3)) < 0 || setenv("IDMAP_BASE", b, 1) < 0)
                                r = -errno;
                        else {
                                execvp(argv[3], argv + 3);
                                r = -errno;
                        }
                }
        } else if (argc >= 4 && streq(argv[1], "start-unit")) {
                r = start_unit(argv[2], argv + 3);
        } else if (argc == 3 && streq(argv[1], "locked")) {
                /* Is BASE's lock file held (as nspawn would test it)? */
                _cleanup_free_ char *path = strdup_printf("%s/%s", IDMAP_LOCK_DIR, argv[2]);
                _cleanup_close_ int fd = path ? open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW) : -1;
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
                if (fd < 0 && errno == ENOENT)
                        r = 0, printf("free\n");
                else if (fd < 0 || fcntl(fd, F_OFD_GETLK, &fl) < 0)
                        r = -errno;
                else
                        r = 0, printf("%s\n", fl.l_type == F_UNLCK ? "free" : "locked");
        } else if (argc == 3 && streq(argv[1], "used")) {
                if ((r = idmap_range_used_by_processes(NULL, (uint32_t) strtoul(argv[2], NULL, 0), IDMAP_RANGE_SIZE)) >= 0)
                        printf("%s\n", r ? "used" : "free");
        } else if (argc == 3 && streq(argv[1], "supported")) {
                if ((r = idmap_supported(argv[2])) >= 0)
                        printf("supported\n");
        } else if (argc == 7 && streq(argv[1], "mount")) {
                _cleanup_close_ int fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = fd < 0 ? -errno
                           : idmap_mount_project(fd, (uid_t) strtoul(argv[3], NULL, 0), (gid_t) strtoul(argv[4], NULL, 0),
                                                 (uid_t) strtoul(argv[5], NULL, 0), argv[6]);
        } else if (argc == 3 && streq(argv[1], "umount"))
                r = idmap_umount(argv[2]);
        else
                fprintf(stderr, "usage: test-idmap [pick NAME | pick-exec NAME CMD... | start-unit UNIT ARGV... | locked BASE | used BASE | supported PATH | mount PROJECT UID GID BASE STAGING | umount STAGING]\n");
        if (r < 0 && r != -EINVAL)
                fprintf(stderr, "test-idmap %s: %s\n", argv[1], strerror(-r));
        return r < 0;
}

int main(int argc, char **argv) {
        if (argc > 1)
                return helper(argc, argv);
        test_overlaps();
        test_pick();
        test_mount();
        return tap_done();
}
