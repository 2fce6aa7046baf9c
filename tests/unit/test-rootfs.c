/* test-rootfs.c: the rootfs plan holds exactly the closure, a rendered
 * /etc, the mutable directories and the project. */
#include "autoconfig.h"

#include "rootfs.h"
#include "tap.h"

static const RootfsEntry *find(const RootfsPlan *p, RootfsEntryType t, const char *path) {
        for (size_t i = 0; i < p->n_entries; i++)
                if (p->entries[i].type == t && streq(p->entries[i].path, path))
                        return &p->entries[i];
        return NULL;
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
        return tap_done();
}
