/* egress.h: [Network] Allow= by name, enforced per connection: a proxy per
 * cage on the host side of its veth (HTTP CONNECT and plain HTTP for
 * clients that honour HTTPS_PROXY/HTTP_PROXY; TLS SNI or the HTTP Host
 * header for connections nft redirects to it), a DNS responder that
 * answers only allowed names, and the record of what it refused (the
 * journal). The parsers are pure functions, tested on hostile input. */
#pragma once

#include <systemd/sd-journal.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "network.h"
#include "user.h"

/* On the veth's host address: the proxy clients are told about, the port
 * nft redirects the cage's TCP to the ports of name rules, DNS. */
#define EGRESS_PROXY_PORT NETWORK_EGRESS_PROXY_PORT
#define EGRESS_TRANSPARENT_PORT NETWORK_EGRESS_TRANSPARENT_PORT
#define EGRESS_DNS_PORT NETWORK_EGRESS_DNS_PORT
/* A request's head (request line and headers, or a TLS ClientHello) is at
 * most this long, and must arrive within EGRESS_HEAD_TIMEOUT seconds. */
#define EGRESS_HEAD_MAX 16384
#define EGRESS_HEAD_TIMEOUT 20
/* Connections served at once (one process each); more are closed. */
#define EGRESS_MAX_CONNECTIONS 64
/* Its scope's limits (bus_start_scope). */
#define EGRESS_SCOPE_FMT "nspawn-cage-%s-egress.scope"
#define EGRESS_TASKS_MAX (EGRESS_MAX_CONNECTIONS + 8)
#define EGRESS_MEMORY_MAX (UINT64_C(256) << 20)
/* The journal's record of a refusal: SYSLOG_IDENTIFIER and the fields
 * `nspawn-cage denials` reads. */
#define EGRESS_LOG_IDENTIFIER "nspawn-cage-egress"
/* Written at start in the cage's state directory: the proxy variables for
 * the agent (read by every later shell too). */
#define EGRESS_ENVIRONMENT_FILE "egress-environment"

/* Does any name rule of allow (host a name or "*." pattern) exist? */
bool egress_has_names(const NetworkAllow *allow, size_t n_allow);

/* The rule of allow that lets host (lower case) on port, or -1. A name
 * rule matches a name; an IPv4 literal rule matches that literal. */
ssize_t egress_rule_find(const NetworkAllow *allow, size_t n_allow, const char *host, uint16_t port);
/* Does a rule of any port name host (for DNS answers)? */
bool egress_name_allowed(const NetworkAllow *allow, size_t n_allow, const char *host);

/* Normalise a host name the cage sent (SNI, Host:, CONNECT): lower case,
 * a valid DNS name or IPv4 address, no wildcard. -EINVAL otherwise. */
int egress_host_normalise(const char *in, size_t len, char *out, size_t size);

/* The head of a request to the proxy (buf, len bytes; not NUL-terminated).
 * Returns 0 and fills *ret when complete, -EAGAIN when more is needed,
 * -EINVAL when it is no request we serve. For "GET http://h:p/x HTTP/1.1"
 * ret->rewritten is the request line in origin form ("GET /x HTTP/1.1")
 * and ret->head_end where the original line ended. */
typedef struct EgressRequest {
        bool connect;
        char host[256];
        uint16_t port;
        size_t head_len;   /* the whole head, through the empty line */
        size_t line_len;   /* the request line, with its CRLF */
        char rewritten[EGRESS_HEAD_MAX];
} EgressRequest;
int egress_parse_request(const char *buf, size_t len, EgressRequest *ret);

/* The server name of a TLS ClientHello (SNI), or the Host: header of an
 * HTTP request, at the start of buf. 0 and the name; -EAGAIN: more bytes
 * needed; -EINVAL: neither, or no name in it. */
int egress_peek_name(const uint8_t *buf, size_t len, char *out, size_t size);

/* May the proxy connect to a (network byte order)? Never loopback,
 * link-local, the cages' pool, 0/8, multicast or reserved; the host's own
 * addresses are checked by the caller. */
bool egress_addr_forbidden(struct in_addr a);

/* A DNS answer to query (q, len) into out (size >= 512): A for an allowed
 * name (answer, TTL 5), no data for other types of an allowed name,
 * NXDOMAIN for others. Returns the length, -EINVAL for no query we
 * answer; *ret_refused: the name when it was refused. */
ssize_t egress_dns_answer(const uint8_t *q, size_t len, const NetworkAllow *allow, size_t n_allow, struct in_addr answer, uint8_t *out,
                          size_t size, char *ret_refused, size_t refused_size);

#define EGRESS_MAX_OPENINGS 16
typedef struct Egress {
        int fds[3];      /* proxy, transparent (TCP listeners), DNS (UDP) on the host address; -1 */
        int pub_fds[EGRESS_MAX_OPENINGS]; /* Publish=: on 127.0.0.1:PORT */
        int svc_fds[EGRESS_MAX_OPENINGS]; /* HostService=: on the host address, PORT */
        size_t n_pub, n_svc;
        int nflog_fd;    /* the cage's NFLOG group (nflog.h); -1 */
        pid_t pid;       /* the proxy, once forked */
        int go_fd;       /* until released */
} Egress;
#define EGRESS_NULL ((Egress) { .fds = { -1, -1, -1 }, .nflog_fd = -1, .pid = 0, .go_fd = -1 })
void egress_done(Egress *e);

/* Does a cage need the proxy: names in Allow=, Publish= or HostService=?
 * Without, the egress process of a private network only records its nft
 * drops. */
bool egress_needed(const NetworkAllow *allow, size_t n_allow, const NetworkOpenings *o);
/* As root: bind the cage's NFLOG group (l's slot) and, with proxy, the
 * sockets on l's host address (port 53) and the openings' (o: NULL for
 * none). */
int egress_open(const NetworkLease *l, bool proxy, const NetworkOpenings *o, Egress *e);
/* Fork the egress process as the user (u), with the sockets, the rules and a pidfd
 * of the cage's leader: it ends with the leader. It accepts nothing until
 * egress_release(), so the caller first moves it into its scope. */
int egress_fork(Egress *e, const HostUser *u, const char *cage, pid_t leader, const NetworkLease *l, const NetworkAllow *allow,
                size_t n_allow, const NetworkOpenings *o);
int egress_release(Egress *e);

/* The proxy variables for the agent: HTTPS_PROXY=http://ADDR:3128 and the
 * like, one per line. */
int egress_environment(const NetworkLease *l, char **ret);

/* One refusal as the journal has it. */
typedef struct EgressDenial {
        uint64_t usec; /* realtime */
        char *host, *port, *path, *rule;
} EgressDenial;
void egress_denials_free(EgressDenial *d, size_t n);
/* The refusals of cage name since since_usec (0: all), oldest first. */
int egress_denials_read(const char *name, uint64_t since_usec, EgressDenial **ret, size_t *ret_n);
/* The journal, at the refusals of cage name from since_usec (0: all). */
int egress_journal_open(const char *name, uint64_t since_usec, sd_journal **ret);
/* FIELD of the journal's current entry, "" if it has none. */
char *egress_journal_field(sd_journal *j, const char *field);
