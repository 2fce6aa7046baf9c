/* test-builders.c: builders.h: who counts as a trusted Nix user, and what a
 * Containers=podman cage gets (and a default cage does not). */
#include "autoconfig.h"

#include "builders.h"
#include "tap.h"

static bool trusts(const char *text, const char *user, char *const *groups, const char *word) {
        _cleanup_free_ char *w = NULL;
        int r = nix_conf_trusts(text, user, groups, &w);
        return word ? r == 1 && streq(w, word) : r == 0;
}

int main(void) {
        char *groups[] = { "alice", "wheel", NULL };
        ok(trusts("trusted-users = root alice\n", "alice", groups, "alice"), "trusted-users naming the user");
        ok(trusts("extra-trusted-users = @wheel\n", "alice", groups, "@wheel"), "a group of the user's");
        ok(trusts("trusted-users = *\n", "alice", groups, "*"), "*");
        ok(trusts("trusted-users = root # alice\nallowed-users = alice\n", "alice", groups, NULL), "a comment and another key are no trust");

        CageSpec *s = calloc(1, sizeof *s);
        CageError err = {};
        ok(s && builders_agent_namespaces(s) == 0, "a default cage's agent may make no namespace");
        ok(s && builders_add_containers(s, "/nonexistent/fuse", &err) == 0 && s->n_binds == 0 && !s->devices,
           "without Containers=, nothing is added (nor checked)");
        s->containers = CONTAINERS_PODMAN;
        uint64_t ns = builders_agent_namespaces(s);
        ok((ns & CLONE_NEWUSER) && (ns & CLONE_NEWNS) && (ns & CLONE_NEWPID) && (ns & CLONE_NEWNET) && !(ns & CLONE_NEWTIME),
           "Containers=podman: user, mount, pid, net namespaces, never time");
        ok(builders_add_containers(s, "/nonexistent/fuse", &err) == -ENOENT && strstr(err.message, "/nonexistent/fuse is not the FUSE device") &&
           s->n_binds == 0 && !s->devices, "no FUSE device: refused, naming it, nothing added");
        cage_error_done(&err);
        ok(builders_add_containers(s, "/", &err) == -ENODEV && s->n_binds == 0, "a directory is no FUSE device");
        cage_error_done(&err);
        /* /dev/null stands in for /dev/fuse: any character device. */
        ok(builders_add_containers(s, "/dev/null", &err) == 0 && s->n_binds == 1 && streq(s->binds[0].destination, FUSE_DEVICE) &&
           s->binds[0].as_is && s->devices && streq(s->devices[0], "/dev/null") && !s->devices[1],
           "a character device: bound at /dev/fuse and allowed in the device cgroup");
        cage_spec_free(s);
        return tap_done();
}
