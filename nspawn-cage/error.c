/* error.c: the error record (error.h) and the one place that prints it. */
#include "autoconfig.h"

#include <stdarg.h>

#include "error.h"

static char *vformat(const char *fmt, va_list ap) {
        char *s = NULL;
        return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

static int error_r(int r) { return r < 0 ? r : -EINVAL; }

int cage_error_set(CageError *e, int r, const char *fmt, ...) {
        va_list ap;
        cage_error_done(e);
        va_start(ap, fmt);
        e->message = vformat(fmt, ap);
        va_end(ap);
        return e->r = error_r(r);
}

int cage_error_set_at(CageError *e, int r, const char *file, unsigned line, const char *fmt, ...) {
        va_list ap;
        cage_error_done(e);
        va_start(ap, fmt);
        e->message = vformat(fmt, ap);
        va_end(ap);
        e->file = file ? strdup(file) : NULL;
        e->line = line;
        return e->r = error_r(r);
}

int cage_error_wrap(CageError *e, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *context = vformat(fmt, ap);
        va_end(ap);
        if (e->r < 0)
                r = e->r;
        char *m = strdup_printf("%s: %s", strempty(context), cage_error_message(e, r));
        free(e->message);
        e->message = m;
        return e->r = error_r(r);
}

int cage_error_add(CageError *e, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *line = vformat(fmt, ap);
        va_end(ap);
        if (!e->message) {
                e->message = TAKE_PTR(line);
                return e->r = error_r(r);
        }
        char *m = strdup_printf("%s\n%s", e->message, strempty(line));
        free(e->message);
        e->message = m;
        return error_r(r);
}

const char *cage_error_message(const CageError *e, int r) {
        if (e->message)
                return e->message;
        return strerror(-(e->r < 0 ? e->r : error_r(r)));
}

void cage_error_done(CageError *e) {
        free(e->file);
        free(e->message);
        *e = (CageError) {};
}

int cage_error_print(CageError *e) {
        const char *m = cage_error_message(e, e->r);
        bool first = true;
        do {
                size_t n = strcspn(m, "\n");
                if (first && e->file && e->line)
                        fprintf(stderr, "nspawn-cage: %s:%u: %.*s\n", e->file, e->line, (int) n, m);
                else if (first && e->file)
                        fprintf(stderr, "nspawn-cage: %s: %.*s\n", e->file, (int) n, m);
                else
                        fprintf(stderr, "nspawn-cage: %.*s\n", (int) n, m);
                first = false;
                m += n;
        } while (*m && *++m);
        cage_error_done(e);
        return 1;
}

void cage_vnotice(const char *fmt, va_list ap) {
        fputs("nspawn-cage: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

void cage_notice(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        cage_vnotice(fmt, ap);
        va_end(ap);
}
