/* network.c: Mode=private, host side: a /30 lease per cage, the veth pair
 * and addresses (ip(8), the cage's side run inside its network namespace),
 * NAT and filtering (one nft(8) table per cage). Tools are run through
 * tools.h: by the absolute path configure fixed, with argv, never a shell. */
#include "autoconfig.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "network.h"
#include "tools.h"
#include "util.h"

void network_allow_free_many(NetworkAllow *a, size_t n) {
        for (size_t i = 0; a && i < n; i++) {
                free(a[i].host);
                free(a[i].where);
                strv_free(a[i].addrs);
        }
        free(a);
}

void network_lease_fill(unsigned slot, NetworkLease *ret) {
        uint32_t net = NETWORK_POOL_BASE + slot * 4;
        struct in_addr a;
        *ret = (NetworkLease) { .slot = slot };
        snprintf(ret->ifname, sizeof ret->ifname, NETWORK_IFNAME_PREFIX "%u", slot);
        a.s_addr = htonl(net + 1);
        inet_ntop(AF_INET, &a, ret->host_addr, sizeof ret->host_addr);
        a.s_addr = htonl(net + 2);
        inet_ntop(AF_INET, &a, ret->cage_addr, sizeof ret->cage_addr);
        a.s_addr = htonl(net);
        char n[16];
        inet_ntop(AF_INET, &a, n, sizeof n);
        snprintf(ret->subnet, sizeof ret->subnet, "%s/30", n);
}

static uint32_t prefix_mask(unsigned prefix) { return prefix == 0 ? 0 : UINT32_MAX << (32 - prefix); }

bool network_routes_overlap(const char *text, uint32_t net, unsigned prefix) {
        /* Iface Destination Gateway Flags RefCnt Use Metric Mask ...; the
         * addresses in hex, in network byte order as the kernel stores them. */
        const char *line = text ? strchr(text, '\n') : NULL; /* skip the header */
        while (line && *++line) {
                char iface[64];
                unsigned dest, gw, flags, mask;
                if (sscanf(line, "%63s %x %x %x %*d %*d %*d %x", iface, &dest, &gw, &flags, &mask) == 5) {
                        uint32_t d = ntohl(dest), m = ntohl(mask);
                        if (m != 0) { /* the default route overlaps everything and is no conflict */
                                uint32_t common = m & prefix_mask(prefix);
                                if ((d & common) == (net & common))
                                        return true;
                        }
                }
                line = strchr(line, '\n');
        }
        return false;
}

static uint32_t name_hash(const char *s) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 16777619u;
        return h;
}

int network_lease_take(const char *lease_dir, const char *name, const char *proc_net_route, NetworkLease *ret) {
        lease_dir = lease_dir ? lease_dir : NETWORK_LEASE_DIR;
        _cleanup_free_ char *parent = strdup(lease_dir);
        char *slash = parent ? strrchr(parent, '/') : NULL;
        if (!parent)
                return -ENOMEM;
        if (slash && slash != parent) {
                *slash = 0;
                (void) mkdir(parent, 0700);
        }
        if (mkdir(lease_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int dfd = open(lease_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return -errno;
        uint32_t first = name_hash(name) % NETWORK_POOL_SLOTS;
        for (uint32_t i = 0; i < NETWORK_POOL_SLOTS; i++) {
                NetworkLease l;
                network_lease_fill((first + i) % NETWORK_POOL_SLOTS, &l);
                if (network_routes_overlap(proc_net_route, NETWORK_POOL_BASE + l.slot * 4, 30) || if_nametoindex(l.ifname) > 0)
                        continue;
                char file[16];
                snprintf(file, sizeof file, "%u", l.slot);
                _cleanup_close_ int fd = openat(dfd, file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0) {
                        if (errno == EEXIST)
                                continue;
                        return -errno;
                }
                _cleanup_free_ char *text = strdup_printf("%s\n", name);
                if (!text || write(fd, text, strlen(text)) != (ssize_t) strlen(text)) {
                        int r = text ? -EIO : -ENOMEM;
                        (void) unlinkat(dfd, file, 0);
                        return r;
                }
                *ret = l;
                return 0;
        }
        return -EBUSY;
}

/* Table names are identifiers to nft: our prefix and a machine name. */
static bool name_is_plain(const char *name) {
        if (isempty(name) || strlen(name) > 64)
                return false;
        for (const char *p = name; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("-_.", *p))
                        return false;
        return true;
}

static bool is_ipv4(const char *s) {
        struct in_addr a;
        return s && inet_pton(AF_INET, s, &a) == 1;
}

int network_nft_ruleset(const char *name, const NetworkLease *l, uid_t owner, const NetworkAllow *allow, size_t n_allow, char **ret) {
        return network_nft_ruleset_with(name, l, owner, allow, n_allow, NULL, ret);
}

/* "p1, p2" of ports (each once). */
static char *port_list(const NetworkPort *p, size_t n, bool to) {
        StrBuf b = {};
        for (size_t i = 0; i < n; i++) {
                bool dup = false;
                for (size_t k = 0; k < i; k++)
                        dup = dup || (to ? p[k].to_port == p[i].to_port : p[k].port == p[i].port);
                if (!dup)
                        strbuf_appendf(&b, "%s%u", b.len ? ", " : "", (unsigned) (to ? p[i].to_port : p[i].port));
        }
        char *t = NULL;
        return strbuf_steal(&b, &t) < 0 ? NULL : t;
}

int network_nft_ruleset_with(const char *name, const NetworkLease *l, uid_t owner, const NetworkAllow *allow, size_t n_allow,
                             const NetworkOpenings *o, char **ret) {
        static const NetworkOpenings none = {};
        o = o ? o : &none;
        _cleanup_free_ char *svc = o->n_host_services ? port_list(o->host_services, o->n_host_services, false) : strdup("");
        _cleanup_free_ char *pub = o->n_publish ? port_list(o->publish, o->n_publish, false) : strdup("");
        if (!svc || !pub)
                return -ENOMEM;
        if (!name_is_plain(name))
                return -EINVAL;
        /* Names (and "*." patterns) go through the egress proxy; only
         * IPv4 literals are forwarded by address. */
        size_t n_literal = 0;
        _cleanup_free_ char *ports = NULL;
        StrBuf pb = {};
        uint8_t seen[65536 / 8] = {};
        for (size_t i = 0; i < n_allow; i++) {
                if (allow[i].port == 0)
                        return strbuf_done(&pb), -EINVAL;
                if (!is_ipv4(allow[i].host)) {
                        if (seen[allow[i].port / 8] & (1u << (allow[i].port % 8)))
                                continue;
                        seen[allow[i].port / 8] |= (uint8_t) (1u << (allow[i].port % 8));
                        strbuf_appendf(&pb, "%s%u", pb.len ? ", " : "", (unsigned) allow[i].port);
                        continue;
                }
                if (!allow[i].addrs || !allow[i].addrs[0])
                        return strbuf_done(&pb), -EINVAL;
                for (size_t j = 0; allow[i].addrs[j]; j++)
                        if (!is_ipv4(allow[i].addrs[j]))
                                return strbuf_done(&pb), -EINVAL; /* never text nft would parse as anything else */
                n_literal++;
        }
        if (strbuf_steal(&pb, &ports) < 0)
                return -ENOMEM;
        StrBuf b = {};
        struct in_addr pool = { .s_addr = htonl(NETWORK_POOL_BASE) };
        char pool_text[16];
        inet_ntop(AF_INET, &pool, pool_text, sizeof pool_text);
        strbuf_appendf(&b, "table inet nspawn-cage-%s {\n", name);
        /* What the cage tried and was refused (nft list counter ... refused). */
        strbuf_append(&b, "\tcounter refused {\n\t}\n");
        /* The rate at which drops are named (NFLOG to the egress process). */
        strbuf_append(&b, "\tlimit named {\n\t\trate " NETWORK_NFLOG_RATE "\n\t}\n");
        char log[96];
        snprintf(log, sizeof log, "limit name \"named\" log group %u snaplen %u", NETWORK_NFLOG_GROUP_BASE + l->slot,
                 (unsigned) NETWORK_NFLOG_SNAPLEN);
        if (n_literal > 0) {
                /* [Network] Allow=: the only destinations forwarded from the cage. */
                _cleanup_strv_free_ char **elements = NULL;
                for (size_t i = 0; i < n_allow; i++)
                        for (size_t j = 0; is_ipv4(allow[i].host) && allow[i].addrs[j]; j++) {
                                _cleanup_free_ char *e = strdup_printf("%s . %u", allow[i].addrs[j], (unsigned) allow[i].port);
                                if (!e || (!strv_contains(elements, e) && strv_push(&elements, TAKE_PTR(e)) < 0)) {
                                        strbuf_done(&b);
                                        return -ENOMEM;
                                }
                        }
                strbuf_append(&b, "\tset allow {\n\t\ttype ipv4_addr . inet_service\n\t\telements = { ");
                for (size_t i = 0; elements[i]; i++)
                        strbuf_appendf(&b, "%s%s", i ? ", " : "", elements[i]);
                strbuf_append(&b, " }\n\t}\n");
        }
        /* Before the usual filter chains (priority 0), so they cannot accept
         * it first; a drop here is final for the packet. */
        strbuf_appendf(&b,
                       "\tchain input {\n"
                       "\t\ttype filter hook input priority filter - 10; policy accept;\n"
                       "\t\tiifname \"%s\" ct state established,related accept\n", l->ifname);
        if (!isempty(ports))
                /* The egress proxy (egress.h) on the host address: the only host service the cage reaches. */
                strbuf_appendf(&b,
                               "\t\tiifname \"%s\" ip daddr %s tcp dport { %u, %u } accept\n"
                               "\t\tiifname \"%s\" ip daddr %s udp dport %u accept\n",
                               l->ifname, l->host_addr, (unsigned) NETWORK_EGRESS_PROXY_PORT, (unsigned) NETWORK_EGRESS_TRANSPARENT_PORT,
                               l->ifname, l->host_addr, (unsigned) NETWORK_EGRESS_DNS_PORT);
        if (!isempty(svc))
                /* HostService=: the proxy listens there and relays to the service. */
                strbuf_appendf(&b, "\t\tiifname \"%s\" ip daddr %s tcp dport { %s } accept\n", l->ifname, l->host_addr, svc);
        strbuf_appendf(&b,
                       "\t\tiifname \"%s\" %s\n"
                       "\t\tiifname \"%s\" counter name \"refused\" drop\n"
                       "\t}\n", l->ifname, log, l->ifname);
        strbuf_appendf(&b,
                       "\tchain forward {\n"
                       "\t\ttype filter hook forward priority filter - 10; policy accept;\n"
                       "\t\tiifname \"%s\" meta nfproto ipv6 drop\n"
                       "\t\tiifname \"%s\" ip saddr != %s drop\n"
                       "\t\tiifname \"%s\" ip daddr { 127.0.0.0/8, 169.254.0.0/16, %s/%u } %s\n"
                       "\t\tiifname \"%s\" ip daddr { 127.0.0.0/8, 169.254.0.0/16, %s/%u } drop\n"
                       "\t\toifname \"%s\" ct state new drop\n",
                       l->ifname, l->ifname, l->cage_addr, l->ifname, pool_text, NETWORK_POOL_PREFIX, log, l->ifname, pool_text,
                       NETWORK_POOL_PREFIX, l->ifname);
        if (n_literal > 0)
                strbuf_appendf(&b, "\t\tiifname \"%s\" meta l4proto { tcp, udp } ip daddr . th dport @allow accept\n", l->ifname);
        if (n_allow > 0)
                strbuf_appendf(&b, "\t\tiifname \"%s\" %s\n\t\tiifname \"%s\" counter name \"refused\" drop\n", l->ifname, log, l->ifname);
        strbuf_append(&b, "\t}\n");
        if (!isempty(ports)) {
                /* TCP to a port of a name rule, from clients that ignore
                 * HTTPS_PROXY: to the proxy's transparent port, which reads
                 * the name from TLS SNI or the Host: header; DNS to its
                 * responder, which answers allowed names only. */
                strbuf_appendf(&b,
                               "\tchain prerouting {\n"
                               "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
                               "\t\tiifname \"%s\" ip daddr %s tcp dport %u accept\n",
                               l->ifname, l->host_addr, (unsigned) NETWORK_EGRESS_PROXY_PORT);
                if (n_literal > 0)
                        strbuf_appendf(&b, "\t\tiifname \"%s\" ip daddr . tcp dport @allow accept\n", l->ifname);
                if (!isempty(svc))
                        strbuf_appendf(&b, "\t\tiifname \"%s\" ip daddr %s tcp dport { %s } accept\n", l->ifname, l->host_addr, svc);
                strbuf_appendf(&b,
                               "\t\tiifname \"%s\" tcp dport { %s } redirect to :%u\n"
                               "\t\tiifname \"%s\" udp dport 53 redirect to :%u\n"
                               "\t}\n",
                               l->ifname, ports, (unsigned) NETWORK_EGRESS_TRANSPARENT_PORT, l->ifname, (unsigned) NETWORK_EGRESS_DNS_PORT);
        }
        /* The host's other users: what the agent listens on is the invoking
         * user's. A packet from a local socket of anyone else (root aside)
         * that would open something in the cage is dropped; packets of no
         * socket (the kernel's neighbour discovery) do not match skuid. */
        char owners[32];
        snprintf(owners, sizeof owners, owner == 0 ? "0" : "{ 0, %u }", (unsigned) owner);
        strbuf_appendf(&b,
                       "\tchain output {\n"
                       "\t\ttype filter hook output priority filter - 10; policy accept;\n"
                       "\t\toifname \"%s\" ct state established,related accept\n"
                       "\t\toifname \"%s\" meta skuid != %s drop\n"
                       /* The host side of the link (the egress proxy, DNS,
                        * HostService= relays, which act as the user): the
                        * host's other users connect there through lo. */
                       "\t\toifname \"lo\" ip daddr %s ct state new meta skuid != %s drop\n",
                       l->ifname, l->ifname, owners, l->host_addr, owners);
        if (!isempty(pub))
                /* Publish=: the cage's ports on 127.0.0.1 are the user's too. */
                strbuf_appendf(&b, "\t\toifname \"lo\" ip daddr 127.0.0.1 tcp dport { %s } ct state new meta skuid != %s drop\n", pub, owners);
        strbuf_append(&b, "\t}\n");
        strbuf_appendf(&b,
                       "\tchain postrouting {\n"
                       "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                       "\t\tip saddr %s oifname != \"%s\" masquerade\n"
                       "\t}\n"
                       "}\n", l->subnet, l->ifname);
        return strbuf_steal(&b, ret);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

int network_resolve_ipv4(const char *host, char ***ret, CageError *err) {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
        _cleanup_strv_free_ char **l = NULL;
        int g = getaddrinfo(host, NULL, &hints, &res);
        if (g != 0)
                return cage_error_set(err, g == EAI_NONAME || g == EAI_NODATA || g == EAI_ADDRFAMILY ? -ENOENT : g == EAI_MEMORY ? -ENOMEM : -EAGAIN,
                                      "%s", g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        int r = 0;
        for (struct addrinfo *ai = res; ai && r >= 0; ai = ai->ai_next) {
                char text[INET_ADDRSTRLEN];
                if (ai->ai_family != AF_INET ||
                    !inet_ntop(AF_INET, &((struct sockaddr_in *) ai->ai_addr)->sin_addr, text, sizeof text) ||
                    strv_contains(l, text) || strv_length(l) >= 32)
                        continue;
                r = strv_extend(&l, text);
        }
        freeaddrinfo(res);
        if (r < 0)
                return r;
        if (!l)
                return cage_error_set(err, -ENOENT, "it has no IPv4 address");
        qsort(l, strv_length(l), sizeof(char *), cmp_str);
        *ret = TAKE_PTR(l);
        return 0;
}

int network_allow_hosts(const NetworkAllow *allow, size_t n_allow, char **ret) {
        StrBuf b = {};
        _cleanup_strv_free_ char **done = NULL;
        for (size_t i = 0; i < n_allow; i++) {
                /* One name with several ports is pinned once. */
                if (is_ipv4(allow[i].host) || strv_contains(done, allow[i].host))
                        continue;
                if (strv_extend(&done, allow[i].host) < 0) {
                        strbuf_done(&b);
                        return -ENOMEM;
                }
                for (size_t j = 0; allow[i].addrs && allow[i].addrs[j]; j++)
                        strbuf_appendf(&b, "%s %s\n", allow[i].addrs[j], allow[i].host);
        }
        return strbuf_steal(&b, ret);
}

static int write_sysctl(const char *path, const char *value) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, value, strlen(value)) < 0)
                return -errno;
        return 0;
}

/* disable_ipv6 on the cage's host0, from a child that joined its network
 * namespace (/proc/sys/net is the opener's namespace). */
static int cage_ipv6_off(int netns) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                _exit(setns(netns, CLONE_NEWNET) < 0 || write_sysctl("/proc/sys/net/ipv6/conf/" NETWORK_CAGE_IFNAME "/disable_ipv6", "1") < 0);
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

int network_setup(const char *name, const NetworkLease *l, uid_t owner, const NetworkAllow *allow, size_t n_allow, const NetworkOpenings *o,
                  pid_t leader, CageError *error) {
        _cleanup_free_ char *ruleset = NULL, *pid = strdup_printf("%d", (int) leader), *host_cidr = NULL, *cage_cidr = NULL;
        _cleanup_free_ char *table = strdup_printf("nspawn-cage-%s", name), *nsp = strdup_printf("/proc/%d/ns/net", (int) leader);
        _cleanup_free_ char *localnet = strdup_printf("/proc/sys/net/ipv4/conf/%s/route_localnet", l->ifname);
        int r;
        if (!pid || !table || !nsp || !localnet || !(host_cidr = strdup_printf("%s/30", l->host_addr)) ||
            !(cage_cidr = strdup_printf("%s/30", l->cage_addr)))
                return -ENOMEM;
        if ((r = network_nft_ruleset_with(name, l, owner, allow, n_allow, o, &ruleset)) < 0) {
                cage_error_set(error, r, "cage name %s cannot name an nftables table", name);
                return r;
        }
        _cleanup_close_ int netns = open(nsp, O_RDONLY | O_CLOEXEC);
        if (netns < 0) {
                r = -errno;
                cage_error_set(error, r, "%s: %s", nsp, strerror(-r));
                return r;
        }
        /* The host end in our namespace, the cage end created straight in
         * the cage's (it never exists on the host under a name). */
        const char *add[] = { "link", "add", l->ifname, "type", "veth", "peer", "name", NETWORK_CAGE_IFNAME, "netns", pid, NULL };
        const char *host_addr[] = { "addr", "add", host_cidr, "dev", l->ifname, NULL };
        const char *host_up[] = { "link", "set", l->ifname, "up", NULL };
        const char *lo_up[] = { "link", "set", "lo", "up", NULL };
        const char *cage_addr[] = { "addr", "add", cage_cidr, "dev", NETWORK_CAGE_IFNAME, NULL };
        const char *cage_up[] = { "link", "set", NETWORK_CAGE_IFNAME, "up", NULL };
        const char *cage_route[] = { "route", "add", "default", "via", l->host_addr, "dev", NETWORK_CAGE_IFNAME, NULL };
        const char *nft_old[] = { "delete", "table", "inet", table, NULL };
        const char *nft_load[] = { "-f", "/dev/stdin", NULL };
        if ((r = tool_run(TOOL_IP, add, -1, NULL, error)) < 0 || (r = tool_run(TOOL_IP, host_addr, -1, NULL, error)) < 0)
                return r;
        /* The cage must not reach the host's 127.0.0.0/8 by routing there. */
        if ((r = write_sysctl(localnet, "0")) < 0) {
                cage_error_set(error, r, "%s: %s", localnet, strerror(-r));
                return r;
        }
        /* No IPv6 on the link: the host's end has no address (not even
         * link-local) the cage could reach the host's services on, and
         * the cage's end none either (cage root could turn it back on,
         * and would find nothing to talk to). ENOENT: IPv6 is off. */
        _cleanup_free_ char *v6 = strdup_printf("/proc/sys/net/ipv6/conf/%s/disable_ipv6", l->ifname);
        if (!v6)
                return -ENOMEM;
        if ((r = write_sysctl(v6, "1")) < 0 && r != -ENOENT) {
                cage_error_set(error, r, "%s: %s", v6, strerror(-r));
                return r;
        }
        (void) cage_ipv6_off(netns);
        if ((r = tool_run(TOOL_IP, host_up, -1, NULL, error)) < 0 || (r = tool_run(TOOL_IP, lo_up, netns, NULL, error)) < 0 ||
            (r = tool_run(TOOL_IP, cage_addr, netns, NULL, error)) < 0 || (r = tool_run(TOOL_IP, cage_up, netns, NULL, error)) < 0 ||
            (r = tool_run(TOOL_IP, cage_route, netns, NULL, error)) < 0)
                return r;
        (void) tool_run(TOOL_NFT, nft_old, -1, NULL, NULL); /* a stale table of a cage of the same name */
        if ((r = tool_run(TOOL_NFT, nft_load, -1, ruleset, error)) < 0)
                return r;
        /* NAT needs forwarding; as systemd-networkd's IPForward= and
         * libvirt do, it is switched on for the whole host and left on. */
        if ((r = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")) < 0) {
                cage_error_set(error, r, "/proc/sys/net/ipv4/ip_forward: %s", strerror(-r));
                return r;
        }
        return 0;
}

/* The name in lease file `file` of dfd, or NULL. */
static char *lease_owner(int dfd, const char *file) {
        _cleanup_close_ int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char buf[128];
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (n <= 0)
                return NULL;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return strdup(buf);
}

static bool is_slot(const char *s) {
        if (isempty(s) || strlen(s) > 5)
                return false;
        for (const char *p = s; *p; p++)
                if (!isdigit((unsigned char) *p))
                        return false;
        return (unsigned) atoi(s) < NETWORK_POOL_SLOTS;
}

int network_release(const char *lease_dir, const char *name) {
        lease_dir = lease_dir ? lease_dir : NETWORK_LEASE_DIR;
        DIR *d = opendir(lease_dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        int r, ret = 0;
        bool table_gone = false;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!is_slot(de->d_name))
                        continue;
                _cleanup_free_ char *owner = lease_owner(dirfd(d), de->d_name);
                if (!owner || !streq(owner, name))
                        continue;
                if (!table_gone) {
                        _cleanup_free_ char *table = strdup_printf("nspawn-cage-%s", name);
                        const char *del[] = { "delete", "table", "inet", table, NULL };
                        _cleanup_(cage_error_done) CageError error = {};
                        if (!table)
                                return closedir(d), -ENOMEM;
                        r = name_is_plain(name) ? tool_run(TOOL_NFT, del, -1, NULL, &error) : 0;
                        /* nft says ENOENT's text when the table is gone already. */
                        if (r < 0 && !(error.message && strstr(error.message, "No such file or directory"))) {
                                ret = r == -ENOENT ? -ENOENT : -EPERM; /* it stays: keep the lease, so gc tries again */
                                continue;
                        }
                        table_gone = true;
                }
                NetworkLease l;
                network_lease_fill((unsigned) atoi(de->d_name), &l);
                const char *del[] = { "link", "del", l.ifname, NULL };
                if (if_nametoindex(l.ifname) > 0 && tool_run(TOOL_IP, del, -1, NULL, NULL) < 0 && if_nametoindex(l.ifname) > 0) {
                        ret = -EBUSY;
                        continue;
                }
                if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && ret == 0)
                        ret = -errno;
        }
        closedir(d);
        return ret;
}

int network_gc(const char *lease_dir, bool (*exists)(const char *name, void *userdata), void *userdata, unsigned *ret_removed) {
        lease_dir = lease_dir ? lease_dir : NETWORK_LEASE_DIR;
        _cleanup_strv_free_ char **gone = NULL;
        DIR *d = opendir(lease_dir);
        if (!d)
                return errno == ENOENT ? (*ret_removed = 0, 0) : -errno;
        struct dirent *de;
        int ret = 0;
        while ((de = readdir(d))) {
                if (!is_slot(de->d_name))
                        continue;
                _cleanup_free_ char *owner = lease_owner(dirfd(d), de->d_name);
                if (owner && !exists(owner, userdata) && !strv_contains(gone, owner) && strv_extend(&gone, owner) < 0)
                        ret = -ENOMEM;
        }
        closedir(d);
        unsigned n = 0;
        for (size_t i = 0; gone && gone[i]; i++) {
                int r = network_release(lease_dir, gone[i]);
                if (r < 0 && ret == 0)
                        ret = r;
                else if (r >= 0)
                        n++;
        }
        *ret_removed = n;
        return ret;
}

/* Is the nameserver address s usable from a cage: IPv4 and not loopback? */
static bool resolver_usable(const char *s) {
        struct in_addr a;
        if (inet_pton(AF_INET, s, &a) != 1)
                return false;
        return (ntohl(a.s_addr) >> 24) != 127 && ntohl(a.s_addr) != 0;
}

int network_resolv_conf(const char *host_text, char **ret) {
        StrBuf b = {};
        unsigned n = 0;
        strbuf_append(&b, "# Written by nspawn-cage: the host's upstream name servers (Mode=private).\n");
        for (const char *p = host_text; p && *p;) {
                size_t len = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, len);
                char addr[64];
                if (line && sscanf(line, " nameserver %63s", addr) == 1 && resolver_usable(addr) && n < 3) {
                        strbuf_appendf(&b, "nameserver %s\n", addr);
                        n++;
                }
                p += len + (p[len] == '\n');
        }
        if (n == 0)
                strbuf_append(&b, "# The host names no name server a cage can reach (only a loopback one, or none):\n"
                                  "# names do not resolve here. See nspawn-cage.conf(5), [Network].\n");
        return strbuf_steal(&b, ret);
}

int network_resolv_conf_from(const char *const *paths, char **ret) {
        for (size_t i = 0; paths[i]; i++) {
                _cleanup_close_ int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
                char buf[8192];
                ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
                if (n < 0)
                        continue;
                buf[n] = 0;
                _cleanup_free_ char *text = NULL;
                int r = network_resolv_conf(buf, &text);
                if (r < 0)
                        return r;
                if (strstr(text, "\nnameserver ") || !paths[i + 1]) {
                        *ret = TAKE_PTR(text);
                        return 0;
                }
        }
        return network_resolv_conf("", ret);
}
