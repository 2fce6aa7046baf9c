/* test-network.c: Mode=private's pure parts (route overlap, the slot's
 * addresses, the nftables ruleset, the cage's resolv.conf) and the lease
 * pick in a scratch directory, without root. */
#include "autoconfig.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "network.h"
#include "tap.h"
#include "util.h"

static const char routes[] =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"  /* default via 192.168.2.1 */
        "eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"  /* 192.168.2.0/24 */
        "tun0\t0000E70A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";   /* 10.231.0.0/24 (a VPN) */

int main(void) {
        NetworkLease l;
        network_lease_fill(0, &l);
        ok(streq(l.ifname, "ncage-0") && streq(l.host_addr, "10.231.0.1") && streq(l.cage_addr, "10.231.0.2") &&
                   streq(l.subnet, "10.231.0.0/30"), "slot 0: ncage-0, 10.231.0.1 (host), 10.231.0.2 (cage), 10.231.0.0/30");
        network_lease_fill(NETWORK_POOL_SLOTS - 1, &l);
        ok(streq(l.ifname, "ncage-16383") && streq(l.cage_addr, "10.231.255.254"), "the last slot: ncage-16383, 10.231.255.254");

        ok(network_routes_overlap(routes, 0x0AE70004, 30), "10.231.0.4/30 lies in the host's 10.231.0.0/24 route");
        ok(!network_routes_overlap(routes, 0x0AE70104, 30), "10.231.1.4/30 does not; the default route is no conflict");
        ok(network_routes_overlap(routes, 0xC0A80200, 30), "192.168.2.0/30 lies in eth0's /24");
        ok(!network_routes_overlap("", 0x0AE70004, 30) && !network_routes_overlap(NULL, 0x0AE70004, 30), "no routes, no overlap");

        /* The pick: O_EXCL files, never a slot under a host route. */
        char dir[] = "/tmp/test-network.XXXXXX";
        ok(mkdtemp(dir) != NULL, "scratch lease directory");
        _cleanup_free_ char *leases = strdup_printf("%s/leases", dir);
        NetworkLease a, b;
        ok(network_lease_take(leases, "alpha", routes, &a) == 0, "a lease for alpha");
        ok(network_lease_take(leases, "alpha", routes, &b) == 0 && a.slot != b.slot, "a second start of the same name gets another slot");
        ok(a.slot >= 64 && b.slot >= 64, "neither lies under the host's 10.231.0.0/24 (slots 0-63)");
        _cleanup_free_ char *file = strdup_printf("%s/%u", leases, a.slot);
        struct stat st;
        ok(stat(file, &st) == 0 && st.st_size == 6, "the lease file names its cage");
        /* Release needs nft/ip only for leases it finds; none exist for
         * "beta", and alpha's interface never existed. */
        ok(network_release(leases, "beta") == 0 && stat(file, &st) == 0, "releasing another cage leaves alpha's lease");

        /* The ruleset. */
        _cleanup_free_ char *rules = NULL;
        network_lease_fill(5, &l);
        ok(network_nft_ruleset("proj-1a2b3c4d", &l, 1000, NULL, 0, &rules) == 0, "a ruleset for proj-1a2b3c4d");
        ok(strstr(rules, "table inet nspawn-cage-proj-1a2b3c4d {\n") != NULL, "one table per cage, named after it");
        ok(strstr(rules, "iifname \"ncage-5\" counter name \"refused\" drop\n") != NULL, "the host's own services (INPUT) are closed to the cage, drops counted");
        ok(strstr(rules, "ip daddr { 127.0.0.0/8, 169.254.0.0/16, 10.231.0.0/16 } drop") != NULL,
           "loopback, link-local (metadata) and other cages are not forwarded to");
        ok(strstr(rules, "ip saddr != 10.231.0.22 drop") != NULL, "the cage cannot send from another address");
        ok(strstr(rules, "ip saddr 10.231.0.20/30 oifname != \"ncage-5\" masquerade") != NULL, "NAT to the outside");
        const char *out = strstr(rules, "\tchain output {\n\t\ttype filter hook output priority filter - 10; policy accept;\n"
                                        "\t\toifname \"ncage-5\" ct state established,related accept\n"
                                        "\t\toifname \"ncage-5\" meta skuid != { 0, 1000 } drop\n"
                                        "\t\toifname \"lo\" ip daddr 10.231.0.21 ct state new meta skuid != { 0, 1000 } drop\n\t}\n");
        ok(out != NULL, "the host's other users cannot open anything in the cage, nor on the host side of its link (OUTPUT: only the owner's and root's sockets, and replies)");
        _cleanup_free_ char *root_rules = NULL;
        ok(network_nft_ruleset("p", &l, 0, NULL, 0, &root_rules) == 0 && strstr(root_rules, "oifname \"ncage-5\" meta skuid != 0 drop\n"),
           "a cage of root's: root's sockets only");
        char *bad = NULL;
        ok(network_nft_ruleset("a;b", &l, 1000, NULL, 0, &bad) == -EINVAL && !bad, "a name nft would parse as syntax is refused");
        ok(network_nft_ruleset("a\"b", &l, 1000, NULL, 0, &bad) == -EINVAL && !bad, "a quote too");

        ok(!strstr(rules, "@allow") && !strstr(rules, "set allow"), "without Allow= no allowlist: everything else is forwarded");

        /* Allow=: IPv4 literals in a set of address . port; names through the egress proxy. */
        char *a2[] = { "198.51.100.7", NULL };
        NetworkAllow allow[] = {
                { .host = "allowed.test", .port = 443 },
                { .host = "198.51.100.7", .port = 8080, .addrs = a2 },
                { .host = "*.alias.test", .port = 443 },
                { .host = "allowed.test", .port = 80 },
        };
        _cleanup_free_ char *arules = NULL;
        ok(network_nft_ruleset("proj-1a2b3c4d", &l, 1000, allow, ELEMENTSOF(allow), &arules) == 0, "a ruleset with an allowlist");
        ok(strstr(arules, "\tset allow {\n\t\ttype ipv4_addr . inet_service\n\t\telements = { 198.51.100.7 . 8080 }\n\t}\n") != NULL,
           "the set holds the IPv4 literal only");
        const char *accept = strstr(arules, "iifname \"ncage-5\" meta l4proto { tcp, udp } ip daddr . th dport @allow accept\n"
                                            "\t\tiifname \"ncage-5\" limit name \"named\" log group 32773 snaplen 64\n"
                                            "\t\tiifname \"ncage-5\" counter name \"refused\" drop\n\t}\n");
        const char *blocked = strstr(arules, "ip daddr { 127.0.0.0/8, 169.254.0.0/16, 10.231.0.0/16 } drop");
        ok(accept && blocked && blocked < accept, "tcp and udp to the set are forwarded, after the fixed drops; then everything else from the cage is dropped");
        ok(strstr(arules, "iifname \"ncage-5\" ip daddr 10.231.0.21 tcp dport { 3128, 3129 } accept\n"
                          "\t\tiifname \"ncage-5\" ip daddr 10.231.0.21 udp dport 53 accept\n"
                          "\t\tiifname \"ncage-5\" limit name \"named\" log group 32773 snaplen 64\n"
                          "\t\tiifname \"ncage-5\" counter name \"refused\" drop\n") != NULL,
           "the egress proxy on the host address is the one host service the cage reaches");
        ok(strstr(arules, "\t\tiifname \"ncage-5\" ip daddr 10.231.0.21 tcp dport 3128 accept\n"
                          "\t\tiifname \"ncage-5\" ip daddr . tcp dport @allow accept\n"
                          "\t\tiifname \"ncage-5\" tcp dport { 443, 80 } redirect to :3129\n"
                          "\t\tiifname \"ncage-5\" udp dport 53 redirect to :53\n") != NULL,
           "TCP to the name rules' ports (each once) and DNS are redirected to the proxy; the literals and the proxy port are not");
        ok(strstr(arules, "masquerade") && strstr(arules, "counter refused {\n\t}\n"), "NAT stays; a counter of refused packets");
        ok(strstr(arules, "\tlimit named {\n\t\trate 10/second burst 20 packets\n\t}\n") &&
           strstr(arules, "\t\tiifname \"ncage-5\" ip daddr { 127.0.0.0/8, 169.254.0.0/16, 10.231.0.0/16 } limit name \"named\" log group 32773 snaplen 64\n"
                          "\t\tiifname \"ncage-5\" ip daddr { 127.0.0.0/8, 169.254.0.0/16, 10.231.0.0/16 } drop\n"),
           "each drop of the cage's traffic is named to NFLOG group 32768 + slot, all at one limited rate");
        ok(strstr(rules, "\t\tiifname \"ncage-5\" limit name \"named\" log group 32773 snaplen 64\n\t\tiifname \"ncage-5\" counter name \"refused\" drop\n"),
           "without Allow= too: the host's refusals are named");
        NetworkPort pub[] = { { .port = 3000, .to_port = 3000 }, { .port = 8080, .to_port = 80 } }, svc[] = { { .addr = "127.0.0.1", .port = 9099, .to_port = 9099 } };
        NetworkOpenings op = { .publish = pub, .n_publish = 2, .host_services = svc, .n_host_services = 1 };
        _cleanup_free_ char *orules = NULL;
        ok(network_nft_ruleset_with("p", &l, 1000, allow, ELEMENTSOF(allow), &op, &orules) == 0, "a ruleset with Publish= and HostService=");
        ok(strstr(orules, "\t\tiifname \"ncage-5\" ip daddr 10.231.0.21 tcp dport { 9099 } accept\n"
           "\t\tiifname \"ncage-5\" limit name \"named\" log group 32773 snaplen 64\n" "\t\tiifname \"ncage-5\" counter name \"refused\" drop\n") &&
           strstr(orules, "ip daddr . tcp dport @allow accept\n\t\tiifname \"ncage-5\" ip daddr 10.231.0.21 tcp dport { 9099 } accept\n\t\tiifname \"ncage-5\" tcp dport { 443, 80 } redirect"),
           "the host service's port on the host address is accepted from the cage, and not redirected");
        ok(strstr(orules, "\t\toifname \"lo\" ip daddr 127.0.0.1 tcp dport { 3000, 8080 } ct state new meta skuid != { 0, 1000 } drop\n") != NULL,
           "published ports on 127.0.0.1 are the owner's and root's only");
        _cleanup_free_ char *lrules = NULL;
        ok(network_nft_ruleset("p", &l, 1000, allow + 1, 1, &lrules) == 0 && !strstr(lrules, "redirect") && !strstr(lrules, "3128"),
           "literals only: no proxy, no redirect");
        char *evil[] = { "1.2.3.4 } ; flush ruleset ; {", NULL }, *none[] = { NULL };
        NetworkAllow bad_allow[] = { { .host = "1.2.3.4", .port = 443, .addrs = evil } }, unresolved[] = { { .host = "1.2.3.4", .port = 443, .addrs = none } };
        ok(network_nft_ruleset("p", &l, 1000, bad_allow, 1, &bad) == -EINVAL && !bad, "an address that is no dotted quad never reaches nft");
        ok(network_nft_ruleset("p", &l, 1000, unresolved, 1, &bad) == -EINVAL && !bad, "nor a literal entry without its address");
        _cleanup_free_ char *hosts = NULL;
        ok(network_allow_hosts(allow, ELEMENTSOF(allow), &hosts) == 0 && streq(hosts, ""), "names are not pinned in /etc/hosts (the proxy resolves them)");

        /* Resolution on this host, without DNS: literals and /etc/hosts' localhost. */
        char **got_addrs = NULL;
        CageError why = {};
        ok(network_resolve_ipv4("192.0.2.10", &got_addrs, &why) == 0 && got_addrs && streq(got_addrs[0], "192.0.2.10") && !got_addrs[1],
           "an IPv4 literal resolves to itself");
        strv_free(got_addrs);
        got_addrs = NULL;
        ok(network_resolve_ipv4("localhost", &got_addrs, &why) == 0 && got_addrs && streq(got_addrs[0], "127.0.0.1"), "localhost resolves through the host's files");
        strv_free(got_addrs);
        got_addrs = NULL;
        int rr = network_resolve_ipv4("no-such-name.invalid", &got_addrs, &why);
        ok((rr == -ENOENT || rr == -EAGAIN) && !got_addrs && why.message, "a name that does not resolve fails with the reason (%s)", strempty(why.message));
        cage_error_done(&why);

        /* resolv.conf. */
        _cleanup_free_ char *r1 = NULL, *r2 = NULL, *r3 = NULL;
        ok(network_resolv_conf("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n", &r1) == 0 &&
                   !strstr(r1, "\nnameserver") && strstr(r1, "names do not resolve"), "only the loopback stub: no server, said so");
        ok(network_resolv_conf("# x\nnameserver 10.0.0.1\nnameserver ::1\nnameserver 2001:db8::1\n  nameserver 192.0.2.53 \nnameserver 127.0.0.1\n", &r2) == 0 &&
                   strstr(r2, "\nnameserver 10.0.0.1\nnameserver 192.0.2.53\n") && !strstr(r2, "::"), "IPv4 servers but loopback kept, in order");
        ok(network_resolv_conf("nameserver 1.1.1.1\nnameserver 1.0.0.1\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n", &r3) == 0 &&
                   !strstr(r3, "8.8.4.4"), "at most three (glibc's limit)");

        /* The first file with a usable server wins; a stub-only one is skipped. */
        _cleanup_free_ char *stub = strdup_printf("%s/stub", dir), *up = strdup_printf("%s/up", dir), *got = NULL;
        FILE *f = fopen(stub, "we");
        fputs("nameserver 127.0.0.53\n", f);
        fclose(f);
        f = fopen(up, "we");
        fputs("nameserver 198.51.100.2\n", f);
        fclose(f);
        const char *paths[] = { "/nonexistent/resolv.conf", stub, up, NULL };
        ok(network_resolv_conf_from(paths, &got) == 0 && strstr(got, "\nnameserver 198.51.100.2\n"), "the stub file is passed over for the upstream one");

        _cleanup_free_ char *cmd = strdup_printf("rm -rf '%s'", dir);
        (void) !system(cmd);
        return tap_done();
}
