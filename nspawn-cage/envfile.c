/* envfile.c: reading [Environment] File= (see envfile.h). The file is the
 * user's secret: opened as the user, refused when others could read or
 * write it, parsed in memory that is wiped afterwards. */
#include "autoconfig.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "pathfd.h"
#include "config.h"
#include "envfile.h"

void strv_free_erase(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                explicit_bzero(l[i], strlen(l[i]));
        strv_free(l);
}

int envfile_open(const char *path, const HostUser *u, int *ret_fd) {
        FsIdentity id = {};
        int r;
        if (u && (r = user_fs_enter(u, &id)) < 0)
                return r;
        /* Links in the directories are fine (NixOS's /run/secrets is one),
         * followed with the reader's rights; the file itself is no link. */
        _cleanup_close_ int fd = path_open_last_nofollow(AT_FDCWD, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
        if (u)
                user_fs_leave(&id);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size > ENVFILE_MAX)
                return -EFBIG;
        if (st.st_mode & (S_IROTH | S_IWOTH))
                return -EPERM;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int fail(unsigned line, const char *reason, CageError *err) {
        return cage_error_set_at(err, -EINVAL, NULL, line, "%s", reason);
}

/* One NAME=VALUE line (p to eol, leading blanks skipped): the name into
 * name[129], the value into *v. */
static int parse_line(const char *p, const char *eol, unsigned line, char name[static 129], StrBuf *v, CageError *err) {
        const char *k = p;
        while (p < eol && (isalnum((unsigned char) *p) || *p == '_'))
                p++;
        size_t kn = (size_t) (p - k);
        if (kn == 0 || kn >= 129)
                return fail(line, "expected NAME=VALUE with a variable name of letters, digits and '_' (no 'export')", err);
        memcpy(name, k, kn);
        name[kn] = 0;
        while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
        if (p == eol || *p != '=' || !env_name_is_valid(name))
                return fail(line, "expected NAME=VALUE with a variable name of letters, digits and '_' (no 'export')", err);
        p++;
        while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
        if (p < eol && (*p == '"' || *p == '\'')) {
                char q = *p++;
                bool closed = false;
                while (p < eol) {
                        if (*p == q) {
                                closed = true;
                                p++;
                                break;
                        }
                        if (q == '"' && *p == '\\' && p + 1 < eol && strchr("\\\"$`", p[1]))
                                p++;
                        strbuf_appendn(v, p++, 1);
                }
                while (p < eol && (*p == ' ' || *p == '\t'))
                        p++;
                if (!closed)
                        return fail(line, "unterminated quote (values spanning lines are not supported)", err);
                if (p < eol)
                        return fail(line, "text after the closing quote", err);
        } else {
                const char *e = eol;
                while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                strbuf_appendn(v, p, (size_t) (e - p));
        }
        if (v->error)
                return v->error;
        if (string_has_cc(strempty(v->s)))
                return fail(line, "the value holds a control character (a carriage return? save the file with LF line endings)", err);
        return 0;
}

/* Keep value for name if it is one of names (the last line of a name wins). */
static int keep_value(char *const *names, char **values, const char *name, const char *value) {
        for (size_t i = 0; names && names[i]; i++) {
                if (!streq(names[i], name))
                        continue;
                if (values[i]) {
                        explicit_bzero(values[i], strlen(values[i]));
                        free(values[i]);
                }
                if (!(values[i] = strdup_printf("%s=%s", name, value)))
                        return -ENOMEM;
        }
        return 0;
}

int envfile_parse(const char *data, size_t size, char *const *names, char ***ret, CageError *err) {
        size_t n_names = strv_length(names);
        _cleanup_free_ char **values = calloc(n_names + 1, sizeof(char *));
        _cleanup_(strv_free_erasep) char **out = NULL;
        int r = 0;
        if (!values)
                return -ENOMEM;
        if (memchr(data, 0, size))
                r = fail(0, "the file contains a NUL byte; it is not a text file", err);
        unsigned line = 0;
        for (const char *p = data, *end = data + size; p < end && r >= 0;) {
                line++;
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *eol = nl ? nl : end;
                const char *next = nl ? nl + 1 : end;
                while (p < eol && (*p == ' ' || *p == '\t'))
                        p++;
                if (p < eol && *p != '#' && *p != ';') {
                        char name[129];
                        StrBuf v = {};
                        r = parse_line(p, eol, line, name, &v, err);
                        if (r >= 0)
                                r = keep_value(names, values, name, strempty(v.s));
                        if (v.s)
                                explicit_bzero(v.s, v.cap);
                        strbuf_done(&v);
                }
                p = next;
        }
        /* In the order of `names`; on failure every value is wiped. */
        for (size_t i = 0; i < n_names; i++) {
                char *v = TAKE_PTR(values[i]);
                if (v && r >= 0)
                        r = strv_push(&out, v); /* takes v */
                else if (v) {
                        explicit_bzero(v, strlen(v));
                        free(v);
                }
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}
