/* test-rootfs.c: the rootfs plan holds exactly the closure, a rendered
 * /etc, the mutable directories and the project. */
#include "autoconfig.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>

#include "rootfs.h"
#include "stage.h"
#include "tap.h"

static const RootfsEntry *find(const RootfsPlan *p, RootfsEntryType t, const char *path) {
        for (size_t i = 0; i < p->n_entries; i++)
                if (p->entries[i].type == t && streq(p->entries[i].path, path))
                        return &p->entries[i];
        return NULL;
}

/* A shell command on the scratch directory `dir` (every @ names it). */
static void run(const char *cmd, const char *dir) {
        _cleanup_free_ char *c = NULL;
        StrBuf b = {};
        for (const char *p = cmd; *p; p++)
                if (*p == '@')
                        strbuf_append(&b, dir);
                else
                        strbuf_appendn(&b, p, 1);
        if (strbuf_steal(&b, &c) < 0 || system(c) != 0) {
                printf("Bail out! %s failed\n", strempty(c));
                fflush(stdout);
                exit(1);
        }
}

/* A top-level whose root/ holds links out of the rootfs (root/srv and
 * root/opt -> OUTSIDE, an absolute path): the project's parents
 * (/srv/work) and a state bind's parents (/opt/state) must not be made,
 * chmod'ed or chown'ed through them. Audit issue 14, finding 2. */
static void crafted_toplevel(void) {
        /* rootfs_apply gives the cage's user its home, as root does; as anyone
         * else (a package build's sandbox) it stops there with EPERM first. */
        if (geteuid() != 0) {
                printf("ok %d - crafted top-level: links out of the rootfs are refused # SKIP needs root (rootfs_apply chowns to the cage's user)\n", ++tap_n);
                return;
        }
        char tmpl[] = "/tmp/test-rootfs.XXXXXX";
        const char *t = mkdtemp(tmpl);
        ok(t != NULL, "crafted top-level: a scratch directory");
        if (!t)
                return;
        run("mkdir -p @/top/root @/top/etc @/rootfs @/outside @/src", t);
        _cleanup_free_ char *outside = strdup_printf("%s/outside", t), *top = strdup_printf("%s/top", t);
        _cleanup_free_ char *l1 = strdup_printf("%s/top/root/srv", t), *l2 = strdup_printf("%s/top/root/opt", t);
        ok(symlink(outside, l1) == 0 && symlink(outside, l2) == 0 && chmod(outside, 0700) == 0, "root/srv and root/opt link to %s", outside);
        struct stat before;
        ok(stat(outside, &before) == 0, "the outside directory as it was");

        CageSpec s = { .name = "crafted", .project = "/srv/work/proj", .user = { "alice", 4242, 4242, "/home/alice" }, .toplevel = top };
        BindSpec b = { .source = outside, .destination = "/opt/state/dir", .as_user = true };
        s.binds = &b;
        s.n_binds = 1;
        RootfsPlan p;
        ok(rootfs_plan_build(&s, &p) == 0, "plan of the crafted top-level built");
        /* Bind sources are host paths; point them at a scratch directory. */
        for (size_t i = 0; i < p.n_entries; i++)
                if (p.entries[i].type == ROOTFS_BIND_RW || p.entries[i].type == ROOTFS_BIND_RO) {
                        free(p.entries[i].target);
                        p.entries[i].target = strdup_printf("%s/src", t);
                }
        _cleanup_free_ char *rootfs = strdup_printf("%s/rootfs", t), *bad = NULL;
        _cleanup_close_ int rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = rootfs_apply(&p, rootfd, &bad);
        ok(r == -ELOOP, "applying it is refused with ELOOP (got %s)", strerror(-r));
        is_str(bad, "/opt", "the refusal names the bind's parent that is a link");
        struct stat after;
        ok(stat(outside, &after) == 0 && after.st_mode == before.st_mode && after.st_uid == before.st_uid && after.st_gid == before.st_gid,
           "the outside directory keeps its mode and owner (%04o %u:%u)", (unsigned) (after.st_mode & 07777), (unsigned) after.st_uid, (unsigned) after.st_gid);
        _cleanup_free_ char *made1 = strdup_printf("%s/state", outside), *made2 = strdup_printf("%s/work", outside);
        ok(access(made1, F_OK) < 0 && access(made2, F_OK) < 0, "nothing was made outside the rootfs");
        rootfs_plan_done(&p);

        /* The project alone (no bind): its parent /srv is the link. */
        s.n_binds = 0;
        ok(rootfs_plan_build(&s, &p) == 0, "plan without the bind built");
        for (size_t i = 0; i < p.n_entries; i++)
                if (p.entries[i].type == ROOTFS_BIND_RW || p.entries[i].type == ROOTFS_BIND_RO) {
                        free(p.entries[i].target);
                        p.entries[i].target = strdup_printf("%s/src", t);
                }
        run("rm -rf @/rootfs && mkdir @/rootfs", t);
        closep(&rootfd);
        rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(bad);
        bad = NULL;
        r = rootfs_apply(&p, rootfd, &bad);
        ok(r == -ELOOP && streq_ptr(bad, "/srv"), "the project's parent /srv, a link, is refused (%s at %s)", strerror(-r), strempty(bad));
        ok(stat(outside, &after) == 0 && after.st_mode == before.st_mode && after.st_uid == before.st_uid && access(made2, F_OK) < 0,
           "still nothing made or changed outside");
        rootfs_plan_done(&p);

        /* The walk that stands in for openat2() on old kernels says the same. */
        int fd = path_open_nofollow_walk(rootfd, "srv/work", O_PATH | O_DIRECTORY, RESOLVE_BENEATH);
        ok(fd == -ELOOP, "fallback walk: srv/work passes a link: ELOOP (%d)", fd);
        fd = path_open_nofollow_walk(rootfd, "srv", O_PATH, RESOLVE_BENEATH);
        ok(fd == -ELOOP, "fallback walk: srv, a link as the last component: ELOOP (%d)", fd);
        fd = path_open_nofollow_walk(rootfd, "../outside", O_PATH | O_DIRECTORY, RESOLVE_BENEATH);
        ok(fd == -EXDEV, "fallback walk: .. is refused: EXDEV (%d)", fd);
        fd = path_open_nofollow_walk(rootfd, "/etc", O_PATH | O_DIRECTORY, RESOLVE_BENEATH);
        ok(fd == -EXDEV, "fallback walk: an absolute path beneath a fd is refused: EXDEV (%d)", fd);
        fd = path_open_nofollow_walk(rootfd, "etc/", O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH);
        ok(fd >= 0, "fallback walk: a real directory opens (%d)", fd);
        if (fd >= 0)
                close(fd);
        fd = path_open_nofollow(rootfd, "srv/work", O_PATH | O_DIRECTORY, RESOLVE_BENEATH);
        ok(fd == -ELOOP, "openat2 helper: srv/work passes a link: ELOOP (%d)", fd);
        run("rm -rf @", t);
}

int main(void) {
        CageSpec s = { .name = "demo", .project = "/home/alice/src/proj",
                       .user = { "alice", 1000, 1000, "/home/alice" },
                       .toplevel = "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top" };
        char *paths[] = { "/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-bash", "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top", NULL };
        s.store_paths = paths;
        RootfsPlan p;
        ok(rootfs_plan_build(&s, &p) == 0, "plan built");
        const RootfsEntry *e = find(&p, ROOTFS_FILE, "/etc/passwd");
        ok(e && strstr(e->contents, "\nalice:x:1000:1000:alice:/home/alice:/bin/bash\n"), "passwd has the user with the same uid, gid and name");
        e = find(&p, ROOTFS_FILE, "/etc/os-release");
        ok(e && strstr(e->contents, "ID=nspawn-cage\n"), "a real os-release");
        ok(find(&p, ROOTFS_BIND_RW, "/home/alice/src/proj") != NULL, "project bound read-write at the same path");
        e = find(&p, ROOTFS_DIR, "/home/alice");
        ok(e && e->user_owned, "home directory owned by the user");
        ok(find(&p, ROOTFS_DIR, "/home/alice/src") != NULL, "project parents created");
        ok(find(&p, ROOTFS_BIND_RO, paths[0]) && find(&p, ROOTFS_BIND_RO, paths[1]), "store paths bound read-only");
        size_t binds = 0;
        for (size_t i = 0; i < p.n_entries; i++)
                binds += p.entries[i].type == ROOTFS_BIND_RO || p.entries[i].type == ROOTFS_BIND_RW;
        ok(binds == 3, "nothing else is bound");
        e = find(&p, ROOTFS_SYMLINK, "/sbin/init");
        ok(e && streq(e->target, "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top/init"), "init from the top-level");
        e = find(&p, ROOTFS_FILE, "/etc/machine-id");
        ok(e && strlen(e->contents) == 33, "machine-id is 32 hex digits");
        ok(find(&p, ROOTFS_FILE, "/etc/resolv.conf") != NULL, "no network: resolv.conf rendered, not copied");
        char *text;
        ok(rootfs_plan_format(&p, "alice", &text) == 0 && strstr(text, "dir /home/alice 0755 alice\n") &&
           strstr(text, "bind-rw /home/alice/src/proj <- /home/alice/src/proj\n"), "listing is readable");
        free(text);
        rootfs_plan_done(&p);
        for (int i = 0; i < _ROOTFS_ENTRY_TYPE_MAX; i++)
                ok(rootfs_entry_type_from_string(rootfs_entry_type_to_string(i)) == (RootfsEntryType) i, "entry type %d round trip", i);
        s.network = NETWORK_PRIVATE;
        rootfs_plan_build(&s, &p);
        ok(find(&p, ROOTFS_RESOLVERS, "/etc/resolv.conf") != NULL, "Mode=private: resolv.conf names the host's upstream servers");
        rootfs_plan_done(&p);
        char *addrs[] = { "192.0.2.10", NULL }, *literal[] = { "198.51.100.7", NULL };
        NetworkAllow allow[] = { { .host = "allowed.test", .port = 8080, .addrs = addrs },
                                 { .host = "198.51.100.7", .port = 443, .addrs = literal } };
        s.allow = allow;
        s.n_allow = ELEMENTSOF(allow);
        rootfs_plan_build(&s, &p);
        e = find(&p, ROOTFS_FILE, "/etc/resolv.conf");
        ok(e && !strstr(e->contents, "nameserver") && strstr(e->contents, "# No name server: this cage may reach only the destinations of [Network] Allow="),
           "Allow=: no name server, and resolv.conf says why");
        e = find(&p, ROOTFS_FILE, "/etc/hosts");
        ok(e && strstr(e->contents, "127.0.0.1 localhost demo\n") && strstr(e->contents, "\n192.0.2.10 allowed.test\n") && !strstr(e->contents, "198.51.100.7"),
           "Allow=: the names are pinned in /etc/hosts, the literals need no line");
        rootfs_plan_done(&p);
        s.allow = NULL;
        s.n_allow = 0;
        s.network = NETWORK_HOST;
        rootfs_plan_build(&s, &p);
        ok(find(&p, ROOTFS_COPY, "/etc/resolv.conf") != NULL, "Mode=host: resolv.conf is the host's");
        rootfs_plan_done(&p);
        /* Containers=podman: the engine's /etc/containers; none otherwise. */
        ok(!find(&p, ROOTFS_FILE, "/etc/containers/containers.conf"), "no /etc/containers without Containers=");
        s.containers = CONTAINERS_PODMAN;
        rootfs_plan_build(&s, &p);
        e = find(&p, ROOTFS_FILE, "/etc/containers/containers.conf");
        ok(e && strstr(e->contents, "keyring = false\n") && strstr(e->contents, "cgroup_manager = \"cgroupfs\"\n"),
           "Containers=podman: containers.conf without a session keyring, with the cgroupfs manager");
        e = find(&p, ROOTFS_FILE, "/etc/containers/storage.conf");
        ok(e && strstr(e->contents, "ignore_chown_errors = \"true\"\n") && find(&p, ROOTFS_FILE, "/etc/containers/policy.json") &&
           find(&p, ROOTFS_DIR, "/etc/containers"), "... storage.conf tolerating the one-uid mapping, and policy.json");
        rootfs_plan_done(&p);
        s.containers = CONTAINERS_NO;
        crafted_toplevel();
        return tap_done();
}
