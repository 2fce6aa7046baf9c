/* network.h: Mode=private's network, made by nspawn-cage itself (no
 * systemd-networkd needed on the host or in the closure): a veth pair, a /30
 * from NETWORK_POOL per cage, the cage's address and default route set from
 * the host inside the cage's network namespace, NAT and an input filter in
 * one nftables table per cage. Uses the ip(8) and nft(8) programs, run with
 * argv (never a shell); nspawn-cage.conf(5) [Network] says why and what. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "error.h"

/* 10.231.0.0/16 cut into /30s: .1 the host side, .2 the cage. */
#define NETWORK_POOL_BASE UINT32_C(0x0AE70000)
#define NETWORK_POOL_PREFIX 16
#define NETWORK_POOL_SLOTS 16384u
/* One file per slot in use, named by the slot, holding the cage's name;
 * created with O_EXCL, so concurrent starts never share a slot. */
#define NETWORK_LEASE_DIR "/run/nspawn-cage/network"
/* The egress proxy's ports on the host address (egress.h). */
#define NETWORK_EGRESS_PROXY_PORT 3128
#define NETWORK_EGRESS_TRANSPARENT_PORT 3129
#define NETWORK_EGRESS_DNS_PORT 53
/* The NFLOG group of a cage's nft drops (nflog.h): base + its lease slot
 * (32768-49151); each sends NETWORK_NFLOG_SNAPLEN bytes of the packet (an
 * IPv4 header and the ports), all of one cage's drop rules together at
 * most NETWORK_NFLOG_RATE, so a flood cannot fill the journal. */
#define NETWORK_NFLOG_GROUP_BASE 32768u
#define NETWORK_NFLOG_SNAPLEN 64
#define NETWORK_NFLOG_RATE "10/second burst 20 packets"
/* The host side of a cage's veth: "ncage-SLOT". */
#define NETWORK_IFNAME_PREFIX "ncage-"
/* The cage's side, as systemd-nspawn names it too. */
#define NETWORK_CAGE_IFNAME "host0"

typedef struct NetworkLease {
        unsigned slot;
        char ifname[IFNAMSIZ];
        char host_addr[16]; /* dotted quad, without prefix */
        char cage_addr[16];
        char subnet[20];    /* "10.231.x.y/30" */
} NetworkLease;

/* One [Network] Allow= entry. A name or "*." pattern: the egress proxy
 * connects to it on port, resolving it at each connection (egress.h). An
 * IPv4 literal: the cage may reach port (TCP and UDP) on it, forwarded. */
typedef struct NetworkAllow {
        char *host;   /* a name, "*.name" or an IPv4 literal, lower case */
        uint16_t port;
        char *where;  /* "FILE:LINE" of the entry, for messages */
        char **addrs; /* an IPv4 literal's dotted quad; NULL for names */
} NetworkAllow;

void network_allow_free_many(NetworkAllow *a, size_t n);

/* [Network] Publish=PORT:CAGEPORT (addr unused) and HostService=ADDR:PORT
 * (to_port == port): openings through the egress proxy. */
typedef struct NetworkPort {
        char addr[16];
        uint16_t port, to_port;
} NetworkPort;
typedef struct NetworkOpenings {
        const NetworkPort *publish, *host_services;
        size_t n_publish, n_host_services;
} NetworkOpenings;

/* The addresses of slot (< NETWORK_POOL_SLOTS). */
void network_lease_fill(unsigned slot, NetworkLease *ret);

/* Does any route of a /proc/net/route text (other than the default route)
 * overlap net/prefix (host byte order)? A pure function. */
bool network_routes_overlap(const char *proc_net_route, uint32_t net, unsigned prefix);

/* Take a free slot for cage name below lease_dir (NULL: NETWORK_LEASE_DIR):
 * first the one derived from the name, then the next ones; a slot is free
 * when its lease file can be created, no route of proc_net_route overlaps
 * it and no interface has its name. -EBUSY when none is. */
int network_lease_take(const char *lease_dir, const char *name, const char *proc_net_route, NetworkLease *ret);

/* The nftables ruleset of a cage (table "inet nspawn-cage-NAME"): masquerade
 * what leaves from its /30, drop what it sends to the host itself
 * (INPUT: the host's services on any address) and what it sends to
 * link-local (169.254.0.0/16: cloud metadata), loopback or other cages'
 * addresses or over IPv6; drop what local sockets of users other than
 * owner (the invoking user) and root send into it (OUTPUT), but replies. With an allowlist (n_allow > 0), nothing forwarded
 * from the cage but a set "allow" of the IPv4 literals' address . port;
 * with name rules, the cage's TCP to their ports and its DNS redirected
 * to the egress proxy on the host address, the one host service it
 * reaches. Drops of the cage's traffic count in counter "refused". A pure
 * function; -EINVAL for a name nft would read as syntax or an address
 * that is no IPv4 one. */
int network_nft_ruleset(const char *name, const NetworkLease *l, uid_t owner, const NetworkAllow *allow, size_t n_allow, char **ret);
/* The same with openings (NULL: none): the host services' ports on the
 * host address accepted from the cage (the proxy relays them); published
 * ports on 127.0.0.1 closed to local users but owner and root. */
int network_nft_ruleset_with(const char *name, const NetworkLease *l, uid_t owner, const NetworkAllow *allow, size_t n_allow,
                             const NetworkOpenings *o, char **ret);

/* The IPv4 addresses of host as the host resolves it now (getaddrinfo(3),
 * AF_INET; an IPv4 literal is itself), sorted, unique, at most 32. On
 * failure -ENOENT ("no such name", "no IPv4 address"), -EAGAIN (the
 * resolver failed for now) or -ENOMEM; *err: getaddrinfo's reason. */
int network_resolve_ipv4(const char *host, char ***ret, CageError *err);

/* The /etc/hosts lines pinning the resolved names of allow ("ADDR NAME\n"
 * each; IPv4 literals need none). A pure function. */
int network_allow_hosts(const NetworkAllow *allow, size_t n_allow, char **ret);

/* Wire up cage name whose init is leader: the veth (its cage end moved into
 * the leader's network namespace as host0), addresses, the cage's default
 * route, IPv4 forwarding on, the nftables table (with allow's set, if any;
 * owner: the only user but root whose sockets reach the cage). On failure what was made
 * stays for network_release to remove. ret_error: what failed, for the
 * caller's message. */
int network_setup(const char *name, const NetworkLease *l, uid_t owner, const NetworkAllow *allow, size_t n_allow, const NetworkOpenings *o,
                  pid_t leader, CageError *error);

/* Remove everything network_setup and network_lease_take made for cage
 * name: its nftables table, its host-side interface (gone by itself when
 * the cage's namespace dies) and its lease files. 0 also when there is
 * nothing. */
int network_release(const char *lease_dir, const char *name);

/* network_release for every lease whose cage exists no more (exists()
 * returns false for it). */
int network_gc(const char *lease_dir, bool (*exists)(const char *name, void *userdata), void *userdata,
               unsigned *ret_removed);

/* Where the host's resolvers are read, in order (systemd-resolved's list
 * of upstream servers first: the host's /etc/resolv.conf names its stub). */
#define NETWORK_HOST_RESOLV_CONFS "/run/systemd/resolve/resolv.conf:/etc/resolv.conf"

/* The nameserver lines of a resolv.conf text a cage in Mode=private can
 * use: IPv4 and not loopback (127.0.0.53, a host's local cache, is not
 * reachable from the cage). Returns a resolv.conf text: those lines, or a
 * comment saying why there are none. A pure function. */
int network_resolv_conf(const char *host_text, char **ret);

/* network_resolv_conf of the host's upstream servers: the first of paths
 * that exists and names a usable server (systemd-resolved's list of
 * upstream servers first, then /etc/resolv.conf). */
int network_resolv_conf_from(const char *const *paths, char **ret);
