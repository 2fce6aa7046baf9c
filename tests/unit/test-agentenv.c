/* test-agentenv.c: which value of a variable the agent gets (agentenv.h):
 * File= over the caller's environment for Pass=, the display's and the
 * forwards' over both, Set= over everything; the host's DISPLAY and the
 * like never passed; TERM only when Pass= names it. */
#include "autoconfig.h"

#include "agentenv.h"
#include "envfile.h"
#include "tap.h"

static const char *get(char *const *env, const char *name) {
        HostEnv e = { .environ = env };
        return host_env_get(&e, name);
}

static int count(char *const *env, const char *name) {
        int n = 0;
        size_t l = strlen(name);
        for (size_t i = 0; env && env[i]; i++)
                n += strncmp(env[i], name, l) == 0 && env[i][l] == '=';
        return n;
}

static void test_passed(void) {
        char *pass[] = { "GEMINI_API_KEY", "OPENAI_API_KEY", "ONLY_HOST", "ABSENT", "TERM", "DISPLAY", "XAUTHORITY", "EVIL", NULL };
        char *file[] = { "GEMINI_API_KEY=from-file", "OPENAI_API_KEY=", NULL };
        char *host[] = { "GEMINI_API_KEY=from-host", "OPENAI_API_KEY=host-openai", "ONLY_HOST=h", "TERM=vt100", "DISPLAY=:0",
                         "XAUTHORITY=/home/a/.Xauthority", "EVIL=a\nb", "UNASKED=x", NULL };
        HostEnv env = { .environ = host };
        CageError err = {};
        char **l = NULL;
        ok(agent_passed_values(pass, file, &env, &l, &err) == 0, "the values of Pass=");
        is_str(get(l, "GEMINI_API_KEY"), "from-file", "File= wins over the caller's environment");
        is_str(get(l, "OPENAI_API_KEY"), "", "an empty value in File= still wins (it is the user's word)");
        is_str(get(l, "ONLY_HOST"), "h", "a name File= lacks comes from the caller's environment");
        ok(!get(l, "ABSENT") && !get(l, "UNASKED"), "nothing that is not named, nothing that is not set");
        ok(!get(l, "TERM") && !get(l, "DISPLAY") && !get(l, "XAUTHORITY"), "TERM and the display's variables are never passed");
        ok(!get(l, "EVIL"), "a value with a control character is dropped");
        strv_free_erase(l);
        l = NULL;
        ok(agent_passed_values(pass, NULL, &env, &l, &err) == 0 && streq_ptr(get(l, "GEMINI_API_KEY"), "from-host"),
           "without File=, the caller's value");
        strv_free_erase(l);
        cage_error_done(&err);
}

static void test_environment(void) {
        char *pass[] = { "TERM", "SECRET", NULL };
        char *set[] = { "SECRET=from-set", "EDITOR=vi", NULL };
        CageSpec s = { .user = { .name = (char *) "alice", .home = (char *) "/home/alice", .uid = 1000, .gid = 1000 }, .pass = pass, .set = set };
        char *kept[] = { "SECRET=from-pass", "DISPLAY=:0", "TERM=evil", NULL };
        char *staged[] = { "DISPLAY=:1", "XAUTHORITY=/run/user/1000/Xauthority", "SSH_AUTH_SOCK=/run/ssh", NULL };
        CageError err = {};
        char **env = NULL;
        ok(agent_environment(&s, "screen", kept, staged, &env, &err) == 0, "the agent's environment");
        is_str(get(env, "HOME"), "/home/alice", "HOME is the user's");
        is_str(get(env, "USER"), "alice", "USER too");
        is_str(get(env, "PATH"), "/bin:/usr/bin", "PATH is the cage's");
        is_str(get(env, "TERM"), "screen", "TERM: the caller's, as Pass= names it; never a kept TERM=");
        ok(count(env, "TERM") == 1, "TERM once");
        is_str(get(env, "DISPLAY"), ":1", "the staged DISPLAY wins over a kept one");
        ok(count(env, "DISPLAY") == 1, "DISPLAY once");
        is_str(get(env, "SSH_AUTH_SOCK"), "/run/ssh", "the forwards' variables");
        /* Set= comes last: it wins where the agent reads the last value. */
        ok(count(env, "SECRET") == 2 && streq(env[strv_length(env) - 2], "SECRET=from-set"), "Set= comes after the passed value");
        strv_free_erase(env);
        env = NULL;
        s.pass = NULL;
        ok(agent_environment(&s, "screen", NULL, NULL, &env, &err) == 0 && streq_ptr(get(env, "TERM"), "xterm-256color"),
           "TERM not in Pass=: xterm-256color");
        strv_free_erase(env);
        cage_error_done(&err);
}

static void test_command(void) {
        CageSpec s = { .toplevel = (char *) "/nonexistent-toplevel" };
        char *abs[] = { "/bin/sh", "-c", "true", NULL }, *bare[] = { "no-such-tool", NULL }, *none[] = { NULL };
        char **argv = NULL;
        CageError err = {};
        ok(agent_command(&s, abs, &argv, &err) == 0 && streq(argv[0], "/bin/sh") && strv_length(argv) == 3, "an absolute command is run as given");
        strv_free(argv);
        argv = NULL;
        ok(agent_command(&s, bare, &argv, &err) < 0 && err.message && strstr(err.message, "add the package that provides it to Packages="),
           "a bare name not in the cage's profile is refused with the fix");
        ok(agent_command(&s, none, &argv, &err) < 0, "an empty command is refused");
        cage_error_done(&err);
}

int main(void) {
        test_passed();
        test_environment();
        test_command();
        return tap_done();
}
