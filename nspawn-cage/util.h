/* util.h: the few helpers every module shares: cleanup attributes, ownership
 * transfer, string vectors and bounded file reading. Nothing here logs or
 * touches global state. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_strv_free_ _cleanup_(strv_freep)
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand ownership on: returns the pointer and leaves NULL behind. */
#define TAKE_PTR(p)                       \
        ({                                \
                __typeof__(p) _p_ = (p);  \
                (p) = NULL;               \
                _p_;                      \
        })
#define TAKE_FD(fd)                 \
        ({                          \
                int _fd_ = (fd);    \
                (fd) = -1;          \
                _fd_;               \
        })

static inline void freep(void *p) { free(*(void **) p); }
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_ptr(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}
static inline bool isempty(const char *s) { return !s || !*s; }
static inline const char *strempty(const char *s) { return s ? s : ""; }

char *startswith(const char *s, const char *prefix);

/* NULL-terminated string vectors. */
size_t strv_length(char *const *l);
void strv_free(char **l);
static inline void strv_freep(char ***l) { strv_free(*l); }
int strv_push(char ***l, char *s);        /* takes s, even on failure */
int strv_extend(char ***l, const char *s); /* copies s */
bool strv_contains(char *const *l, const char *s);
char **strv_copy(char *const *l);
int strv_sort(char **l);

/* asprintf returning a string or NULL. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);

/* Grow-only string buffer for renderers. */
typedef struct StrBuf {
        char *s;
        size_t len, cap;
        int error; /* first -errno, sticky */
} StrBuf;
void strbuf_append(StrBuf *b, const char *s);
void strbuf_appendf(StrBuf *b, const char *fmt, ...) _printf_(2, 3);
void strbuf_appendn(StrBuf *b, const char *s, size_t n);
static inline void strbuf_done(StrBuf *b) {
        free(b->s);
        *b = (StrBuf) {};
}
/* Returns the string (caller frees) or NULL with *ret_error set. */
int strbuf_steal(StrBuf *b, char **ret);

/* True when s holds a byte < 0x20 or 0x7f. */
bool string_has_cc(const char *s);

/* Write contents to dirfd/name atomically (temporary name, fsync, rename).
 * name is one file name (no '/'); a link at name is replaced, not followed. */
int write_file_atomic_at(int dirfd, const char *name, const char *contents, mode_t mode);
/* The same for data of any bytes; uid/gid other than -1 own the file
 * before it gets its name. */
int write_data_atomic_at(int dirfd, const char *name, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid);
/* Read an open regular file of at most max bytes, NUL-terminated: -EISDIR
 * for a directory, -EBADFD for anything else that is not a regular file
 * (FIFOs, devices, sockets), -EFBIG beyond max (also if it grows while read). */
int read_regular_fd(int fd, size_t max, char **ret_data, size_t *ret_size);
/* The same for any fd (a pipe, too), without the type check. */
int read_fd_bounded(int fd, size_t max, char **ret_data, size_t *ret_size);
/* pipe2(O_CLOEXEC), then fork(): *ret_pid is 0 in the child, the child's
 * pid in the parent. On failure nothing is left open. */
int fork_with_pipe(int pipefd[2], pid_t *ret_pid);

/* Format a byte count the way users write it: 4G, 512M, 1536K, or bytes. */
void format_size(uint64_t v, char buf[static 32]);

/* Append s as a JSON string literal (with quotes). */
void strbuf_append_json(StrBuf *b, const char *s);
