/* test-closurecache.c: the closure cache's key changes with every input Nix
 * reads (package list, cage.nix, the package set's identity), a rewritten
 * file with its mtime set back included; entries are used only whole, and
 * gc drops stale and half-made ones but not one in use. SHA-256 against
 * FIPS 180-4's vectors. */
#include "autoconfig.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "closurecache.h"
#include "sha256.h"
#include "tap.h"

static char *hex(const char *data, size_t n, size_t repeat) {
        static char out[65];
        Sha256 c;
        sha256_init(&c);
        for (size_t i = 0; i < repeat; i++)
                sha256_update(&c, data, n);
        sha256_final_hex(&c, out);
        return out;
}

static void write_at(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
        FILE *f = fopen(p, "we");
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

/* dir/name rewritten with text, its old mtime put back (as the agent could
 * do to a file it may write): only its ctime tells. */
static void rewrite_keeping_mtime(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
        struct stat st0;
        if (stat(p, &st0) < 0)
                return;
        usleep(20 * 1000);
        write_at(dir, name, text);
        struct timespec times[2] = { st0.st_atim, st0.st_mtim };
        utimensat(AT_FDCWD, p, times, 0);
}

/* The hash of the key for (nixpkgs, packages) with data dir `data`. */
static char *key_of(const char *data, const char *nixpkgs, char **packages, char **ret_why) {
        ClosureRequest req = { .nixpkgs = nixpkgs, .packages = packages, .data_dir = data };
        ClosureKey k = {};
        CageError e = {};
        char *h = NULL;
        if (closure_cache_key(&req, &k, &e) >= 0) {
                h = strdup(k.hash);
                if (ret_why)
                        *ret_why = k.uncacheable ? strdup(k.uncacheable) : NULL;
        }
        closure_key_done(&k);
        cage_error_done(&e);
        return h;
}

static bool identity_is(const char *nixpkgs, const char *prefix) {
        _cleanup_free_ char *id = NULL, *why = NULL;
        if (closure_nixpkgs_identity(nixpkgs, &id, &why) < 0)
                return false;
        return prefix ? id && startswith(id, prefix) : !id && why;
}

static void sha256_vectors(void) {
        is_str(hex("", 0, 1), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256 of nothing");
        is_str(hex("abc", 3, 1), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 of abc");
        const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        is_str(hex(two, strlen(two), 1), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "sha256 of the two-block vector");
        is_str(hex("a", 1, 1000000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "sha256 of a million a, fed byte by byte");
}

int main(void) {
        char tmpl[] = "/tmp/test-closurecache.XXXXXX";
        if (!mkdtemp(tmpl))
                return 1;
        _cleanup_free_ char *data = strdup_printf("%s/data", tmpl), *nixdir = strdup_printf("%s/data/nix", tmpl),
                            *pkgs = strdup_printf("%s/pkgs", tmpl), *sub = strdup_printf("%s/pkgs/sub", tmpl),
                            *link = strdup_printf("%s/channel", tmpl), *cache = strdup_printf("%s/cache", tmpl),
                            *project = strdup_printf("%s/project", tmpl);
        mkdir(data, 0755);
        mkdir(nixdir, 0755);
        mkdir(pkgs, 0755);
        mkdir(sub, 0755);
        mkdir(project, 0755);
        mkdir(cache, 0700);
        write_at(nixdir, "cage.nix", "{ }: 1\n");
        write_at(pkgs, "default.nix", "{ ... }: { }\n");
        write_at(sub, "pkg.nix", "abc\n");

        sha256_vectors();

        char *p1[] = { "git", "ripgrep", NULL }, *p2[] = { "git", NULL }, *p3[] = { "ripgrep", "git", NULL };
        _cleanup_free_ char *k1 = key_of(data, pkgs, p1, NULL), *again = key_of(data, pkgs, p1, NULL);
        ok(k1 && again && streq(k1, again), "the same inputs give the same key");
        _cleanup_free_ char *kp = key_of(data, pkgs, p2, NULL), *ko = key_of(data, pkgs, p3, NULL);
        ok(kp && !streq(k1, kp), "a changed package list changes the key");
        ok(ko && !streq(k1, ko), "the packages' order (which wins a name in sw/bin) changes the key");

        write_at(nixdir, "cage.nix", "{ }: 2\n");
        _cleanup_free_ char *kn = key_of(data, pkgs, p1, NULL);
        ok(kn && !streq(k1, kn), "a changed nix/cage.nix changes the key");
        write_at(nixdir, "cage.nix", "{ }: 1\n");
        _cleanup_free_ char *kback = key_of(data, pkgs, p1, NULL);
        ok(kback && streq(k1, kback), "cage.nix's content is the key, not its time");

        /* A file of the set rewritten, same size, its mtime set back. */
        rewrite_keeping_mtime(sub, "pkg.nix", "xyz\n");
        _cleanup_free_ char *ks = key_of(data, pkgs, p1, NULL);
        ok(ks && !streq(k1, ks), "a package set file rewritten with its old size and mtime changes the key (ctime)");
        _cleanup_free_ char *ks2 = key_of(data, pkgs, p1, NULL);
        write_at(pkgs, "new.nix", "1\n");
        _cleanup_free_ char *ka = key_of(data, pkgs, p1, NULL);
        ok(ks2 && ka && !streq(ks2, ka), "a file added to the package set changes the key");

        /* A link in the set to a file elsewhere (in a project): its target counts. */
        _cleanup_free_ char *outside = strdup_printf("%s/extra.nix", project), *inlink = strdup_printf("%s/extra.nix", pkgs);
        write_at(project, "extra.nix", "1\n");
        symlink(outside, inlink);
        _cleanup_free_ char *kl1 = key_of(data, pkgs, p1, NULL);
        rewrite_keeping_mtime(project, "extra.nix", "2\n");
        _cleanup_free_ char *kl2 = key_of(data, pkgs, p1, NULL);
        ok(kl1 && kl2 && !streq(kl1, kl2), "a linked file rewritten in the project, its mtime set back, changes the key");
        /* .git is not read by evaluation */
        _cleanup_free_ char *git = strdup_printf("%s/.git", pkgs);
        _cleanup_free_ char *kg0 = key_of(data, pkgs, p1, NULL);
        mkdir(git, 0755);
        write_at(git, "HEAD", "x\n");
        _cleanup_free_ char *kg1 = key_of(data, pkgs, p1, NULL);
        ok(kg0 && kg1 && !streq(kg0, kg1), "a new .git changes the set's directory (its own entry)");
        write_at(git, "HEAD", "y\n");
        _cleanup_free_ char *kg2 = key_of(data, pkgs, p1, NULL);
        ok(kg2 && streq(kg1, kg2), "what is inside .git is not walked");

        /* Identities */
        symlink(pkgs, link);
        ok(identity_is(link, "tree:"), "a link to a plain directory: the directory's tree identity");
        _cleanup_free_ char *via_link = key_of(data, link, p1, NULL), *direct = key_of(data, pkgs, p1, NULL);
        ok(via_link && direct && !streq(via_link, direct), "the name Nixpkgs= gives is part of the key too");
        ok(identity_is("github:owner/repo", NULL), "an unlocked flake has no identity");
        ok(identity_is("github:owner/repo/nixos-unstable", NULL), "a flake on a branch has no identity");
        ok(identity_is("github:owner/repo/0123456789abcdef0123456789abcdef01234567", "flake:"), "a flake on a revision is locked");
        ok(identity_is("git+file:///srv/nixpkgs?ref=main&rev=0123456789abcdef0123456789abcdef01234567", "flake:"), "rev= locks a flake");
        ok(identity_is("git+file:///srv/nixpkgs?ref=main", NULL), "ref= alone does not");
        ok(identity_is("path:/srv/x?narHash=sha256-AAAA", "flake:"), "narHash= locks a flake");
        ok(identity_is("/nonexistent/nixpkgs", NULL), "a missing directory has no identity");
        ok(identity_is("<surely-no-such-channel-here>", NULL), "an unknown channel has no identity");
        char *why = NULL;
        _cleanup_free_ char *ku = key_of(data, "github:owner/repo", p1, &why);
        ok(ku && why, "a request on an unlocked flake is not cacheable (%s)", strempty(why));
        free(why);

        /* Entries: only whole, matching ones are used. */
        _cleanup_(closure_key_done) ClosureKey k = {};
        CageError e = {};
        ClosureRequest req = { .nixpkgs = pkgs, .packages = p1, .data_dir = data };
        closure_cache_key(&req, &k, &e);
        _cleanup_close_ int cfd = open(cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *edir = strdup_printf("%s/%s", cache, k.hash);
        const char *top = "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-nspawn-cage-cage";
        char **paths = NULL;
        int lock = -1;
        ok(closure_cache_lookup(cfd, &k, false, &paths, &lock) == -ENOENT, "no entry: a miss");
        mkdir(edir, 0700);
        write_at(edir, "key", k.text);
        ok(closure_cache_lookup(cfd, &k, false, &paths, &lock) == -ENOENT, "an entry without its closure (half-made): a miss");
        write_at(edir, "closure", "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-nspawn-cage-cage\n/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-bash\n");
        ok(closure_cache_lookup(cfd, &k, false, &paths, &lock) == -ENOENT, "an entry without its GC root: a miss");
        _cleanup_free_ char *root = strdup_printf("%s/root", edir);
        symlink("/nix/store/2c6kzph7l0dcbfmjap64f0czdafn3b7x-other", root);
        ok(closure_cache_lookup(cfd, &k, false, &paths, &lock) == -ENOENT, "an entry whose root holds another path: a miss");
        unlink(root);
        symlink(top, root);
        ok(closure_cache_lookup(cfd, &k, false, &paths, &lock) == 0 && paths && strv_length(paths) == 2 && streq(paths[0], top) && lock >= 0,
           "a whole entry with the same key: a hit, top-level first, locked");
        strv_free(paths);
        paths = NULL;
        ok(closure_cache_lookup(cfd, &k, true, &paths, &lock) == -ENOENT, "a hit whose store paths are gone: a miss");
        write_at(edir, "key", "nspawn-cage-closure-cache=1\nnixpkgs=/elsewhere\n");
        ok(closure_cache_lookup(cfd, &k, false, &paths, &lock) == -ENOENT, "an entry whose key text differs (a collision, a forgery): a miss");
        write_at(edir, "key", k.text);
        chmod(edir, 0755);
        ok(closure_cache_lookup(cfd, &k, false, &paths, &lock) == -EPERM, "an entry others can read is refused");
        chmod(edir, 0700);
        close(lock);

        /* gc: in use stays, even if its store paths are unknown; otherwise a
         * broken or stale entry goes, with its root. */
        unsigned removed = 99;
        char *in_use[] = { (char *) top, NULL };
        ok(closure_cache_gc(cfd, in_use, CLOSURE_CACHE_MAX_IDLE_USEC, &removed, &e) == 0 && removed == 0 && access(root, F_OK) != 0 &&
           faccessat(AT_FDCWD, root, F_OK, AT_SYMLINK_NOFOLLOW) == 0, "gc keeps an entry a cage runs on");
        ok(closure_cache_gc(cfd, NULL, CLOSURE_CACHE_MAX_IDLE_USEC, &removed, &e) == 0 && removed == 1 && access(edir, F_OK) < 0,
           "gc drops an entry whose paths are gone, root included");
        cage_error_done(&e);

        _cleanup_free_ char *cmd = strdup_printf("rm -rf %s", tmpl);
        if (cmd && system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", tmpl);
        return tap_done();
}
