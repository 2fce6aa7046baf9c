/* state.c: the state directory. Records are "key=value" lines (values are
 * already validated names and paths); removal walks with O_NOFOLLOW and
 * refuses to descend into another file system, so a leftover bind mount can
 * never lead it into a project or the host. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "config.h"
#include "state.h"

void cage_record_done(CageRecord *r) {
        free(r->name);
        free(r->project);
        free(r->user);
        free(r->unit);
        free(r->toplevel);
        free(r->state_dir);
        free(r->state_home);
        free(r->branch);
        strv_free(r->state_files);
        *r = (CageRecord) {};
}

char *cage_record_format(const CageRecord *r) {
        StrBuf b = {};
        _cleanup_free_ char *head = strdup_printf("name=%s\nproject=%s\nuser=%s\nuid=%u\nunit=%s\ntoplevel=%s\nhelper=%ld\nkeep=%d\ndeclared=%d\ncreated=%" PRIu64 "\nstore_paths=%u\nuid_base=%u\n",
                             r->name, r->project, r->user, (unsigned) r->uid, r->unit, strempty(r->toplevel),
                             (long) r->helper, r->keep ? 1 : 0, r->declared ? 1 : 0, r->created_usec, r->n_store_paths, (unsigned) r->uid_base);
        if (!head)
                return NULL;
        strbuf_append(&b, head);
        if (r->branch && !string_has_cc(r->branch))
                strbuf_appendf(&b, "branch=%s\n", r->branch);
        if (r->state_dir)
                strbuf_appendf(&b, "state_dir=%s\nstate_home=%s\n", r->state_dir, strempty(r->state_home));
        for (size_t i = 0; r->state_dir && r->state_files && r->state_files[i]; i++)
                strbuf_appendf(&b, "state_file=%s\n", r->state_files[i]);
        char *text = NULL;
        return strbuf_steal(&b, &text) < 0 ? NULL : text;
}

int cage_record_parse(const char *text, CageRecord *ret) {
        CageRecord r = {};
        const char *p = text;
        while (*p) {
                size_t n = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, n);
                if (!line)
                        goto fail;
                char *eq = strchr(line, '=');
                if (eq) {
                        *eq++ = 0;
                        char **dst = streq(line, "name") ? &r.name : streq(line, "project") ? &r.project
                                   : streq(line, "user") ? &r.user : streq(line, "unit") ? &r.unit
                                   : streq(line, "toplevel") ? &r.toplevel : streq(line, "state_dir") ? &r.state_dir
                                   : streq(line, "state_home") ? &r.state_home : streq(line, "branch") ? &r.branch : NULL;
                        if (dst) {
                                free(*dst);
                                if (!(*dst = strdup(eq)))
                                        goto fail;
                        } else if (streq(line, "uid"))
                                r.uid = (uid_t) strtoul(eq, NULL, 10);
                        else if (streq(line, "helper"))
                                r.helper = (pid_t) strtol(eq, NULL, 10);
                        else if (streq(line, "keep"))
                                r.keep = streq(eq, "1");
                        else if (streq(line, "declared"))
                                r.declared = streq(eq, "1");
                        else if (streq(line, "created"))
                                r.created_usec = strtoull(eq, NULL, 10);
                        else if (streq(line, "store_paths"))
                                r.n_store_paths = (unsigned) strtoul(eq, NULL, 10);
                        else if (streq(line, "uid_base"))
                                r.uid_base = (uid_t) strtoul(eq, NULL, 10);
                        else if (streq(line, "state_file") && strv_extend(&r.state_files, eq) < 0)
                                goto fail;
                }
                p += n + (p[n] == '\n');
        }
        if (!r.name || !r.project || !r.user || !r.unit || !machine_name_is_valid(r.name))
                goto fail;
        *ret = r;
        return 0;
fail:
        cage_record_done(&r);
        return -EBADMSG;
}

/* Root's directory dirfd/name, 0700: what is below (other users' homes in
 * the rootfs, set-uid files the agent left there, records) is for root
 * only. One made 0755 by an older version is tightened; one writable by
 * others or not root's may have been tampered with and is refused. */
int state_dir_open(int dirfd, const char *name, int *ret_fd) {
        if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 0022) ||
            ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)) {
                close(fd);
                return -EPERM;
        }
        *ret_fd = fd;
        return 0;
}

int state_private_dir_open(int dirfd, const char *name, bool create, int *ret_fd) {
        if (create && mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 0077)) {
                close(fd);
                return -EPERM;
        }
        *ret_fd = fd;
        return 0;
}

int state_open(const char *dir, int *ret_fd) {
        /* Create parents as needed (/var/lib exists on any system). */
        _cleanup_free_ char *parent = strdup(dir);
        if (!parent)
                return -ENOMEM;
        char *slash = strrchr(parent, '/');
        if (!slash || slash == parent)
                return -EINVAL;
        *slash = 0;
        _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return -errno;
        int fd, r = state_dir_open(pfd, slash + 1, &fd);
        if (r < 0)
                return r;
        _cleanup_close_ int keep = fd, c = -1, g = -1;
        if ((r = state_dir_open(fd, "cages", &c)) < 0 || (r = state_dir_open(fd, "gcroots", &g)) < 0)
                return r;
        *ret_fd = TAKE_FD(keep);
        return 0;
}

int state_begin_cage(int state_fd, const char *name, int *ret_fd, char **ret_tmp) {
        _cleanup_free_ char *tmp = strdup_printf("cages/.%s.XXXXXX", name);
        _cleanup_free_ char *full = NULL;
        if (!tmp)
                return -ENOMEM;
        /* mkdtemp() wants a full path: build one through /proc/self/fd. */
        if (!(full = strdup_printf("/proc/self/fd/%d/%s", state_fd, tmp)))
                return -ENOMEM;
        if (!mkdtemp(full))
                return -errno;
        const char *rel = strstr(full, "/cages/.") + 1;
        char *rel_copy = strdup(rel);
        if (!rel_copy)
                return -ENOMEM;
        int fd = openat(state_fd, rel_copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        /* cages/NAME is root's alone; rootfs/ is the cage's / (0755 inside). */
        if (fd < 0 || fchmod(fd, 0700) < 0 || mkdirat(fd, "rootfs", 0755) < 0) {
                int r = -errno;
                if (fd >= 0)
                        close(fd);
                free(rel_copy);
                return r;
        }
        *ret_fd = fd;
        *ret_tmp = rel_copy;
        return 0;
}

int state_commit_cage(int state_fd, const char *tmp, const char *name) {
        _cleanup_free_ char *dst = strdup_printf("cages/%s", name);
        if (!dst)
                return -ENOMEM;
        if (renameat2(state_fd, tmp, state_fd, dst, RENAME_NOREPLACE) < 0)
                return -errno;
        return 0;
}

int state_write_record(int cage_fd, const CageRecord *r) {
        _cleanup_free_ char *text = cage_record_format(r);
        if (!text)
                return -ENOMEM;
        return write_file_atomic_at(cage_fd, "cage.record", text, 0600);
}

int state_read_record(int state_fd, const char *name, CageRecord *ret) {
        if (!machine_name_is_valid(name))
                return -EINVAL;
        _cleanup_free_ char *path = strdup_printf("cages/%s/cage.record", name);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = openat(state_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        char buf[8192];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return cage_record_parse(buf, ret);
}

static int list_dir(int state_fd, bool temporary, char ***ret) {
        _cleanup_close_ int fd = openat(state_fd, "cages", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        _cleanup_strv_free_ char **l = NULL;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                bool tmp = de->d_name[0] == '.';
                if (tmp != temporary || (!tmp && !machine_name_is_valid(de->d_name)))
                        continue;
                if (strv_extend(&l, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        }
        closedir(d);
        if (l)
                strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

int state_list(int state_fd, char ***ret) { return list_dir(state_fd, false, ret); }
int state_list_temporary(int state_fd, char ***ret) { return list_dir(state_fd, true, ret); }

static int remove_tree_at(int dirfd, const char *name, dev_t dev, const char *path, char **ret_busy) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_dev != dev) {
                *ret_busy = strdup(path);
                return -EBUSY;
        }
        DIR *d = fdopendir(fd);
        if (!d)
                return -errno;
        int dfd = TAKE_FD(fd);
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                struct stat cst;
                if (fstatat(dfd, de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(cst.st_mode)) {
                        _cleanup_free_ char *sub = strdup_printf("%s/%s", path, de->d_name);
                        int k = sub ? remove_tree_at(dfd, de->d_name, dev, sub, ret_busy) : -ENOMEM;
                        if (k < 0) {
                                r = k;
                                break;
                        }
                        if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
                                r = -errno;
                                break;
                        }
                } else if (cst.st_dev != dev) {
                        *ret_busy = strdup_printf("%s/%s", path, de->d_name);
                        r = -EBUSY;
                        break;
                } else if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT) {
                        r = -errno;
                        break;
                }
        }
        closedir(d);
        return r;
}

int state_remove_dir(int state_fd, const char *relative, char **ret_busy_path) {
        struct stat st;
        *ret_busy_path = NULL;
        if (fstat(state_fd, &st) < 0)
                return -errno;
        int r = remove_tree_at(state_fd, relative, st.st_dev, relative, ret_busy_path);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (unlinkat(state_fd, relative, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int environment_dir(const char *dir, bool create, int *ret_fd) {
        if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
                /* /run/nspawn-cage may not exist yet. */
                _cleanup_free_ char *parent = strdup(dir);
                char *slash = parent ? strrchr(parent, '/') : NULL;
                if (!slash || slash == parent)
                        return -errno;
                *slash = 0;
                if (mkdir(parent, 0700) < 0 && errno != EEXIST)
                        return -errno;
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return -errno;
        }
        return state_private_dir_open(AT_FDCWD, dir, false, ret_fd);
}

int state_save_environment(const char *dir, const char *name, char *const *assignments) {
        if (strv_length(assignments) == 0)
                return state_remove_environment(dir, name);
        _cleanup_(strbuf_done) StrBuf b = {};
        for (size_t i = 0; assignments[i]; i++) {
                if (!strchr(assignments[i], '=') || string_has_cc(assignments[i]))
                        return -EINVAL;
                strbuf_appendf(&b, "%s\n", assignments[i]);
        }
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -1;
        int r = strbuf_steal(&b, &text);
        if (r < 0 || (r = environment_dir(dir, true, &fd)) < 0)
                return r;
        return write_file_atomic_at(fd, name, text, 0600);
}

int state_load_environment(const char *dir, const char *name, char ***ret) {
        _cleanup_close_ int dfd = -1, fd = -1;
        _cleanup_strv_free_ char **l = NULL;
        int r = environment_dir(dir, false, &dfd);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT) {
                *ret = NULL;
                return 0;
        }
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077))
                return -EPERM;
        _cleanup_fclose_ FILE *f = fdopen(fd, "re");
        if (!f)
                return -errno;
        fd = -1;
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        ssize_t k;
        while ((k = getline(&line, &n, f)) > 0) {
                if (line[k - 1] == '\n')
                        line[k - 1] = 0;
                if (strchr(line, '=') && (r = strv_extend(&l, line)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int state_remove_environment(const char *dir, const char *name) {
        _cleanup_close_ int fd = -1;
        int r = environment_dir(dir, false, &fd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return unlinkat(fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
}
