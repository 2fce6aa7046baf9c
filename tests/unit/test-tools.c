/* test-tools.c: the programs nspawn-cage runs are the ones configure named.
 * This test is built with tools.c compiled again, its paths pointing at
 * fakes under FAKE_TOOLS (Makefile.am), as `configure --with-xauth=PATH
 * --with-nft=PATH ...` would; it writes the fakes, then drives the real
 * callers (xauth_generate, closure_query/realise, tool_run) and sees the
 * fakes' answers come back. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "closure.h"
#include "display.h"
#include "tap.h"
#include "tools.h"
#include "user.h"
#include "util.h"

#define NIX_A "/nix/store/00000000000000000000000000000000-from-fake-nix-store"
#define NIX_B "/nix/store/11111111111111111111111111111111-from-fake-nix-build"

static int write_script(const char *dir, const char *name, const char *body) {
        _cleanup_free_ char *d = strdup_printf("%s/%s", FAKE_TOOLS, dir), *p = strdup_printf("%s/%s/%s", FAKE_TOOLS, dir, name);
        if (!d || !p)
                return -ENOMEM;
        (void) mkdir(FAKE_TOOLS, 0755);
        (void) mkdir(d, 0755);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        if (fd < 0)
                return -errno;
        size_t n = strlen(body);
        if (write(fd, body, n) != (ssize_t) n || fchmod(fd, 0755) < 0)
                return -EIO;
        return 0;
}

int main(void) {
        /* xauth -q -f FILE generate :N . untrusted timeout 0: one FamilyWild
         * entry with a cookie that says who made it. */
        static const char xauth[] =
                "#!/bin/sh\n"
                "while [ $# -gt 0 ]; do [ \"$1\" = -f ] && f=$2; shift; done\n"
                "printf '\\377\\377\\000\\000\\000\\0017\\000\\022MIT-MAGIC-COOKIE-1\\000\\020fake-xauth-ran!!' > \"$f\"\n";
        static const char complain[] = "#!/bin/sh\necho \"$0 ran: $*\" >&2\nexit 3\n";
        static const char nix_store[] = "#!/bin/sh\necho " NIX_A "\n";
        static const char nix_build[] = "#!/bin/sh\necho " NIX_B "\n";
        int r = 0;
        r = r ?: write_script("bin", "xauth", xauth);
        r = r ?: write_script("sbin", "nft", complain);
        r = r ?: write_script("sbin", "ip", complain);
        r = r ?: write_script("nix", "nix-store", nix_store);
        r = r ?: write_script("nix", "nix-build", nix_build);
        r = r ?: write_script("bin", "systemd-nspawn", complain);
        if (r < 0) {
                printf("Bail out! cannot write the fake tools under %s: %s\n", FAKE_TOOLS, strerror(-r));
                return 1;
        }

        for (Tool t = 0; t < _TOOL_MAX; t++)
                ok(tool_from_string(tool_to_string(t)) == t, "tool %s: name round trip", tool_to_string(t));
        ok(tool_from_string("sh") == _TOOL_INVALID && !tool_to_string(_TOOL_MAX), "no other tool");
        is_str(tool_configured_path(TOOL_XAUTH), FAKE_TOOLS "/bin/xauth", "xauth: the configured path");
        is_str(tool_configured_path(TOOL_NSPAWN), FAKE_TOOLS "/bin/systemd-nspawn", "systemd-nspawn: the configured path");
        _cleanup_free_ char *found = NULL;
        ok(tool_find(TOOL_NIX_BUILD, &found) == 0 && streq(found, FAKE_TOOLS "/nix/nix-build"),
           "nix-build: the configured path wins over the search (%s)", strempty(found));

        /* ip and nft: run by path, their stderr comes back in the error */
        const char *const args[] = { "list", "ruleset", NULL };
        _cleanup_(cage_error_done) CageError err = {};
        r = tool_run(TOOL_NFT, args, -1, NULL, &err);
        ok(r == -EIO && err.message && strstr(err.message, "'nft list ruleset' failed: " FAKE_TOOLS "/sbin/nft ran: list ruleset"),
           "nft: the configured one runs (%s)", strempty(err.message));
        cage_error_done(&err);
        const char *const ipargs[] = { "link", "show", NULL };
        r = tool_run(TOOL_IP, ipargs, -1, NULL, &err);
        ok(r == -EIO && err.message && strstr(err.message, FAKE_TOOLS "/sbin/ip ran: link show"), "ip: the configured one runs (%s)", strempty(err.message));
        cage_error_done(&err);

        /* nix-store and nix-build */
        _cleanup_strv_free_ char **paths = NULL;
        r = closure_query("/nix/store/22222222222222222222222222222222-anything", &paths);
        ok(r == 0 && paths && streq(paths[0], NIX_A) && !paths[1], "nix-store: the configured one answers closure_query");
        char *packages[] = { "git", NULL };
        ClosureRequest req = { .nixpkgs = "/srv/nixpkgs", .packages = packages, .name = "demo", .data_dir = "/srv/data" };
        _cleanup_strv_free_ char **built = NULL;
        r = closure_realise(&req, NULL, &built, &err);
        ok(r == 0 && built && streq(built[0], NIX_B) && built[1] && streq(built[1], NIX_A) && !built[2],
           "nix-build then nix-store: the configured ones realise a closure (%s)", strempty(err.message));
        cage_error_done(&err);

        /* xauth, as the user (here: whoever runs the test) */
        _cleanup_(host_user_done) HostUser u = {};
        _cleanup_free_ char *cookie = NULL, *xafile = strdup_printf("%s/Xauthority", FAKE_TOOLS);
        size_t cs = 0;
        _cleanup_close_ int xfd = xafile ? open(xafile, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
        if (host_user_from_uid(getuid(), &u) < 0 || xfd < 0)
                printf("ok %d - xauth: the configured one makes the cookie # SKIP no passwd entry for uid %u or no file\n", ++tap_n,
                       (unsigned) getuid());
        else if (access("/tmp", W_OK) < 0 && access(strempty(getenv("XDG_RUNTIME_DIR")), W_OK) < 0)
                printf("ok %d - xauth: the configured one makes the cookie # SKIP no writable /tmp\n", ++tap_n);
        else {
                r = xauth_generate(&u, xfd, 7, &cookie, &cs, &err);
                char *c = NULL;
                size_t n = 0;
                ok(r == 0 && xauth_find_cookie(cookie, cs, 7, "any", false, &c, &n) == 0 && n == 16 && memcmp(c, "fake-xauth-ran!!", 16) == 0,
                   "xauth: the configured one makes the cookie (%s)", strempty(err.message));
                free(c);
        }

        /* a configured tool that is missing: say which and how it was built */
        _cleanup_free_ char *nft = strdup_printf("%s/sbin/nft", FAKE_TOOLS);
        (void) unlink(nft);
        r = tool_run(TOOL_NFT, args, -1, NULL, &err);
        ok(r == -ENOENT && err.message && strstr(err.message, "--with-nft=" FAKE_TOOLS "/sbin/nft") && strstr(err.message, "install nftables"),
           "a missing nft: the message names the configure option (%s)", strempty(err.message));
        return tap_done();
}
