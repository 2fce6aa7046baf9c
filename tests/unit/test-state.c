/* test-state.c: cage records round-trip; removal never follows a link out
 * of the state directory. */
#include "autoconfig.h"

#include <fcntl.h>
#include <errno.h>
#include <sys/stat.h>

#include "agentstate.h"
#include "state.h"
#include "tap.h"

static void count_warning(const char *path, const char *why, void *userdata) {
        (void) path;
        (void) why;
        (*(int *) userdata)++;
}

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
        {
                /* Issue 14 (9): a record says whether it is a declared cage;
                 * one without the line (an ad hoc cage) is not. */
                CageRecord d = { .name = "demo", .project = "/p", .user = "bob", .uid = 1001, .unit = "u", .declared = true }, db = {};
                char *t = cage_record_format(&d);
                ok(t && cage_record_parse(t, &db) == 0 && db.declared && db.uid == 1001, "a declared cage's record says so");
                cage_record_done(&db);
                free(t);
                ok(cage_record_parse("name=demo\nproject=/p\nuser=alice\nuid=1000\nunit=u\n", &db) == 0 && !db.declared,
                   "a record without declared=1 is an ad hoc cage's");
                cage_record_done(&db);
        }
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
        /* The environment kept for later shells of a declared cage. */
        char envdir[300];
        snprintf(envdir, sizeof envdir, "%s/run/env", tmpl);
        char *kv[] = { "TOKEN=s3cr=t", "B=", NULL }, **back_env = NULL;
        ok(state_save_environment(envdir, "demo", kv) == 0, "environment kept (parents made)");
        ok(stat(envdir, &st) == 0 && (st.st_mode & 0777) == 0700, "its directory is 0700");
        char envfile[320];
        snprintf(envfile, sizeof envfile, "%s/demo", envdir);
        ok(stat(envfile, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_uid == geteuid(), "its file is 0600, ours");
        ok(state_load_environment(envdir, "demo", &back_env) == 0 && strv_length(back_env) == 2 &&
           streq(back_env[0], "TOKEN=s3cr=t") && streq(back_env[1], "B="), "and reads back as it was");
        strv_free(back_env);
        back_env = NULL;
        char *bad[] = { "X=a\nY=b", NULL };
        ok(state_save_environment(envdir, "demo", bad) == -EINVAL, "a value with a newline is refused (no line injection)");
        chmod(envfile, 0644);
        ok(state_load_environment(envdir, "demo", &back_env) == -EPERM, "a file readable by others is refused");
        ok(state_load_environment(envdir, "other", &back_env) == 0 && !back_env, "no file: nothing kept");
        ok(state_save_environment(envdir, "demo", NULL) == 0 && stat(envfile, &st) < 0 && errno == ENOENT, "an empty list removes it");
        ok(state_remove_environment(envdir, "demo") == 0, "removing what is gone is fine");
        rmdir(envdir);
        snprintf(envdir, sizeof envdir, "%s/run", tmpl);
        rmdir(envdir);
        unlinkat(fd, "victim/keep", 0);
        unlinkat(fd, "victim", AT_REMOVEDIR);
        unlinkat(fd, "cages/.y.ABCDEF", AT_REMOVEDIR);
        unlinkat(fd, "cages/good", AT_REMOVEDIR);
        unlinkat(fd, "cages", AT_REMOVEDIR);
        close(fd);
        rmdir(tmpl);
        {
                /* Issue 14 (5): the state is root's alone. A fresh state
                 * directory, its cages/ and gcroots/ are 0700; ones an older
                 * version made 0755 are tightened; one writable by others is
                 * refused; a cage directory is 0700, its record 0600. */
                char t2[] = "/tmp/test-state-modes.XXXXXX";
                ok(mkdtemp(t2) != NULL, "scratch dir");
                char sdir[300], cmd[400];
                snprintf(sdir, sizeof sdir, "%s/lib", t2);
                int sfd = -1, cfd = -1;
                struct stat st1, st2, st3;
                ok(state_open(sdir, &sfd) == 0 && fstat(sfd, &st1) == 0 && fstatat(sfd, "cages", &st2, 0) == 0 &&
                   fstatat(sfd, "gcroots", &st3, 0) == 0 && (st1.st_mode & 07777) == 0700 && (st2.st_mode & 07777) == 0700 &&
                   (st3.st_mode & 07777) == 0700, "a new state directory, cages/ and gcroots/ are 0700");
                close(sfd);
                chmod(sdir, 0755);
                snprintf(cmd, sizeof cmd, "%s/cages", sdir);
                chmod(cmd, 0755);
                ok(state_open(sdir, &sfd) == 0 && fstat(sfd, &st1) == 0 && fstatat(sfd, "cages", &st2, 0) == 0 &&
                   (st1.st_mode & 07777) == 0700 && (st2.st_mode & 07777) == 0700, "0755 ones of an older version are tightened to 0700");
                char *tmp = NULL;
                CageRecord w = { .name = "m", .project = "/p", .user = "alice", .unit = "u" };
                ok(state_begin_cage(sfd, "m", &cfd, &tmp) == 0 && fstat(cfd, &st1) == 0 && (st1.st_mode & 07777) == 0700 &&
                   fstatat(cfd, "rootfs", &st2, 0) == 0 && (st2.st_mode & 07777) == 0755, "a cage directory is 0700 (its rootfs, the cage's /, 0755)");
                ok(state_write_record(cfd, &w) == 0 && fstatat(cfd, "cage.record", &st1, 0) == 0 && (st1.st_mode & 07777) == 0600,
                   "its record is 0600");
                close(cfd);
                free(tmp);
                close(sfd);
                chmod(cmd, 0777);
                ok(state_open(sdir, &sfd) == -EPERM, "a cages/ writable by others is refused, not tightened");
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", t2);
                (void) !system(cmd);
        }
        {
                char *files[] = { "0123456789abcdef:.claude.json", "-:.config/x.json", NULL };
                CageRecord w = { .name = "s1", .project = "/p", .user = "alice", .unit = "u", .state_dir = "/home/alice/.local/state/nspawn-cage/x",
                                 .state_home = "/home/alice", .state_files = files }, back = {};
                char *t = cage_record_format(&w);
                ok(t && cage_record_parse(t, &back) == 0 && streq(back.state_dir, w.state_dir) && streq(back.state_home, "/home/alice") &&
                   strv_length(back.state_files) == 2 && streq(back.state_files[1], files[1]), "record round trip keeps the agent state to copy out");
                free(t);
                cage_record_done(&back);
        }
        {
                /* Copy-out: a changed regular file goes out; a link, a FIFO and
                 * an unchanged file do not. */
                char tmpl[] = "/tmp/test-agentstate.XXXXXX";
                ok(mkdtemp(tmpl) != NULL, "scratch directory");
                char home[300], stdir[300];
                snprintf(home, sizeof home, "%s/home", tmpl);
                snprintf(stdir, sizeof stdir, "%s/state", tmpl);
                mkdir(home, 0755);
                mkdir(stdir, 0700);
                int hfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC), sfd = open(stdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                write_file_atomic_at(hfd, "new.json", "{\"a\":1}", 0600);
                write_file_atomic_at(hfd, "same.json", "same", 0600);
                symlinkat("/etc/passwd", hfd, "link.json");
                mkfifoat(hfd, "fifo.json", 0600);
                char hash[17];
                agent_state_hash("same", 4, hash);
                char same[64];
                snprintf(same, sizeof same, "%s:same.json", hash);
                char *entries[] = { "-:new.json", same, "-:link.json", "-:fifo.json", "-:gone.json", NULL };
                HostUser me = { .name = "me", .uid = geteuid(), .gid = getegid(), .home = "/" };
                unsigned n = 0;
                int warned = 0;
                ok(agent_state_copy_out(&me, hfd, sfd, entries, "t", count_warning, &warned, &n) == 0 && n == 1 && warned == 2,
                   "copy-out: one changed file copied, a link and a FIFO warned about, unchanged and removed ones skipped");
                struct stat st;
                ok(fstatat(sfd, "new.json", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 &&
                   fstatat(sfd, "link.json", &st, AT_SYMLINK_NOFOLLOW) < 0 && fstatat(sfd, "same.json", &st, AT_SYMLINK_NOFOLLOW) < 0,
                   "the copy is a 0600 regular file; nothing else was written");
                /* Two cages of one preset: the first wrote the user's copy
                 * since this one copied it in; this one's is kept aside. */
                char h0[17], entry[64];
                agent_state_hash("S0", 2, h0);
                snprintf(entry, sizeof entry, "%s:both.json", h0);
                write_file_atomic_at(sfd, "both.json", "first cage", 0600);
                write_file_atomic_at(hfd, "both.json", "second cage", 0600);
                char *second[] = { entry, NULL };
                warned = 0;
                char *data = NULL, *kept = NULL;
                size_t size;
                int dfd = openat(sfd, "both.json", O_RDONLY | O_CLOEXEC), kfd = openat(sfd, "both.json" AGENT_STATE_ASIDE "t", O_RDONLY | O_CLOEXEC);
                ok(agent_state_copy_out(&me, hfd, sfd, second, "t", count_warning, &warned, &n) == 0 && warned == 1 &&
                   (close(dfd), dfd = openat(sfd, "both.json", O_RDONLY | O_CLOEXEC)) >= 0 && read_regular_fd(dfd, 100, &data, &size) == 0 &&
                   streq(data, "first cage") && kfd < 0 && (kfd = openat(sfd, "both.json" AGENT_STATE_ASIDE "t", O_RDONLY | O_CLOEXEC)) >= 0 &&
                   read_regular_fd(kfd, 100, &kept, &size) == 0 && streq(kept, "second cage"),
                   "copy-out after another cage's: the first cage's copy stays, the second's is kept aside beside it, with a warning");
                free(data);
                free(kept);
                close(dfd);
                close(kfd);
                close(hfd);
                close(sfd);
                char cmd[400];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
                (void) !system(cmd);
        }
        return tap_done();
}
