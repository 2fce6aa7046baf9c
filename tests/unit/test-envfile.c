/* test-envfile: [Environment] File= parsing (the accepted subset of
 * systemd's EnvironmentFile=), its open checks, and the config layers that
 * may set File=, SSHAgent= and GitConfig=. */
#include "autoconfig.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "config.h"
#include "envfile.h"
#include "tap.h"

static char *names[] = { "GEMINI_API_KEY", "OPENAI_API_KEY", "EMPTY", "Q", NULL };

static char *parse_one(const char *text, const char *name, int *ret_r, unsigned *ret_line) {
        char **l = NULL;
        CageError e = {};
        int r = envfile_parse(text, strlen(text), names, &l, &e);
        unsigned line = e.line;
        cage_error_done(&e);
        *ret_r = r;
        if (ret_line)
                *ret_line = line;
        char *v = NULL;
        for (size_t i = 0; r >= 0 && l && l[i]; i++) {
                const char *p = startswith(l[i], name);
                if (p && *p == '=')
                        v = strdup(p + 1);
        }
        strv_free_erase(l);
        return v;
}

static void check(const char *text, const char *name, const char *want, const char *what) {
        int r;
        char *v = parse_one(text, name, &r, NULL);
        ok(r == 0, "%s: parses", what);
        is_str(v, want, "%s: %s", what, name);
        free(v);
}

static void bad(const char *text, unsigned want_line, const char *what) {
        int r;
        unsigned line;
        char *v = parse_one(text, "Q", &r, &line);
        ok(r == -EINVAL && line == want_line, "%s: refused at line %u (got %d at %u)", what, want_line, r, line);
        free(v);
}

static int load(Config *c, Layer layer, const char *text, CageError *err) {
        return config_load_buffer(c, layer, layer == LAYER_PROJECT ? "/p/.nspawn-cage.conf" : "/u/config", text, strlen(text), err);
}

int main(void) {
        check("GEMINI_API_KEY=abc\n", "GEMINI_API_KEY", "abc", "plain");
        check("# comment\n; other\n\n  GEMINI_API_KEY = abc  \n", "GEMINI_API_KEY", "abc", "comments, blank lines, spaces around =");
        check("GEMINI_API_KEY=\"a b \\\" \\\\ \\$x\"\n", "GEMINI_API_KEY", "a b \" \\ $x", "double quotes with escapes");
        check("GEMINI_API_KEY='a \\n \"b\"'\n", "GEMINI_API_KEY", "a \\n \"b\"", "single quotes are literal");
        check("GEMINI_API_KEY=one\nGEMINI_API_KEY=two", "GEMINI_API_KEY", "two", "the last line wins, no final newline needed");
        check("OTHER=x\nGEMINI_API_KEY=k\n", "OTHER", NULL, "a name not passed is not taken");
        check("EMPTY=\n", "EMPTY", "", "an empty value is a value");
        check("Q=a=b#c\n", "Q", "a=b#c", "'=' and '#' inside an unquoted value");
        bad("GEMINI_API_KEY=abc\nexport Q=1\n", 2, "export");
        bad("Q=\"open\n", 1, "unterminated quote");
        bad("Q='x' y\n", 1, "text after the closing quote");
        bad("\n\nQ=a\r\n", 3, "carriage return");
        bad("1Q=a\n", 1, "a name starting with a digit");
        bad("just words\n", 1, "no '='");

        /* Opening: private regular files only. */
        char dir[] = "/tmp/test-envfile.XXXXXX";
        ok(mkdtemp(dir) != NULL, "temporary directory");
        char path[128], link[128];
        snprintf(path, sizeof path, "%s/env", dir);
        snprintf(link, sizeof link, "%s/link", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ok(fd >= 0 && write(fd, "Q=1\n", 4) == 4, "writes a 0600 file");
        close(fd);
        fd = -1;
        ok(envfile_open(path, NULL, &fd) == 0 && fd >= 0, "a 0600 file opens");
        if (fd >= 0)
                close(fd);
        ok(chmod(path, 0644) == 0 && envfile_open(path, NULL, &fd) == -EPERM, "a world-readable file is refused (-EPERM)");
        ok(chmod(path, 0602) == 0 && envfile_open(path, NULL, &fd) == -EPERM, "a world-writable file is refused (-EPERM)");
        ok(chmod(path, 0640) == 0 && symlink(path, link) == 0 && envfile_open(link, NULL, &fd) == -ELOOP, "a symbolic link is refused (-ELOOP)");
        ok(envfile_open(dir, NULL, &fd) == -EBADFD, "a directory is refused (-EBADFD)");
        unlink(link);
        unlink(path);
        rmdir(dir);

        /* Layers: File= is the user's; SSHAgent=/GitConfig= the user's, the project may only turn them off. */
        Config *c = NULL;
        CageError err = {};
        ok(config_new(&c) == 0 && load(c, LAYER_USER, "[Environment]\nFile=/run/secrets/a.env\n[Forward]\nSSHAgent=yes\n", &err) == 0,
           "the user layer sets File= and SSHAgent=yes");
        is_str(c->settings[SETTING_ENV_FILE].string, "/run/secrets/a.env", "File= is kept");
        ok(load(c, LAYER_PROJECT, "[Forward]\nSSHAgent=no\n", &err) == 0 && c->settings[SETTING_SSH_AGENT].number == 0,
           "the project turns SSHAgent off");
        config_free(c);
        ok(config_new(&c) == 0 && load(c, LAYER_PROJECT, "[Forward]\nSSHAgent=yes\n", &err) < 0 && err.line == 2 &&
           err.message && strstr(err.message, "SSHAgent=yes is not allowed"), "the project cannot turn SSHAgent on: %s", strempty(err.message));
        config_free(c);
        cage_error_done(&err);
        ok(config_new(&c) == 0 && load(c, LAYER_PROJECT, "[Forward]\nGitConfig=yes\n", &err) < 0 && err.line == 2,
           "the project cannot turn GitConfig on: %s", strempty(err.message));
        config_free(c);
        cage_error_done(&err);
        ok(config_new(&c) == 0 && load(c, LAYER_PROJECT, "[Environment]\nFile=/tmp/x\n", &err) < 0 && err.line == 2 &&
           err.message && strstr(err.message, "File= may only be set in your user configuration"), "the project cannot set File=: %s",
           strempty(err.message));
        config_free(c);
        cage_error_done(&err);
        ok(config_new(&c) == 0 && load(c, LAYER_ADMIN, "[Environment]\nFile=/tmp/x\n", &err) < 0, "the admin layer cannot set File= for every user: %s",
           strempty(err.message));
        config_free(c);
        cage_error_done(&err);
        ok(config_new(&c) == 0 && config_load_declared(c, "/etc/nspawn-cage/cages/d.conf", "[Environment]\nFile=/run/secrets/d\n", 34, &err) == 0,
           "a declared cage's file sets File=");
        config_free(c);
        cage_error_done(&err);
        ok(config_new(&c) == 0 && load(c, LAYER_USER, "[Environment]\nFile=/nix/store/00000000000000000000000000000000-x\n", &err) < 0,
           "File= in the Nix store is refused: %s", strempty(err.message));
        config_free(c);
        cage_error_done(&err);
        return tap_done();
}
