/* main.c: the command line of nspawn-cage: its options, its verbs, and
 * which verb runs. Each verb lives in verb-*.c; what they build on is in
 * the modules of libcage.a (see README.md, "Sources"). */
#include "autoconfig.h"

#include <getopt.h>

#include "hostenv.h"
#include "verbs.h"

extern char **environ;

static void help(void) {
        printf("Usage: nspawn-cage [OPTIONS] [run] PROJECT [-- COMMAND...]\n"
               "       nspawn-cage [OPTIONS] VERB [ARGS]\n"
               "Run a coding agent in a systemd-nspawn container built from a Nix closure.\n\n"
               "Verbs:\n"
               "  [run] PROJECT [-- COMMAND...] Start a cage on PROJECT and run the agent (or COMMAND)\n"
               "                                in it on this terminal; the cage stops when it ends\n"
               "  start NAME                    Start the cage declared in %s/cages/NAME.conf\n"
               "  shell NAME|PROJECT [-- CMD]   Attach another terminal to a running cage\n"
               "  list [--json]                 List cages\n"
               "  presets                       List the presets Preset= can name\n"
               "  status NAME [--json]          State, project, uptime, use against the limits\n"
               "  set NAME KEY=VALUE...         Change Memory=, Swap=, CPUs=, Tasks= of a running cage\n"
               "  denials NAME [--json] [--follow] What the cage's egress proxy refused ([Network] Allow=)\n"
               "  stop NAME                     Stop a cage and remove everything it left\n"
               "  gc                            Remove what crashed or killed cages left behind\n"
               "  config [--json] PROJECT       Show the effective settings and where each came from\n"
               "  render [--output DIR] PROJECT Write NAME.nspawn and NAME.rootfs without starting anything\n\n"
               "Options:\n"
               "  -h --help                     Show this help\n"
               "     --version                  Show the version\n"
               "     --shell                    Run a login shell instead of the agent\n"
               "     --preset NAME              The preset to use (instead of Preset= of your configuration)\n"
               "     --keep                     Keep the cage running after the command ends\n"
               "     --rebuild                  Evaluate the package set even if the closure cache\n"
               "                                holds this closure\n"
               "     --worktree BRANCH          run: on the git worktree PROJECT-BRANCH beside PROJECT,\n"
               "                                made (git worktree add, as you) if it is not there\n"
               "  -n --name NAME                Machine name (default: derived from the project path)\n"
               "     --timeout SECONDS          How long the cage may take to boot (default 120)\n"
               "     --json                     JSON output (config, list, status, denials)\n"
               "     --follow                   denials: go on showing new ones\n"
               "  -o --output DIR               Where render writes (default: .)\n"
               "     --closure FILE             Store paths to use instead of building with Nix,\n"
               "                                one a line, the top-level path first\n"
               "     --admin-config-dir DIR     Read the administrator layer from DIR (not under sudo)\n"
               "     --user-config FILE         Read the user layer from FILE (not under sudo)\n"
               "     --data-dir DIR             Presets and Nix expressions from DIR (not under sudo)\n\n"
               "Configuration: %s/nspawn-cage.conf{,.d/*.conf}, ~/.config/nspawn-cage/config,\n"
               "PROJECT/.nspawn-cage.conf. See nspawn-cage(1) and nspawn-cage.conf(5).\n",
               ADMIN_DIR, ADMIN_DIR);
}

enum { ARG_VERSION = 0x100, ARG_JSON, ARG_CLOSURE, ARG_ADMIN_DIR, ARG_USER_CONFIG, ARG_DATA_DIR, ARG_KEEP, ARG_SHELL, ARG_TIMEOUT, ARG_PRESET, ARG_REBUILD, ARG_WORKTREE, ARG_FOLLOW };

static const struct option options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        { "json", no_argument, NULL, ARG_JSON },
        { "output", required_argument, NULL, 'o' },
        { "closure", required_argument, NULL, ARG_CLOSURE },
        { "name", required_argument, NULL, 'n' },
        { "admin-config-dir", required_argument, NULL, ARG_ADMIN_DIR },
        { "user-config", required_argument, NULL, ARG_USER_CONFIG },
        { "data-dir", required_argument, NULL, ARG_DATA_DIR },
        { "keep", no_argument, NULL, ARG_KEEP },
        { "shell", no_argument, NULL, ARG_SHELL },
        { "timeout", required_argument, NULL, ARG_TIMEOUT },
        { "preset", required_argument, NULL, ARG_PRESET },
        { "rebuild", no_argument, NULL, ARG_REBUILD },
        { "worktree", required_argument, NULL, ARG_WORKTREE },
        { "follow", no_argument, NULL, ARG_FOLLOW },
        {}
};

static int parse_args(int argc, char **argv, Args *a) {
        int c;
        while ((c = getopt_long(argc, argv, "ho:n:", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help(); return 0;
                case ARG_VERSION: printf("nspawn-cage %s\n", PACKAGE_VERSION); return 0;
                case ARG_JSON: a->json = true; break;
                case 'o': a->output = optarg; break;
                case ARG_CLOSURE: a->closure = optarg; break;
                case 'n':
                        if (!machine_name_is_valid(optarg))
                                return verb_fail("--name %s: not a valid machine name (1-64 letters, digits, '-', '_', '.'; not .host)", optarg), -1;
                        a->load.name = optarg;
                        break;
                case ARG_ADMIN_DIR: a->load.admin_dir = optarg; break;
                case ARG_USER_CONFIG: a->load.user_config = optarg; break;
                case ARG_DATA_DIR: a->load.data_dir = optarg; break;
                case ARG_KEEP: a->keep = true; break;
                case ARG_SHELL: a->shell = true; break;
                case ARG_FOLLOW: a->follow = true; break;
                case ARG_PRESET: a->load.preset = optarg; break;
                case ARG_REBUILD: a->rebuild = true; break;
                case ARG_WORKTREE: a->worktree = optarg; break;
                case ARG_TIMEOUT: {
                        uint64_t v;
                        if (parse_count(optarg, &v) < 0 || v == COUNT_INFINITY || v > 3600)
                                return verb_fail("--timeout %s: give seconds, 1 to 3600", optarg), -1;
                        a->timeout_usec = v * 1000000ULL;
                        break;
                }
                default: return verb_fail("see 'nspawn-cage --help'"), -1;
                }
        }
        return 1;
}

int main(int argc, char **argv) {
        Args a = { .timeout_usec = 120 * 1000000ULL };
        /* Before any library looks at it: what sudo let through must not
         * steer the bus, the loader or Nix for root (hostenv.h). */
        if (hostenv_sanitize() < 0)
                return verb_fail("cannot clean the environment: %s", strerror(ENOMEM));
        /* Everything after "--" is the command for the cage, untouched. */
        int dashdash = argc;
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--")) {
                        dashdash = i;
                        break;
                }
        if (dashdash + 1 < argc)
                a.command = argv + dashdash + 1;
        argv[dashdash < argc ? dashdash : argc] = NULL;
        int r = parse_args(dashdash, argv, &a);
        if (r <= 0)
                return r < 0 ? 1 : 0;
        /* Options that name something root would take as given (store paths
         * to put into the cage, a configuration layer, presets and Nix
         * expressions) are the caller's choice: not through sudo. */
        const char *named = a.closure ? "--closure" : a.load.admin_dir ? "--admin-config-dir" : a.load.user_config ? "--user-config"
                          : a.load.data_dir ? "--data-dir" : NULL;
        if (named && invoked_through_sudo())
                return verb_fail("%s is for tests and inspection and is refused under sudo: root would trust what it names%s", named,
                                 a.closure ? "; leave it out, and nspawn-cage builds the closure from the administrator's package set" : "");
        char **pos = argv + optind;
        int npos = dashdash - optind;
        typedef enum { TARGET_NONE, TARGET_PROJECT, TARGET_CAGE, TARGET_DECLARED } Target;
        static const struct {
                const char *name;
                int (*run)(const Args *a);
                Target target;
                bool command;
        } verbs[] = {
                { "run", verb_run, TARGET_PROJECT, true },
                { "start", verb_start, TARGET_DECLARED, false },
                { "set", verb_set, TARGET_CAGE, false },
                { "shell", verb_shell, TARGET_CAGE, true },
                { "list", verb_list, TARGET_NONE, false },
                { "presets", verb_presets, TARGET_NONE, false },
                { "status", verb_status, TARGET_CAGE, false },
                { "stop", verb_stop, TARGET_CAGE, false },
                { "denials", verb_denials, TARGET_CAGE, false },
                { "gc", verb_gc, TARGET_NONE, false },
                { "config", verb_config, TARGET_PROJECT, false },
                { "render", verb_render, TARGET_PROJECT, false },
        };
        size_t v = 0; /* "run" when the first word is no verb */
        for (size_t i = 0; npos > 0 && i < ELEMENTSOF(verbs); i++)
                if (streq(pos[0], verbs[i].name)) {
                        v = i;
                        pos++;
                        npos--;
                        break;
                }
        a.verb = verbs[v].name;
        if (streq(a.verb, "set") && npos >= 2) {
                a.assignments = pos + 1;
                npos = 1;
        }
        static const char *const target_name[] = {
                [TARGET_PROJECT] = "PROJECT directory", [TARGET_CAGE] = "cage NAME or PROJECT", [TARGET_DECLARED] = "declared cage NAME",
        };
        if (verbs[v].target != TARGET_NONE && npos != 1)
                return verb_fail("%s needs exactly one %s; see 'nspawn-cage --help'", a.verb, target_name[verbs[v].target]);
        if (verbs[v].target == TARGET_NONE && npos != 0)
                return verb_fail("%s takes no arguments", a.verb);
        if (a.command && !verbs[v].command)
                return verb_fail("only run and shell take a COMMAND after --");
        if (a.load.preset && verbs[v].target != TARGET_PROJECT)
                return verb_fail("--preset is for run, config and render (a declared cage's preset is in its file)");
        if (a.worktree && !streq(a.verb, "run"))
                return verb_fail("--worktree is for run");
        a.load.project = verbs[v].target != TARGET_NONE ? pos[0] : NULL;
        a.load.sudo_uid = getenv("SUDO_UID");
        a.env.environ = environ;
        return verbs[v].run(&a);
}

