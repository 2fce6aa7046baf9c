/* tap.h: a minimal TAP producer for the unit tests. Test programs exit 0
 * after printing "not ok" lines (automake's driver counts those), and
 * non-zero only when they could not run at all. */
#pragma once

#include <stdio.h>
#include <string.h>

static int tap_n;
static int tap_failed;

#define ok(cond, ...)                                                      \
        do {                                                               \
                int _c = !!(cond);                                         \
                printf("%s %d - ", _c ? "ok" : "not ok", ++tap_n);         \
                printf(__VA_ARGS__);                                       \
                printf("\n");                                              \
                if (!_c) {                                                 \
                        tap_failed++;                                      \
                        printf("#   at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
                }                                                          \
        } while (0)

#define is_str(got, want, ...)                                             \
        do {                                                               \
                const char *_g = (got), *_w = (want);                      \
                int _s = _g && _w ? strcmp(_g, _w) == 0 : _g == _w;        \
                ok(_s, __VA_ARGS__);                                       \
                if (!_s)                                                   \
                        printf("#   got:  '%s'\n#   want: '%s'\n", _g ? _g : "(null)", _w ? _w : "(null)"); \
        } while (0)

static inline int tap_done(void) {
        printf("1..%d\n", tap_n);
        return 0;
}
