/* test-closure.c: closure lists: one valid store path a line. */
#include "autoconfig.h"

#include "closure.h"
#include "tap.h"

int main(void) {
        char **l = NULL;
        CageError bad = {};
        const char *good = "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top\n\n/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-bash\n";
        ok(closure_parse_list(good, strlen(good), &l, &bad) == 0 && strv_length(l) == 2, "two paths, blank lines ignored");
        strv_free(l);
        l = NULL;
        const char *evil = "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top\n/etc/shadow\n";
        ok(closure_parse_list(evil, strlen(evil), &l, &bad) == -EINVAL && bad.line == 2 && bad.message && strstr(bad.message, "not a store path"), "bad line reported by number");
        ok(closure_parse_list("", 0, &l, &bad) == -EINVAL, "empty list refused");
        const char *sub = "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-top/bin\n";
        ok(closure_parse_list(sub, strlen(sub), &l, &bad) == -EINVAL, "paths below a store path refused");
        cage_error_done(&bad);
        return tap_done();
}
