/* error.h: the one error record of nspawn-cage (crun's libcrun_error_t).
 * A module that fails fills it in (what failed, why, the fix; the file and
 * line of a configuration), callers add context on the way up with
 * cage_error_wrap(), and only a verb prints it, once. */
#pragma once

#include <stdarg.h>

#include "util.h"

typedef struct CageError {
        int r;         /* the -errno that failed */
        char *file;    /* a configuration file that was wrong, if any */
        unsigned line; /* its line, if known */
        char *message; /* what failed and the fix; further failures of the same operation on lines of their own */
} CageError;

#define CAGE_ERROR_NULL ((CageError) {})

/* Replace the record with a formatted message; returns r (a negative
 * errno; -EINVAL if r is not negative), so `return cage_error_set(...)`. */
int cage_error_set(CageError *e, int r, const char *fmt, ...) _printf_(3, 4);
/* The same with the file and line it concerns. */
int cage_error_set_at(CageError *e, int r, const char *file, unsigned line, const char *fmt, ...) _printf_(5, 6);
/* Add context in front: "CONTEXT: message" (or "CONTEXT: strerror(r)" when
 * the callee left no message). Returns the record's r, else r. */
int cage_error_wrap(CageError *e, int r, const char *fmt, ...) _printf_(3, 4);
/* Another failure of an operation that goes on (a teardown): a line of its
 * own under the first. Returns r. */
int cage_error_add(CageError *e, int r, const char *fmt, ...) _printf_(3, 4);
/* The message alone, or strerror(r) if there is none. */
const char *cage_error_message(const CageError *e, int r);
void cage_error_done(CageError *e);
/* For verbs only: print "nspawn-cage: [FILE:LINE: ]MESSAGE" (each line of
 * it), then clear the record. Returns 1, the exit status of a failed verb. */
int cage_error_print(CageError *e);
/* Diagnostics that do not stop the verb ("warning: ...", "note: ..."),
 * printed at once so that they come before what the agent prints. */
void cage_notice(const char *fmt, ...) _printf_(1, 2);
void cage_vnotice(const char *fmt, va_list ap) _printf_(1, 0);
