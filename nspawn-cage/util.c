/* util.c: implementations of the shared helpers declared in util.h. */
#include "autoconfig.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "util.h"

char *startswith(const char *s, const char *prefix) {
        size_t n = strlen(prefix);
        return strncmp(s, prefix, n) == 0 ? (char *) s + n : NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        for (; l && l[n]; n++)
                ;
        return n;
}

void strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
}

int strv_push(char ***l, char *s) {
        if (!s)
                return -ENOMEM;
        size_t n = strv_length(*l);
        char **t = realloc(*l, sizeof(char *) * (n + 2));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int strv_extend(char ***l, const char *s) { return strv_push(l, strdup(s)); }

bool strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

char **strv_copy(char *const *l) {
        char **r = calloc(strv_length(l) + 1, sizeof(char *));
        if (!r)
                return NULL;
        for (size_t i = 0; l && l[i]; i++)
                if (!(r[i] = strdup(l[i]))) {
                        strv_free(r);
                        return NULL;
                }
        return r;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int strv_sort(char **l) {
        qsort(l, strv_length(l), sizeof(char *), cmp_str);
        return 0;
}

char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

void strbuf_appendn(StrBuf *b, const char *s, size_t n) {
        if (b->error)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *t = realloc(b->s, cap);
                if (!t) {
                        b->error = -ENOMEM;
                        return;
                }
                b->s = t;
                b->cap = cap;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = 0;
}

void strbuf_append(StrBuf *b, const char *s) { strbuf_appendn(b, s, strlen(s)); }

void strbuf_appendf(StrBuf *b, const char *fmt, ...) {
        va_list ap;
        char *s;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0) {
                if (!b->error)
                        b->error = -ENOMEM;
                return;
        }
        strbuf_appendn(b, s, (size_t) r);
        free(s);
}

int strbuf_steal(StrBuf *b, char **ret) {
        if (b->error) {
                int r = b->error;
                strbuf_done(b);
                return r;
        }
        if (!b->s && !(b->s = strdup("")))
                return -ENOMEM;
        *ret = b->s;
        *b = (StrBuf) {};
        return 0;
}

bool string_has_cc(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

int write_file_atomic_at(int dirfd, const char *name, const char *contents, mode_t mode) {
        return write_data_atomic_at(dirfd, name, contents, strlen(contents), mode, (uid_t) -1, (gid_t) -1);
}

/* Read to the end, starting with room for `hint` bytes and growing up to
 * max + 1, so that a file (or a pipe) longer than max is told apart. */
static int read_grow(int fd, size_t max, size_t hint, char **ret_data, size_t *ret_size) {
        size_t cap = (hint < max ? hint : max) + 2, n = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (n + 1 == cap) {
                        if (n > max)
                                return -EFBIG;
                        size_t grown = cap * 2 < max + 2 ? cap * 2 : max + 2;
                        char *t = realloc(buf, grown);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        cap = grown;
                }
                ssize_t k = read(fd, buf + n, cap - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > max)
                return -EFBIG;
        buf[n] = 0;
        *ret_data = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int read_fd_bounded(int fd, size_t max, char **ret_data, size_t *ret_size) {
        return read_grow(fd, max, 4096, ret_data, ret_size);
}

int read_regular_fd(int fd, size_t max, char **ret_data, size_t *ret_size) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        /* Sized by fstat(), grown if the file grows meanwhile. */
        return read_grow(fd, max, (size_t) st.st_size, ret_data, ret_size);
}

int write_data_atomic_at(int dirfd, const char *name, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *tmp = strdup_printf(".#%s.%ld", name, (long) getpid());
        if (!tmp)
                return -ENOMEM;
        _cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        size_t n = size;
        const char *p = data;
        int r = 0;
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                p += k;
                n -= (size_t) k;
        }
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && (uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0)
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(dirfd, tmp, 0);
        return r;
}

void format_size(uint64_t v, char buf[static 32]) {
        static const char suffix[] = "KMGT";
        if (v == UINT64_MAX) {
                snprintf(buf, 32, "infinity");
                return;
        }
        int i = -1;
        while (i < 3 && v >= 1024 && v % 1024 == 0) {
                v /= 1024;
                i++;
        }
        if (i < 0)
                snprintf(buf, 32, "%" PRIu64, v);
        else
                snprintf(buf, 32, "%" PRIu64 "%c", v, suffix[i]);
}

void strbuf_append_json(StrBuf *b, const char *s) {
        strbuf_append(b, "\"");
        for (; s && *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (c == '"' || c == '\\')
                        strbuf_appendf(b, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                        strbuf_appendf(b, "\\u%04x", c);
                else
                        strbuf_appendn(b, s, 1);
        }
        strbuf_append(b, "\"");
}

int fork_with_pipe(int pipefd[2], pid_t *ret_pid) {
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        *ret_pid = pid;
        return 0;
}
