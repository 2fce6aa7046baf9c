/* test-error.c: the error record (error.h): set, wrap, add, print once. */
#include "autoconfig.h"

#include "error.h"
#include "tap.h"

int main(void) {
        CageError e = {};
        ok(cage_error_set(&e, -ENOENT, "file %s", "x") == -ENOENT && e.r == -ENOENT && streq(e.message, "file x"), "set: r and message");
        ok(cage_error_set(&e, 0, "no errno") == -EINVAL && e.r == -EINVAL, "set: a non-negative r becomes -EINVAL");
        cage_error_done(&e);
        ok(cage_error_wrap(&e, -EACCES, "opening %s", "y") == -EACCES && streq(e.message, "opening y: Permission denied"),
           "wrap: with no message, strerror after the context");
        ok(cage_error_wrap(&e, -EIO, "cage c") == -EACCES && streq(e.message, "cage c: opening y: Permission denied"),
           "wrap: context goes in front, the first r stays");
        ok(cage_error_add(&e, -EBUSY, "second") == -EBUSY && streq(e.message, "cage c: opening y: Permission denied\nsecond") && e.r == -EACCES,
           "add: a line of its own, the first r stays");
        cage_error_done(&e);
        ok(!e.message && e.r == 0, "done clears");
        ok(cage_error_set_at(&e, -EINVAL, "/etc/x.conf", 3, "bad") == -EINVAL && streq(e.file, "/etc/x.conf") && e.line == 3,
           "set_at: file and line");
        is_str(cage_error_message(&e, -EINVAL), "bad", "the message alone");
        ok(cage_error_print(&e) == 1 && !e.message && !e.file, "print returns the exit status and clears");
        return tap_done();
}
