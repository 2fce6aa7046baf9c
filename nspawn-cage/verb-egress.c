/* verb-egress.c: `denials NAME`: what a cage's egress proxy refused, from
 * the journal (egress.h), and the one-line summary `run` prints at exit. */
#include "autoconfig.h"

#include <systemd/sd-journal.h>
#include <time.h>

#include "egress.h"
#include "verbs.h"

/* The journal's fields of one cage's refusals are readable by root only;
 * a user sees the refusals of their own cages (NSPAWN_CAGE_UID). */
static bool denial_visible(sd_journal *j, uid_t uid) {
        const void *data;
        size_t len;
        char want[64];
        if (uid == 0)
                return true;
        int n = snprintf(want, sizeof want, "NSPAWN_CAGE_UID=%u", (unsigned) uid);
        return sd_journal_get_data(j, "NSPAWN_CAGE_UID", &data, &len) >= 0 && len == (size_t) n && memcmp(data, want, len) == 0;
}

static void print_denial(sd_journal *j, bool json, bool *first) {
        uint64_t t = 0;
        (void) sd_journal_get_realtime_usec(j, &t);
        _cleanup_free_ char *host = egress_journal_field(j, "DENIED_HOST"), *port = egress_journal_field(j, "DENIED_PORT"),
                            *path = egress_journal_field(j, "DENIED_PATH"),
                            *rule = egress_journal_field(j, "RULE"), *proto = egress_journal_field(j, "PROTO");
        char when[64];
        time_t s = (time_t) (t / 1000000);
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S%z", localtime_r(&s, &tm));
        if (!json) {
                printf("%s %s:%s %s %s\n", when, strempty(host), strempty(port), strempty(path), strempty(rule));
                return;
        }
        _cleanup_(strbuf_done) StrBuf b = {};
        strbuf_appendf(&b, "%s{\"time\":", *first ? "" : ",\n");
        strbuf_append_json(&b, when);
        strbuf_append(&b, ",\"host\":");
        strbuf_append_json(&b, strempty(host));
        strbuf_appendf(&b, ",\"port\":%u,\"path\":", (unsigned) strtoul(strempty(port), NULL, 10));
        strbuf_append_json(&b, strempty(path));
        strbuf_append(&b, ",\"rule\":");
        strbuf_append_json(&b, strempty(rule));
        if (!isempty(proto)) { /* the nft drops' (nflog.h) */
                strbuf_append(&b, ",\"proto\":");
                strbuf_append_json(&b, proto);
        }
        strbuf_append(&b, "}");
        _cleanup_free_ char *text = NULL;
        if (strbuf_steal(&b, &text) >= 0)
                fputs(text, stdout);
        *first = false;
}

int verb_denials(const Args *a) {
        _cleanup_(host_user_done) HostUser user = {};
        _cleanup_(cage_error_done) CageError err = {};
        const char *name = a->load.project;
        if (require_root(&err) < 0 || invoking_user(a->load.sudo_uid, &user, &err) < 0)
                return cage_error_print(&err);
        if (!machine_name_is_valid(name))
                return verb_fail("denials NAME: '%s' is not a valid cage name", name);
        sd_journal *j = NULL;
        int r = egress_journal_open(name, 0, &j);
        if (r < 0)
                return verb_fail("the journal: %s", strerror(-r));
        bool first = true;
        if (a->json && !a->follow)
                fputs("[\n", stdout);
        for (;;) {
                while ((r = sd_journal_next(j)) > 0)
                        if (denial_visible(j, user.uid)) {
                                print_denial(j, a->json, &first);
                                if (a->json && a->follow) {
                                        fputs("\n", stdout);
                                        first = true; /* one JSON object a line */
                                }
                        }
                fflush(stdout);
                if (r < 0 || !a->follow)
                        break;
                if (sd_journal_wait(j, UINT64_MAX) < 0)
                        break;
        }
        if (a->json && !a->follow)
                fputs(first ? "]\n" : "\n]\n", stdout);
        sd_journal_close(j);
        return r < 0 ? verb_fail("the journal: %s", strerror(-r)) : 0;
}

void egress_print_summary(const char *name, uint64_t since_usec) {
        EgressDenial *d = NULL;
        size_t n = 0;
        /* The proxy's last lines may still be on their way to journald. */
        for (int i = 0; i < 5 && egress_denials_read(name, since_usec, &d, &n) >= 0; i++) {
                if (n > 0)
                        break;
                egress_denials_free(d, n);
                d = NULL;
                struct timespec ts = { 0, 100 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        if (n == 0) {
                egress_denials_free(d, n);
                return;
        }
        _cleanup_(strbuf_done) StrBuf b = {};
        size_t shown = 0;
        for (size_t i = 0; i < n && shown < 5; i++) {
                bool dup = false;
                for (size_t k = 0; k < i && !dup; k++)
                        dup = streq(d[k].host, d[i].host) && streq(d[k].port, d[i].port);
                if (!dup) {
                        strbuf_appendf(&b, " %s:%s", d[i].host, d[i].port);
                        shown++;
                }
        }
        _cleanup_free_ char *list = NULL;
        if (strbuf_steal(&b, &list) >= 0)
                cage_notice("%zu refused:%s%s ('nspawn-cage denials %s' shows each)", n, list, shown < n ? " ..." : "", name);
        egress_denials_free(d, n);
}
