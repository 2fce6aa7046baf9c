/* test-egress.c: the egress proxy's parsers and rules on what a hostile
 * cage sends: requests to the proxy, TLS ClientHellos and HTTP heads on
 * redirected connections, DNS queries, and the addresses it may reach. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <stdlib.h>

#include "egress.h"
#include "tap.h"
#include "util.h"

/* A minimal TLS 1.2 ClientHello record with server_name sni (NULL: none). */
static size_t client_hello(uint8_t *b, const char *sni, size_t sni_len) {
        uint8_t body[1024];
        size_t n = 0;
        body[n++] = 3, body[n++] = 3;                /* version */
        memset(body + n, 0x11, 32), n += 32;         /* random */
        body[n++] = 0;                                /* session id */
        body[n++] = 0, body[n++] = 2, body[n++] = 0x13, body[n++] = 0x01; /* one cipher suite */
        body[n++] = 1, body[n++] = 0;                 /* compression: null */
        size_t ext_at = n;
        n += 2;
        if (sni) {
                body[n++] = 0, body[n++] = 0; /* server_name */
                size_t el = sni_len + 5;
                body[n++] = (uint8_t) (el >> 8), body[n++] = (uint8_t) el;
                body[n++] = (uint8_t) ((sni_len + 3) >> 8), body[n++] = (uint8_t) (sni_len + 3);
                body[n++] = 0;
                body[n++] = (uint8_t) (sni_len >> 8), body[n++] = (uint8_t) sni_len;
                memcpy(body + n, sni, sni_len), n += sni_len;
        }
        size_t el = n - ext_at - 2;
        body[ext_at] = (uint8_t) (el >> 8), body[ext_at + 1] = (uint8_t) el;
        size_t hl = n, rl = hl + 4;
        b[0] = 0x16, b[1] = 3, b[2] = 1, b[3] = (uint8_t) (rl >> 8), b[4] = (uint8_t) rl;
        b[5] = 1, b[6] = 0, b[7] = (uint8_t) (hl >> 8), b[8] = (uint8_t) hl;
        memcpy(b + 9, body, hl);
        return 9 + hl;
}

static int req(const char *text, EgressRequest *r) { return egress_parse_request(text, strlen(text), r); }

static int name_of(const char *text, char *out) { return egress_peek_name((const uint8_t *) text, strlen(text), out, 256); }

int main(void) {
        NetworkAllow allow[] = {
                { .host = "*.allowed.test", .port = 443 },
                { .host = "github.com", .port = 443 },
                { .host = "github.com", .port = 22 },
                { .host = "198.51.100.7", .port = 8080 },
        };
        size_t n = ELEMENTSOF(allow);
        ok(egress_has_names(allow, n) && !egress_has_names(allow + 3, 1), "names need the proxy; a literal alone does not");
        ok(egress_rule_find(allow, n, "a.allowed.test", 443) == 0 && egress_rule_find(allow, n, "x.y.allowed.test", 443) == 0,
           "*.allowed.test matches names below it, at any depth");
        ok(egress_rule_find(allow, n, "allowed.test", 443) < 0, "but not allowed.test itself");
        ok(egress_rule_find(allow, n, "evilallowed.test", 443) < 0 && egress_rule_find(allow, n, "allowed.test.evil", 443) < 0,
           "nor a name that only ends or starts like it");
        ok(egress_rule_find(allow, n, "a.allowed.test", 80) < 0 && egress_rule_find(allow, n, "github.com", 22) == 2, "the port is part of the rule");
        ok(egress_rule_find(allow, n, "198.51.100.7", 8080) == 3 && egress_rule_find(allow, n, "198.51.100.8", 8080) < 0, "literals match literally");
        ok(egress_name_allowed(allow, n, "github.com") && !egress_name_allowed(allow, n, "198.51.100.7") && !egress_name_allowed(allow, n, "x.test"),
           "DNS answers names of any rule's port, never a literal or another name");

        char h[256];
        ok(egress_host_normalise("A.Allowed.TEST", 14, h, sizeof h) == 0 && streq(h, "a.allowed.test"), "names are lowered");
        static const char *const bad_names[] = { "a.allowed.test.", "*.allowed.test", "a..b", "evil.test@a.allowed.test", "a b", "-x.test",
                                                 "a.allowed.test:443", "a%2eallowed.test", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++)
                ok(egress_host_normalise(bad_names[i], strlen(bad_names[i]), h, sizeof h) == -EINVAL, "name '%s' refused", bad_names[i]);
        ok(egress_host_normalise("a.allowed.test\0.evil", 20, h, sizeof h) == -EINVAL, "a NUL inside a name is refused");

        EgressRequest *r = calloc(1, sizeof *r);
        ok(req("CONNECT a.allowed.test:443 HTTP/1.1\r\nHost: a.allowed.test:443\r\n\r\n", r) == 0 && r->connect && streq(r->host, "a.allowed.test") &&
           r->port == 443, "CONNECT host:port");
        ok(req("CONNECT a.allowed.test:443 HTTP/1.1\r\nHost: x\r\n", r) == -EAGAIN, "a head without its empty line needs more");
        ok(req("GET http://a.allowed.test/x?y HTTP/1.1\r\nHost: a.allowed.test\r\n\r\nBODY", r) == 0 && !r->connect && r->port == 80 &&
           streq(r->rewritten, "GET /x?y HTTP/1.1\r\n") && r->line_len == 40, "plain HTTP: absolute URL, rewritten to origin form");
        ok(req("GET http://a.allowed.test:8080 HTTP/1.0\r\n\r\n", r) == 0 && r->port == 8080 && streq(r->rewritten, "GET / HTTP/1.0\r\n"),
           "no path: /");
        static const char *const bad_reqs[] = {
                "CONNECT a.allowed.test HTTP/1.1\r\n\r\n",                  /* no port */
                "CONNECT a.allowed.test:0 HTTP/1.1\r\n\r\n",
                "CONNECT a.allowed.test:65536 HTTP/1.1\r\n\r\n",
                "CONNECT a.allowed.test:443x HTTP/1.1\r\n\r\n",
                "CONNECT [::1]:443 HTTP/1.1\r\n\r\n",
                "GET http://evil.test@a.allowed.test/ HTTP/1.1\r\n\r\n",  /* user info */
                "GET /x HTTP/1.1\r\nHost: a.allowed.test\r\n\r\n",          /* origin form to a proxy */
                "GET https://a.allowed.test/ HTTP/1.1\r\n\r\n",
                "GET http://a.allowed.test/ HTTP/2.0 x\r\n\r\n",
                "GET  http://a.allowed.test/ HTTP/1.1\r\n\r\n",
                "GET http://a.allowed.test/\tx HTTP/1.1\r\n\r\n",
                "CONNECT a.allowed.test:443 FTP/1.1\r\n\r\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_reqs); i++)
                ok(req(bad_reqs[i], r) == -EINVAL, "request refused: %.*s", (int) strcspn(bad_reqs[i], "\r"), bad_reqs[i]);
        char *big = malloc(EGRESS_HEAD_MAX + 1);
        memset(big, 'A', EGRESS_HEAD_MAX);
        ok(egress_parse_request(big, EGRESS_HEAD_MAX, r) == -EINVAL, "a head of %d bytes without an end is refused, not waited for", EGRESS_HEAD_MAX);

        uint8_t b[2048];
        size_t len = client_hello(b, "A.Allowed.Test", 14);
        ok(egress_peek_name(b, len, h, sizeof h) == 0 && streq(h, "a.allowed.test"), "SNI of a ClientHello");
        ok(egress_peek_name(b, 20, h, sizeof h) == -EAGAIN && egress_peek_name(b, 3, h, sizeof h) == -EAGAIN, "a partial record needs more");
        len = client_hello(b, NULL, 0);
        ok(egress_peek_name(b, len, h, sizeof h) == -EINVAL, "a ClientHello without SNI is refused");
        len = client_hello(b, "refused.test\0a.allowed.test", 27);
        ok(egress_peek_name(b, len, h, sizeof h) == -EINVAL, "an SNI with a NUL is refused");
        len = client_hello(b, "a.allowed.test", 14);
        b[len - 16] = 0xff; /* the name's length beyond the extension */
        ok(egress_peek_name(b, len, h, sizeof h) == -EINVAL, "an SNI length past its extension is refused");
        len = client_hello(b, "a.allowed.test", 14);
        b[3] = 0x7f, b[4] = 0xff;
        ok(egress_peek_name(b, len, h, sizeof h) == -EINVAL, "a record longer than the head limit is refused");
        for (size_t cut = 5; cut < 60; cut += 7) { /* every truncation of the hello inside its record: refused, never read past */
                uint8_t t[2048];
                size_t l2 = client_hello(t, "a.allowed.test", 14);
                t[3] = (uint8_t) ((cut - 5) >> 8), t[4] = (uint8_t) (cut - 5);
                int rr = egress_peek_name(t, l2, h, sizeof h);
                ok(rr == -EINVAL, "a record cut to %zu bytes is refused (%d)", cut, rr);
        }
        ok(name_of("GET / HTTP/1.1\r\nHost: A.allowed.test:80\r\nX: y\r\n\r\n", h) == 0 && streq(h, "a.allowed.test"), "Host: of a plain request");
        ok(name_of("GET / HTTP/1.1\r\nhost:a.allowed.test\r\n\r\n", h) == 0 && streq(h, "a.allowed.test"), "host: in any case, without a space");
        ok(name_of("GET / HTTP/1.1\r\nHost: a.allowed.test\r\nHost: refused.test\r\n\r\n", h) == -EINVAL, "two Host: headers are refused");
        ok(name_of("GET / HTTP/1.1\r\nX-Host: a.allowed.test\r\n\r\n", h) == -EINVAL, "no Host: header: refused");
        ok(name_of("GET / HTTP/1.1\r\nHost: refused.test@a.allowed.test\r\n\r\n", h) == -EINVAL, "a Host: with '@' is refused");
        ok(name_of("GET / HTTP/1.1\r\nHost: a.allowed.test\r\n", h) == -EAGAIN, "a head without its end needs more");
        memset(big, 'A', EGRESS_HEAD_MAX);
        ok(egress_peek_name((uint8_t *) big, EGRESS_HEAD_MAX, h, sizeof h) == -EINVAL, "an endless head is refused");

        static const char *const forbidden[] = { "127.0.0.1", "127.9.9.9", "0.0.0.0", "169.254.169.254", "10.231.0.1", "10.231.255.254",
                                                 "224.0.0.1", "255.255.255.255", "240.0.0.1" };
        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++) {
                struct in_addr a;
                inet_pton(AF_INET, forbidden[i], &a);
                ok(egress_addr_forbidden(a), "the proxy never connects to %s", forbidden[i]);
        }
        static const char *const fine[] = { "198.51.100.3", "10.232.0.1", "192.0.2.1", "8.8.8.8" };
        for (size_t i = 0; i < ELEMENTSOF(fine); i++) {
                struct in_addr a;
                inet_pton(AF_INET, fine[i], &a);
                ok(!egress_addr_forbidden(a), "%s may be connected to", fine[i]);
        }

        /* DNS */
        struct in_addr me;
        inet_pton(AF_INET, "10.231.0.21", &me);
        uint8_t q[512], out[600];
        static const uint8_t head[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        size_t ql = 0;
        memcpy(q, head, sizeof head), ql = sizeof head;
        static const uint8_t qname[] = "\1a\7allowed\4test";
        memcpy(q + ql, qname, sizeof qname), ql += sizeof qname; /* with its final 0 */
        q[ql++] = 0, q[ql++] = 1, q[ql++] = 0, q[ql++] = 1;
        char refused[256] = "";
        ssize_t k = egress_dns_answer(q, ql, allow, n, me, out, sizeof out, refused, sizeof refused);
        ok(k == (ssize_t) ql + 16 && out[0] == 0x12 && out[1] == 0x34 && (out[2] & 0x80) && (out[3] & 0xf) == 0 && out[7] == 1 &&
           memcmp(out + k - 4, &me.s_addr, 4) == 0 && !refused[0], "A of an allowed name: the proxy's address");
        q[ql - 3] = 28; /* AAAA */
        k = egress_dns_answer(q, ql, allow, n, me, out, sizeof out, refused, sizeof refused);
        ok(k == (ssize_t) ql && (out[3] & 0xf) == 0 && out[7] == 0, "AAAA of an allowed name: no data (no IPv6 here)");
        memcpy(q + sizeof head, "\7refused\4test\0\0\1\0\1", 18);
        k = egress_dns_answer(q, sizeof head + 18, allow, n, me, out, sizeof out, refused, sizeof refused);
        ok(k > 0 && (out[3] & 0xf) == 3 && out[7] == 0 && streq(refused, "refused.test"), "another name: NXDOMAIN, and it is reported");
        memcpy(q + sizeof head, "\xc0\x0c\0\1\0\1", 6);
        ok(egress_dns_answer(q, sizeof head + 6, allow, n, me, out, sizeof out, refused, sizeof refused) == -EINVAL, "a compression pointer in a query is refused");
        memcpy(q + sizeof head, "\x40", 1);
        ok(egress_dns_answer(q, sizeof head + 1, allow, n, me, out, sizeof out, refused, sizeof refused) == -EINVAL, "a label past the end is refused");
        ok(egress_dns_answer(q, 11, allow, n, me, out, sizeof out, refused, sizeof refused) == -EINVAL, "a short packet is refused");
        uint8_t resp[] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1 };
        ok(egress_dns_answer(resp, sizeof resp, allow, n, me, out, sizeof out, refused, sizeof refused) == -EINVAL, "a response is not answered (no loops)");
        free(big);
        free(r);
        return tap_done();
}
