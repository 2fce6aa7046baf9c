/* test-state.c: cage records round-trip; removal never follows a link out
 * of the state directory. */
#include "autoconfig.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "state.h"
#include "tap.h"

int main(void) {
        CageRecord r = { .name = "demo", .project = "/home/alice/p q", .user = "alice", .uid = 1000,
                         .unit = "nspawn-cage-demo.service", .toplevel = "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top",
                         .helper = 42, .keep = true, .created_usec = 123, .n_store_paths = 9, .uid_base = 0x70000 };
        char *text = cage_record_format(&r);
        CageRecord back = {};
        ok(text && cage_record_parse(text, &back) == 0, "record parses back");
        ok(streq(back.name, "demo") && streq(back.project, "/home/alice/p q") && back.uid == 1000 && back.keep &&
           back.helper == 42 && back.n_store_paths == 9 && back.uid_base == 0x70000 && streq(back.unit, r.unit), "every field survives the round trip");
        cage_record_done(&back);
        free(text);
        ok(cage_record_parse("name=.host\nproject=/x\nuser=a\nunit=u\n", &back) == -EBADMSG, "record with a bad name refused");
        ok(cage_record_parse("project=/x\n", &back) == -EBADMSG, "incomplete record refused");

        char tmpl[] = "/tmp/test-state.XXXXXX";
        ok(mkdtemp(tmpl) != NULL, "scratch dir");
        int fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        mkdirat(fd, "victim", 0755);
        close(openat(fd, "victim/keep", O_WRONLY | O_CREAT, 0644));
        mkdirat(fd, "cages", 0755);
        mkdirat(fd, "cages/x", 0755);
        mkdirat(fd, "cages/x/rootfs", 0755);
        char target[256];
        snprintf(target, sizeof target, "%s/victim", tmpl);
        symlinkat(target, fd, "cages/x/rootfs/link");
        char *busy = NULL;
        ok(state_remove_dir(fd, "cages/x", &busy) == 0, "a cage dir is removed");
        struct stat st;
        ok(fstatat(fd, "cages/x", &st, 0) < 0 && fstatat(fd, "victim/keep", &st, 0) == 0, "the link was removed, not followed");
        ok(state_remove_dir(fd, "cages/none", &busy) == 0, "removing what is not there is fine");
        char **l = NULL;
        mkdirat(fd, "cages/.y.ABCDEF", 0755);
        mkdirat(fd, "cages/good", 0755);
        ok(state_list(fd, &l) == 0 && strv_length(l) == 1 && streq(l[0], "good"), "list shows published cages only");
        strv_free(l);
        l = NULL;
        ok(state_list_temporary(fd, &l) == 0 && strv_length(l) == 1, "temporary dirs listed for gc");
        strv_free(l);
        unlinkat(fd, "victim/keep", 0);
        unlinkat(fd, "victim", AT_REMOVEDIR);
        unlinkat(fd, "cages/.y.ABCDEF", AT_REMOVEDIR);
        unlinkat(fd, "cages/good", AT_REMOVEDIR);
        unlinkat(fd, "cages", AT_REMOVEDIR);
        close(fd);
        rmdir(tmpl);
        return tap_done();
}
