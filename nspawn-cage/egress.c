/* egress.c: the per-cage egress proxy (egress.h). What the cage sends it is
 * hostile input: every head is bounded in size and time, every name is
 * checked against the rules before it is resolved, and every address it
 * resolves to is checked before it is connected to. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netlink.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "egress.h"
#include "helperproc.h"
#include "nflog.h"
#include "util.h"
#include "validate.h"

bool egress_has_names(const NetworkAllow *allow, size_t n_allow) {
        for (size_t i = 0; i < n_allow; i++)
                if (allow_host_is_name(allow[i].host))
                        return true;
        return false;
}

ssize_t egress_rule_find(const NetworkAllow *allow, size_t n_allow, const char *host, uint16_t port) {
        for (size_t i = 0; i < n_allow; i++)
                if (allow[i].port == port && allow_pattern_match(allow[i].host, host))
                        return (ssize_t) i;
        return -1;
}

bool egress_name_allowed(const NetworkAllow *allow, size_t n_allow, const char *host) {
        for (size_t i = 0; i < n_allow; i++)
                if (allow_host_is_name(allow[i].host) && allow_pattern_match(allow[i].host, host))
                        return true;
        return false;
}

int egress_host_normalise(const char *in, size_t len, char *out, size_t size) {
        if (len == 0 || len > 253 || len + 1 > size)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) in[i];
                if (!isalnum(c) && c != '-' && c != '.' && c != '_')
                        return -EINVAL; /* NUL, '*', '@', ':', '%', spaces: never part of a name we match */
                out[i] = (char) tolower(c);
        }
        out[len] = 0;
        /* allow_entry_parse checks labels, lengths and addresses. */
        _cleanup_free_ char *entry = strdup_printf("%s:1", out), *host = NULL;
        _cleanup_(cage_error_done) CageError e = {};
        uint16_t port;
        if (!entry)
                return -ENOMEM;
        return allow_entry_parse(entry, &host, &port, &e) < 0 ? -EINVAL : 0;
}

/* "host[:port]" of length len into host and *port (default_port if none). */
static int split_authority(const char *s, size_t len, uint16_t default_port, char *host, size_t size, uint16_t *port) {
        const char *colon = memchr(s, ':', len);
        size_t hl = colon ? (size_t) (colon - s) : len;
        unsigned long p = default_port;
        if (colon) {
                const char *d = colon + 1, *end = s + len;
                if (d == end || end - d > 5)
                        return -EINVAL;
                p = 0;
                for (; d < end; d++) {
                        if (!isdigit((unsigned char) *d))
                                return -EINVAL;
                        p = p * 10 + (unsigned long) (*d - '0');
                }
                if (p == 0 || p > 65535)
                        return -EINVAL;
        }
        if (egress_host_normalise(s, hl, host, size) < 0)
                return -EINVAL;
        *port = (uint16_t) p;
        return 0;
}

static const char *find_crlf2(const char *buf, size_t len) {
        for (size_t i = 0; i + 3 < len; i++)
                if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
                        return buf + i;
        return NULL;
}

int egress_parse_request(const char *buf, size_t len, EgressRequest *ret) {
        const char *end = find_crlf2(buf, len);
        if (!end)
                return len >= EGRESS_HEAD_MAX ? -EINVAL : -EAGAIN;
        const char *eol = memchr(buf, '\r', (size_t) (end - buf) + 1);
        size_t ll = (size_t) (eol - buf);
        /* METHOD SP TARGET SP HTTP/1.x, printable ASCII only */
        for (size_t i = 0; i < ll; i++)
                if (buf[i] < 0x21 && buf[i] != ' ')
                        return -EINVAL;
        const char *sp1 = memchr(buf, ' ', ll), *sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t) (sp1 + 1 - buf)) : NULL;
        if (!sp1 || !sp2 || sp1 == buf || sp2 == sp1 + 1 || memchr(sp2 + 1, ' ', ll - (size_t) (sp2 + 1 - buf)) ||
            (size_t) (buf + ll - (sp2 + 1)) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
                return -EINVAL;
        const char *target = sp1 + 1;
        size_t tl = (size_t) (sp2 - target), ml = (size_t) (sp1 - buf);
        EgressRequest r = { .head_len = (size_t) (end - buf) + 4, .line_len = ll + 2 };
        if (ml == 7 && strncmp(buf, "CONNECT", 7) == 0) {
                r.connect = true;
                if (split_authority(target, tl, 0, r.host, sizeof r.host, &r.port) < 0 || r.port == 0)
                        return -EINVAL;
        } else {
                static const char scheme[] = "http://";
                if (tl < sizeof scheme || strncmp(target, scheme, sizeof scheme - 1) != 0)
                        return -EINVAL; /* https:// goes through CONNECT; origin form is not for a proxy */
                const char *auth = target + sizeof scheme - 1, *tend = target + tl;
                const char *path = auth;
                while (path < tend && *path != '/' && *path != '?' && *path != '#')
                        path++;
                if (memchr(auth, '@', (size_t) (path - auth)))
                        return -EINVAL; /* user info: the name after it would be the real one */
                if (split_authority(auth, (size_t) (path - auth), 80, r.host, sizeof r.host, &r.port) < 0)
                        return -EINVAL;
                int n = snprintf(r.rewritten, sizeof r.rewritten, "%.*s %s%.*s HTTP/1.%c\r\n", (int) ml, buf, path == tend ? "/" : "",
                                 (int) (tend - path), path, sp2[8]);
                if (n < 0 || (size_t) n >= sizeof r.rewritten)
                        return -EINVAL;
        }
        *ret = r;
        return 0;
}

/* The SNI of a TLS record holding a ClientHello. */
static int tls_sni(const uint8_t *b, size_t len, char *out, size_t size) {
        if (len < 5)
                return -EAGAIN;
        if (b[0] != 0x16 || b[1] != 3)
                return -EINVAL;
        size_t rec = (size_t) b[3] << 8 | b[4];
        if (rec < 4 || rec > EGRESS_HEAD_MAX - 5)
                return -EINVAL;
        if (len < 5 + rec)
                return -EAGAIN;
        const uint8_t *p = b + 5, *end = b + 5 + rec;
        if (p[0] != 1)
                return -EINVAL; /* not a ClientHello */
        size_t hl = (size_t) p[1] << 16 | (size_t) p[2] << 8 | p[3];
        p += 4;
        if (hl > (size_t) (end - p))
                return -EINVAL; /* a ClientHello over several records: not served */
        end = p + hl;
#define NEED(n) do { if ((size_t) (end - p) < (size_t) (n)) return -EINVAL; } while (0)
        NEED(2 + 32 + 1);
        p += 2 + 32;
        size_t sid = *p++;
        NEED(sid + 2);
        p += sid;
        size_t cs = (size_t) p[0] << 8 | p[1];
        p += 2;
        NEED(cs + 1);
        p += cs;
        size_t cm = *p++;
        NEED(cm + 2);
        p += cm;
        size_t ext = (size_t) p[0] << 8 | p[1];
        p += 2;
        NEED(ext);
        end = p + ext;
        while ((size_t) (end - p) >= 4) {
                unsigned type = (unsigned) p[0] << 8 | p[1];
                size_t el = (size_t) p[2] << 8 | p[3];
                p += 4;
                NEED(el);
                if (type == 0) { /* server_name: list length, then (type 0, length, name) */
                        const uint8_t *q = p, *qend = p + el;
                        if (el < 2)
                                return -EINVAL;
                        q += 2;
                        if ((size_t) (qend - q) < 3 || q[0] != 0)
                                return -EINVAL;
                        size_t nl = (size_t) q[1] << 8 | q[2];
                        q += 3;
                        if (nl > (size_t) (qend - q))
                                return -EINVAL;
                        return egress_host_normalise((const char *) q, nl, out, size);
                }
                p += el;
        }
#undef NEED
        return -EINVAL; /* no SNI: no name to check */
}

/* The Host: header of an HTTP request head. */
static int http_host(const char *b, size_t len, char *out, size_t size) {
        const char *end = find_crlf2(b, len);
        if (!end)
                return len >= EGRESS_HEAD_MAX ? -EINVAL : -EAGAIN;
        const char *found = NULL;
        size_t fl = 0;
        for (const char *line = memchr(b, '\n', (size_t) (end - b)); line && line < end; line = memchr(line, '\n', (size_t) (end + 2 - line))) {
                line++;
                const char *eol = memchr(line, '\r', (size_t) (end + 2 - line));
                if (!eol)
                        break;
                if ((size_t) (eol - line) > 5 && strncasecmp(line, "host:", 5) == 0) {
                        if (found)
                                return -EINVAL; /* two Host: headers: which one would the server take? */
                        found = line + 5;
                        while (found < eol && (*found == ' ' || *found == '\t'))
                                found++;
                        fl = (size_t) (eol - found);
                        while (fl > 0 && (found[fl - 1] == ' ' || found[fl - 1] == '\t'))
                                fl--;
                }
                if (eol >= end)
                        break;
        }
        if (!found)
                return -EINVAL;
        char host[256];
        uint16_t port;
        if (split_authority(found, fl, 80, host, sizeof host, &port) < 0 || strlen(host) + 1 > size)
                return -EINVAL;
        strcpy(out, host);
        return 0;
}

int egress_peek_name(const uint8_t *buf, size_t len, char *out, size_t size) {
        if (len == 0)
                return -EAGAIN;
        return buf[0] == 0x16 ? tls_sni(buf, len, out, size) : http_host((const char *) buf, len, out, size);
}

bool egress_addr_forbidden(struct in_addr a) {
        uint32_t h = ntohl(a.s_addr);
        return (h >> 24) == 0 || (h >> 24) == 127 || (h >> 16) == 0xA9FE /* 169.254/16 */ ||
               (h & ~((UINT32_C(1) << (32 - NETWORK_POOL_PREFIX)) - 1)) == NETWORK_POOL_BASE || (h >> 28) >= 0xE /* 224/4, 240/4 */;
}

/* Is a one of this host's own addresses (its services listen there)? */
static bool addr_is_local(struct in_addr a) {
        struct ifaddrs *ifa = NULL;
        bool found = false;
        if (getifaddrs(&ifa) < 0)
                return true; /* cannot tell: refuse */
        for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next)
                found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET && ((struct sockaddr_in *) i->ifa_addr)->sin_addr.s_addr == a.s_addr;
        freeifaddrs(ifa);
        return found;
}

ssize_t egress_dns_answer(const uint8_t *q, size_t len, const NetworkAllow *allow, size_t n_allow, struct in_addr answer, uint8_t *out,
                          size_t size, char *ret_refused, size_t refused_size) {
        if (len < 12 || len > 512 || size < 512 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
                return -EINVAL; /* one question, a query */
        char name[256];
        size_t nl = 0, p = 12;
        for (;;) {
                if (p >= len)
                        return -EINVAL;
                size_t l = q[p++];
                if (l == 0)
                        break;
                if (l > 63 || p + l > len || nl + l + 1 >= sizeof name)
                        return -EINVAL; /* compression pointers too: no question has them */
                if (nl)
                        name[nl++] = '.';
                memcpy(name + nl, q + p, l);
                nl += l;
                p += l;
        }
        if (p + 4 > len)
                return -EINVAL;
        unsigned qtype = (unsigned) q[p] << 8 | q[p + 1], qclass = (unsigned) q[p + 2] << 8 | q[p + 3];
        size_t qend = p + 4;
        char host[256];
        bool ok = nl > 0 && egress_host_normalise(name, nl, host, sizeof host) == 0 && egress_name_allowed(allow, n_allow, host);
        memcpy(out, q, qend);
        out[2] = (uint8_t) (0x80 | (q[2] & 0x79)); /* QR, opcode, RD */
        out[3] = 0x80;                             /* RA */
        memset(out + 6, 0, 6);                     /* no answer, authority, additional records yet */
        if ((q[2] & 0x78) != 0) {
                out[3] |= 4; /* NOTIMP: only standard queries */
                return (ssize_t) qend;
        }
        if (!ok) {
                out[3] |= 3; /* NXDOMAIN */
                if (ret_refused && refused_size > 0)
                        snprintf(ret_refused, refused_size, "%.*s", (int) (nl < 253 ? nl : 253), nl ? name : ".");
                return (ssize_t) qend;
        }
        if (qtype != 1 || qclass != 1)
                return (ssize_t) qend; /* an allowed name, no data of that type (AAAA: this cage has no IPv6) */
        static const uint8_t rr[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4 };
        memcpy(out + qend, rr, sizeof rr);
        memcpy(out + qend + sizeof rr, &answer.s_addr, 4);
        out[7] = 1;
        return (ssize_t) (qend + sizeof rr + 4);
}

bool egress_needed(const NetworkAllow *allow, size_t n_allow, const NetworkOpenings *o) {
        return egress_has_names(allow, n_allow) || (o && (o->n_publish > 0 || o->n_host_services > 0));
}

void egress_done(Egress *e) {
        for (size_t i = 0; i < ELEMENTSOF(e->fds); i++)
                if (e->fds[i] >= 0)
                        close(e->fds[i]);
        for (size_t i = 0; i < e->n_pub; i++)
                close(e->pub_fds[i]);
        for (size_t i = 0; i < e->n_svc; i++)
                close(e->svc_fds[i]);
        if (e->nflog_fd >= 0)
                close(e->nflog_fd);
        helper_proc_abandon(e->pid, &e->go_fd);
        *e = EGRESS_NULL;
}

static int bind_on(int type, const char *addr, uint16_t port, int *ret) {
        _cleanup_close_ int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        int one = 1;
        if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                return fd < 0 ? -errno : -EINVAL;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            (type == SOCK_STREAM && listen(fd, 64) < 0))
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

int egress_open(const NetworkLease *l, bool proxy, const NetworkOpenings *o, Egress *e) {
        int r;
        if ((r = nflog_open(nflog_group(l->slot), &e->nflog_fd)) < 0)
                return r;
        if (!proxy)
                return 0;
        if ((r = bind_on(SOCK_STREAM, l->host_addr, EGRESS_PROXY_PORT, &e->fds[0])) < 0 ||
            (r = bind_on(SOCK_STREAM, l->host_addr, EGRESS_TRANSPARENT_PORT, &e->fds[1])) < 0 ||
            (r = bind_on(SOCK_DGRAM, l->host_addr, EGRESS_DNS_PORT, &e->fds[2])) < 0)
                return r;
        for (size_t i = 0; o && i < o->n_publish && i < EGRESS_MAX_OPENINGS; i++) {
                if ((r = bind_on(SOCK_STREAM, "127.0.0.1", o->publish[i].port, &e->pub_fds[i])) < 0)
                        return r;
                e->n_pub++;
        }
        for (size_t i = 0; o && i < o->n_host_services && i < EGRESS_MAX_OPENINGS; i++) {
                if ((r = bind_on(SOCK_STREAM, l->host_addr, o->host_services[i].port, &e->svc_fds[i])) < 0)
                        return r;
                e->n_svc++;
        }
        return 0;
}

int egress_environment(const NetworkLease *l, char **ret) {
        char *t = strdup_printf("HTTPS_PROXY=http://%1$s:%2$u\nHTTP_PROXY=http://%1$s:%2$u\nhttps_proxy=http://%1$s:%2$u\n"
                                "http_proxy=http://%1$s:%2$u\nNO_PROXY=localhost,127.0.0.1,nspawn-cage-host,%1$s\n"
                                "no_proxy=localhost,127.0.0.1,nspawn-cage-host,%1$s\n",
                                l->host_addr, (unsigned) EGRESS_PROXY_PORT);
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

/* ---- the proxy process ---- */

typedef struct Proxy {
        const char *cage;
        uid_t uid;
        const NetworkAllow *allow;
        size_t n_allow;
        struct in_addr host_addr, cage_addr;
        const NetworkOpenings *o; /* fds: publish from 6, then the host services */
        bool listening;           /* fds 3-5: the proxy's, transparent and DNS sockets */
        int nflog_fd;             /* after the openings' */
        int pidfd;                /* the leader's, last */
        uint16_t group;
} Proxy;

_Noreturn static void relay(int a, int b);

/* Publish= and HostService=: a fixed destination, no name to check. */
_Noreturn static void serve_opening(int c, struct in_addr to, uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = to };
        int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        alarm(EGRESS_HEAD_TIMEOUT);
        if (u < 0 || connect(u, (struct sockaddr *) &sa, sizeof sa) < 0)
                _exit(0);
        relay(c, u);
}

static void log_refused(const Proxy *p, const char *path, const char *host, unsigned port, const char *rule) {
        sd_journal_send("MESSAGE=cage %s: refused %s:%u (%s): %s", p->cage, host, port, path, rule, "PRIORITY=%d", LOG_WARNING,
                        "SYSLOG_IDENTIFIER=" EGRESS_LOG_IDENTIFIER, "NSPAWN_CAGE_MACHINE=%s", p->cage, "NSPAWN_CAGE_UID=%u", (unsigned) p->uid,
                        "DENIED_HOST=%s", host, "DENIED_PORT=%u", port, "DENIED_PATH=%s", path, "RULE=%s", rule, NULL);
}

static bool write_all(int fd, const void *b, size_t n) {
        const char *p = b;
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                p += k;
                n -= (size_t) k;
        }
        return true;
}

/* Connect to host:port for rule i: resolved now, each address checked.
 * Returns the socket, or -EPERM (*why set) / -errno. */
static int connect_upstream(const char *host, uint16_t port, char *why, size_t why_size) {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
        char ps[8];
        snprintf(ps, sizeof ps, "%u", (unsigned) port);
        int g = getaddrinfo(host, ps, &hints, &res);
        if (g != 0)
                return -EHOSTUNREACH;
        int fd = -1, forbidden = 0, tried = 0;
        char first[INET_ADDRSTRLEN] = "";
        for (struct addrinfo *ai = res; ai && fd < 0 && tried < 8; ai = ai->ai_next) {
                struct in_addr a = ((struct sockaddr_in *) ai->ai_addr)->sin_addr;
                if (egress_addr_forbidden(a) || addr_is_local(a)) {
                        if (!forbidden++)
                                inet_ntop(AF_INET, &a, first, sizeof first);
                        continue;
                }
                tried++;
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                        close(fd);
                        fd = -1;
                }
        }
        freeaddrinfo(res);
        if (fd < 0 && forbidden && !tried) {
                snprintf(why, why_size, "%s resolves to %s, an address of the host or of no network a cage may reach", host, first);
                return -EPERM;
        }
        return fd >= 0 ? fd : -EHOSTUNREACH;
}

/* Both ways until both have ended; buffers of EGRESS_HEAD_MAX. */
_Noreturn static void relay(int a, int b) {
        static char buf[2][EGRESS_HEAD_MAX];
        size_t len[2] = {}, off[2] = {};
        bool eof[2] = {};
        int fd[2] = { a, b };
        alarm(0);
        for (;;) {
                struct pollfd p[2];
                for (int i = 0; i < 2; i++)
                        p[i] = (struct pollfd) { .fd = fd[i], .events = (short) ((!eof[i] && len[i] == 0 ? POLLIN : 0) | (len[1 - i] ? POLLOUT : 0)) };
                if (eof[0] && eof[1] && !len[0] && !len[1])
                        _exit(0);
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                for (int i = 0; i < 2; i++) {
                        if ((p[i].revents & POLLOUT) && len[1 - i]) {
                                ssize_t k = send(fd[i], buf[1 - i] + off[1 - i], len[1 - i], MSG_NOSIGNAL);
                                if (k <= 0 && errno != EINTR && errno != EAGAIN)
                                        _exit(0);
                                if (k > 0) {
                                        off[1 - i] += (size_t) k;
                                        len[1 - i] -= (size_t) k;
                                        if (!len[1 - i] && eof[1 - i])
                                                (void) shutdown(fd[i], SHUT_WR);
                                }
                        }
                        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) && !eof[i] && !len[i]) {
                                ssize_t k = recv(fd[i], buf[i], sizeof buf[i], 0);
                                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                                        continue;
                                if (k < 0)
                                        _exit(0);
                                if (k == 0) {
                                        eof[i] = true;
                                        (void) shutdown(fd[1 - i], SHUT_WR);
                                } else {
                                        off[i] = 0;
                                        len[i] = (size_t) k;
                                }
                        }
                }
        }
}

static const char *refusal_page(void) {
        return "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
               "nspawn-cage: this destination is not in the cage's [Network] Allow= list\r\n";
}

/* One connection, in its own process: transparent (nft redirected it) or
 * to the proxy. */
_Noreturn static void serve(const Proxy *p, int c, bool transparent) {
        static char buf[EGRESS_HEAD_MAX];
        size_t len = 0;
        char host[256], why[512] = "";
        uint16_t port = 0;
        EgressRequest *req = transparent ? NULL : calloc(1, sizeof *req);
        const char *path = transparent ? "transparent" : "proxy";
        alarm(EGRESS_HEAD_TIMEOUT);
        if (transparent) {
                struct sockaddr_in orig;
                socklen_t ol = sizeof orig;
                if (getsockopt(c, SOL_IP, SO_ORIGINAL_DST, &orig, &ol) < 0)
                        _exit(1);
                port = ntohs(orig.sin_port);
        } else if (!req)
                _exit(1);
        for (;;) {
                ssize_t k = recv(c, buf + len, sizeof buf - len, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        _exit(0);
                len += (size_t) k;
                int r = transparent ? egress_peek_name((uint8_t *) buf, len, host, sizeof host) : egress_parse_request(buf, len, req);
                if (r == -EAGAIN && len < sizeof buf)
                        continue;
                if (r < 0) {
                        log_refused(p, path, "?", port, transparent ? "neither a TLS ClientHello with a server name nor an HTTP request with one Host: header"
                                                                     : "not an HTTP proxy request (CONNECT host:port, or an absolute http:// URL)");
                        if (!transparent)
                                (void) write_all(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n", 47);
                        _exit(0);
                }
                break;
        }
        if (!transparent) {
                snprintf(host, sizeof host, "%s", req->host);
                port = req->port;
        }
        if (egress_rule_find(p->allow, p->n_allow, host, port) < 0) {
                log_refused(p, path, host, port, "no Allow= entry matches");
                if (!transparent)
                        (void) write_all(c, refusal_page(), strlen(refusal_page()));
                _exit(0);
        }
        int u = connect_upstream(host, port, why, sizeof why);
        if (u == -EPERM) {
                log_refused(p, path, host, port, why);
                if (!transparent)
                        (void) write_all(c, refusal_page(), strlen(refusal_page()));
                _exit(0);
        }
        if (u < 0) {
                if (!transparent)
                        (void) write_all(c, "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n", 47);
                _exit(0);
        }
        bool ok;
        if (transparent)
                ok = write_all(u, buf, len);
        else if (req->connect)
                ok = write_all(c, "HTTP/1.1 200 Connection established\r\n\r\n", 39) && write_all(u, buf + req->head_len, len - req->head_len);
        else
                ok = write_all(u, req->rewritten, strlen(req->rewritten)) && write_all(u, buf + req->line_len, len - req->line_len);
        if (!ok)
                _exit(0);
        relay(c, u);
}

static void answer_dns(const Proxy *p, int fd) {
        uint8_t q[512], a[600];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        char refused[256] = "";
        ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *) &from, &fl);
        if (n <= 0)
                return;
        ssize_t k = egress_dns_answer(q, (size_t) n, p->allow, p->n_allow, p->host_addr, a, sizeof a, refused, sizeof refused);
        if (k <= 0)
                return;
        if (refused[0])
                log_refused(p, "dns", refused, 53, "no Allow= entry names it");
        (void) sendto(fd, a, (size_t) k, MSG_DONTWAIT, (struct sockaddr *) &from, fl);
}

/* The cage's nft drops, from its NFLOG group (nflog.h): the kernel copies
 * the cage's packet, read as hostile input. */
static void record_drops(const Proxy *p, bool *lost_logged) {
        union {
                uint8_t b[4096];
                struct nlmsghdr align;
        } m;
        struct sockaddr_nl from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(p->nflog_fd, m.b, sizeof m.b, MSG_DONTWAIT, (struct sockaddr *) &from, &fl);
        if (n < 0 && errno == ENOBUFS && !*lost_logged) {
                sd_journal_print(LOG_WARNING, "nspawn-cage: cage %s: some dropped packets came faster than they could be recorded "
                                 "(logged once)", p->cage);
                *lost_logged = true;
        }
        if (n <= 0 || fl < sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0)
                return; /* only the kernel's */
        NflogPacket pk[16];
        size_t k = nflog_parse(m.b, (size_t) n, p->group, pk, ELEMENTSOF(pk));
        for (size_t i = 0; i < k; i++) {
                char addr[INET_ADDRSTRLEN], num[8];
                const char *proto = nflog_proto_name(pk[i].proto, num, sizeof num);
                const char *rule = pk[i].hook == 1 ? "nft-drop: the host is not the cage's to reach" : "nft-drop: no Allow= entry matches";
                inet_ntop(AF_INET, &pk[i].daddr, addr, sizeof addr);
                sd_journal_send("MESSAGE=cage %s: dropped %s %s:%u: %s", p->cage, proto, addr, (unsigned) pk[i].dport, rule,
                                "PRIORITY=%d", LOG_WARNING, "SYSLOG_IDENTIFIER=" EGRESS_LOG_IDENTIFIER, "NSPAWN_CAGE_MACHINE=%s", p->cage,
                                "NSPAWN_CAGE_UID=%u", (unsigned) p->uid, "DENIED_HOST=%s", addr, "DENIED_PORT=%u", (unsigned) pk[i].dport,
                                "DENIED_PATH=nft", "PROTO=%s", proto, "RULE=%s", rule, NULL);
        }
}

/* fds: 3 proxy, 4 transparent, 5 DNS (closed when !listening), from 6 the
 * openings' listeners, then the NFLOG socket, then the leader's pidfd. */
_Noreturn static void proxy_loop(const Proxy *p) {
        unsigned children = 0;
        bool logged = false, lost_logged = false;
        size_t n_open = p->o->n_publish + p->o->n_host_services;
        int l3 = p->listening ? 3 : -1; /* poll ignores negative fds */
        for (;;) {
                while (children > 0 && waitpid(-1, NULL, WNOHANG) > 0)
                        children--;
                struct pollfd f[5 + 2 * EGRESS_MAX_OPENINGS] = { { .fd = l3, .events = POLLIN }, { .fd = l3 < 0 ? -1 : 4, .events = POLLIN },
                                                                  { .fd = l3 < 0 ? -1 : 5, .events = POLLIN }, { .fd = p->pidfd, .events = POLLIN } };
                for (size_t i = 0; i < n_open; i++)
                        f[4 + i] = (struct pollfd) { .fd = (int) (6 + i), .events = POLLIN };
                f[4 + n_open] = (struct pollfd) { .fd = p->nflog_fd, .events = POLLIN };
                if (poll(f, 5 + n_open, children > 0 ? 200 : -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                if (f[4 + n_open].revents) /* first: the cage's last packets are recorded */
                        record_drops(p, &lost_logged);
                if (f[3].revents)
                        _exit(0); /* the cage's leader is gone */
                if (f[2].revents & POLLIN)
                        answer_dns(p, 5);
                for (size_t i = 0; i < 2 + n_open; i++) {
                        int lfd = i < 2 ? (int) (3 + i) : (int) (6 + i - 2);
                        if (!(f[i < 2 ? i : i + 2].revents & POLLIN))
                                continue;
                        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                        if (c < 0)
                                continue;
                        if (children >= EGRESS_MAX_CONNECTIONS) {
                                if (!logged)
                                        sd_journal_print(LOG_WARNING, "nspawn-cage: cage %s holds %d connections through its egress proxy: "
                                                         "further ones are closed until one ends (logged once)", p->cage, EGRESS_MAX_CONNECTIONS);
                                logged = true;
                                close(c);
                                continue;
                        }
                        pid_t pid = fork();
                        if (pid == 0) {
                                for (int k = 3; k <= 5; k++)
                                        close(k);
                                close(p->nflog_fd);
                                close(p->pidfd);
                                for (size_t k = 0; k < n_open; k++)
                                        close((int) (6 + k));
                                if (i < 2)
                                        serve(p, c, i == 1);
                                size_t k = i - 2;
                                if (k < p->o->n_publish)
                                        serve_opening(c, p->cage_addr, p->o->publish[k].to_port);
                                struct in_addr to;
                                if (inet_pton(AF_INET, p->o->host_services[k - p->o->n_publish].addr, &to) != 1)
                                        _exit(1);
                                serve_opening(c, to, p->o->host_services[k - p->o->n_publish].port);
                        }
                        close(c);
                        if (pid > 0)
                                children++;
                }
        }
}

int egress_fork(Egress *e, const HostUser *u, const char *cage, pid_t leader, const NetworkLease *l, const NetworkAllow *allow,
                size_t n_allow, const NetworkOpenings *o) {
        static const NetworkOpenings no_openings = {};
        o = o ? o : &no_openings;
        /* 3-5 the listeners (/dev/null without the proxy, closed then),
         * from 6 the openings', then the NFLOG socket, then the leader's
         * pidfd: as proxy_loop() wants them. */
        bool listening = e->fds[0] >= 0;
        int fds[4 + 2 * EGRESS_MAX_OPENINGS];
        size_t n = 0;
        for (int i = 0; i < 3; i++)
                fds[n++] = e->fds[i];
        for (size_t i = 0; i < e->n_pub; i++)
                fds[n++] = e->pub_fds[i];
        for (size_t i = 0; i < e->n_svc; i++)
                fds[n++] = e->svc_fds[i];
        int nflog_fd = (int) (3 + n);
        fds[n++] = e->nflog_fd;
        int r = helper_proc_fork(u, leader, fds, n, "nspawn-cage-egr", &e->pid, &e->go_fd);
        if (r != 0)
                return r < 0 ? r : 0;
        for (int k = 3; !listening && k <= 5; k++)
                close(k);
        for (int k = listening ? 3 : 6; k < nflog_fd; k++)
                (void) fcntl(k, F_SETFL, fcntl(k, F_GETFL) & ~O_NONBLOCK);
        Proxy p = { .cage = cage, .uid = u->uid, .allow = allow, .n_allow = n_allow, .o = o, .listening = listening, .nflog_fd = nflog_fd, .pidfd = (int) (3 + n),
                    .group = nflog_group(l->slot) };
        if (inet_pton(AF_INET, l->host_addr, &p.host_addr) != 1 || inet_pton(AF_INET, l->cage_addr, &p.cage_addr) != 1)
                _exit(1);
        proxy_loop(&p);
}

int egress_release(Egress *e) {
        return helper_proc_release(&e->go_fd);
}

void egress_denials_free(EgressDenial *d, size_t n) {
        for (size_t i = 0; d && i < n; i++) {
                free(d[i].host);
                free(d[i].port);
                free(d[i].path);
                free(d[i].rule);
        }
        free(d);
}

char *egress_journal_field(sd_journal *j, const char *field) {
        const void *data;
        size_t len, fl = strlen(field);
        if (sd_journal_get_data(j, field, &data, &len) < 0 || len <= fl + 1)
                return strdup("");
        return strndup((const char *) data + fl + 1, len - fl - 1);
}

int egress_journal_open(const char *name, uint64_t since_usec, sd_journal **ret) {
        sd_journal *j = NULL;
        int r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return r;
        _cleanup_free_ char *m = strdup_printf("NSPAWN_CAGE_MACHINE=%s", name);
        if (!m || (r = sd_journal_add_match(j, m, 0)) < 0 ||
            (r = sd_journal_add_match(j, "SYSLOG_IDENTIFIER=" EGRESS_LOG_IDENTIFIER, 0)) < 0 ||
            (r = since_usec ? sd_journal_seek_realtime_usec(j, since_usec) : sd_journal_seek_head(j)) < 0) {
                sd_journal_close(j);
                return m ? r : -ENOMEM;
        }
        *ret = j;
        return 0;
}

int egress_denials_read(const char *name, uint64_t since_usec, EgressDenial **ret, size_t *ret_n) {
        sd_journal *j = NULL;
        int r = egress_journal_open(name, since_usec, &j);
        if (r < 0)
                return r;
        EgressDenial *d = NULL;
        size_t n = 0;
        while ((r = sd_journal_next(j)) > 0) {
                uint64_t t = 0;
                (void) sd_journal_get_realtime_usec(j, &t);
                if (t < since_usec)
                        continue;
                EgressDenial *nd = realloc(d, (n + 1) * sizeof *d);
                if (!nd) {
                        r = -ENOMEM;
                        break;
                }
                d = nd;
                d[n++] = (EgressDenial) { .usec = t, .host = egress_journal_field(j, "DENIED_HOST"), .port = egress_journal_field(j, "DENIED_PORT"),
                                          .path = egress_journal_field(j, "DENIED_PATH"), .rule = egress_journal_field(j, "RULE") };
        }
        sd_journal_close(j);
        if (r < 0) {
                egress_denials_free(d, n);
                return r;
        }
        *ret = d;
        *ret_n = n;
        return 0;
}
