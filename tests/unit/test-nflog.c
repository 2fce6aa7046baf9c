/* test-nflog.c: the parser of the NFLOG messages a cage's nft drops send
 * (nflog.h). The packet in them is the cage's: hostile input. The message
 * below has the layout the kernel sends (nfnetlink_log.c: nfulnl_log_packet):
 * a packet header, the input interface, the payload cut at the snap length. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <stdlib.h>

#include "nflog.h"
#include "tap.h"
#include "util.h"

/* nlmsghdr, nfgenmsg (AF_INET, v0, group 32773), NFULA_PACKET_HDR
 * (0x0800, hook 2 forward), NFULA_IFINDEX_INDEV 7, NFULA_PAYLOAD: IPv4
 * 10.231.0.22 -> 192.0.2.9, UDP 40000 -> 5555. */
static const uint8_t captured[] = {
        0x54, 0, 0, 0,  0x00, 0x04,  0, 0,  0, 0, 0, 0,  0, 0, 0, 0, /* len 84, type ULOG<<8|PACKET */
        2, 0, 0x80, 0x05,                                            /* AF_INET, v0, res_id 32773 */
        8, 0, 1, 0,  0x08, 0x00, 2, 0,                               /* PACKET_HDR */
        8, 0, 4, 0,  0, 0, 0, 7,                                     /* IFINDEX_INDEV */
        0x30, 0, 9, 0,                                               /* PAYLOAD, 44 bytes */
        0x45, 0, 0, 0x2c, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0,
        10, 231, 0, 22,  192, 0, 2, 9,
        0x9c, 0x40, 0x15, 0xb3, 0, 0x18, 0, 0,
        'h', 'e', 'l', 'l', 'o', ' ', 'f', 'r', 'o', 'm', ' ', 'c', 'a', 'g', 'e', '!',
};

/* Captured from a kernel (the test host, tests/testhost): an inet table's
 * OUTPUT rule "log group 40000 snaplen 64" on a UDP datagram from root to
 * 192.0.2.9:5555; the output interface, uid and gid attributes besides. */
static const uint8_t captured_kernel[] = {
        0x80, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x9c, 0x40, 0x08, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x05, 0x00, 0x0a, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x0b, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x44, 0x00, 0x09, 0x00,
        0x45, 0x00, 0x00, 0x5f, 0xeb, 0xd6, 0x40, 0x00, 0x40, 0x11, 0x8c, 0xae, 0x00, 0x00, 0x00, 0x00,
        0xc0, 0x00, 0x02, 0x09, 0xaf, 0x57, 0x15, 0xb3, 0x00, 0x4b, 0xc2, 0x65, 0x68, 0x65, 0x6c, 0x6c,
        0x6f, 0x20, 0x66, 0x72, 0x6f, 0x6d, 0x20, 0x63, 0x61, 0x67, 0x65, 0x2c, 0x20, 0x61, 0x20, 0x6c,
        0x6f, 0x6e, 0x67, 0x65, 0x72, 0x20, 0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x20, 0x74, 0x6f,
};

int main(void) {
        NflogPacket p[4];
        char b[8];
        ok(sizeof captured == 84, "the message is as long as its header says");
        ok(nflog_parse(captured, sizeof captured, 32773, p, 4) == 1, "one packet");
        char addr[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &p[0].daddr, addr, sizeof addr);
        ok(streq(addr, "192.0.2.9") && p[0].dport == 5555 && p[0].proto == IPPROTO_UDP && p[0].hook == 2,
           "its destination %s:%u, udp, forward", addr, (unsigned) p[0].dport);
        is_str(nflog_proto_name(p[0].proto, b, sizeof b), "udp", "udp by name");
        is_str(nflog_proto_name(47, b, sizeof b), "47", "others by number");
        ok(nflog_parse(captured, sizeof captured, 32774, p, 4) == 0, "another cage's group is not taken for ours");
        ok(sizeof captured_kernel == 128 && nflog_parse(captured_kernel, sizeof captured_kernel, 40000, p, 4) == 1, "a kernel's message: one packet");
        inet_ntop(AF_INET, &p[0].daddr, addr, sizeof addr);
        ok(streq(addr, "192.0.2.9") && p[0].dport == 5555 && p[0].proto == IPPROTO_UDP && p[0].hook == 3,
           "its destination %s:%u, udp, output; the attributes we do not read are skipped", addr, (unsigned) p[0].dport);

        /* Two messages in one datagram, the second TCP with IP options. */
        uint8_t two[2 * sizeof captured + 8];
        memcpy(two, captured, sizeof captured);
        memcpy(two + sizeof captured, captured, sizeof captured);
        uint8_t *q = two + sizeof captured + 36 + 4; /* the second's IP header */
        q[0] = 0x46, q[9] = 6;                        /* IHL 6: 4 bytes of options; TCP */
        q[24] = 0x01, q[25] = 0xbb, q[26] = 0x01, q[27] = 0xbb; /* ports after the options: 443 */
        NflogPacket t[4];
        ok(nflog_parse(two, 2 * sizeof captured, 32773, t, 4) == 2 && t[1].proto == IPPROTO_TCP && t[1].dport == 443,
           "two messages in a datagram; the ports found after IP options");
        ok(nflog_parse(two, 2 * sizeof captured, 32773, t, 1) == 1, "at most max packets");

        /* Hostile and cut input: never read past the end, never a packet. */
        for (size_t cut = 0; cut < sizeof captured; cut++) {
                uint8_t *c = malloc(cut ? cut : 1); /* exactly cut bytes: ASan/valgrind see an overread */
                memcpy(c, captured, cut);
                if (cut >= 4)
                        c[0] = (uint8_t) cut; /* a header that agrees with the cut */
                size_t n = nflog_parse(c, cut, 32773, p, 4);
                if (n != 0 && cut < 36 + 4 + 24) {
                        ok(false, "a message cut at %zu bytes yields no packet with ports", cut);
                        free(c);
                        break;
                }
                free(c);
        }
        ok(true, "messages cut at every length are parsed within their bounds");
        uint8_t m[sizeof captured];
        memcpy(m, captured, sizeof m);
        m[36] = 0xff; /* the payload attribute claims more than there is */
        ok(nflog_parse(m, sizeof m, 32773, p, 4) == 0, "an attribute longer than its message is refused");
        memcpy(m, captured, sizeof m);
        m[40] = 0x4f, m[40 + 2] = 0, m[40 + 3] = 0x2c;
        ok(nflog_parse(m, sizeof m, 32773, p, 4) == 0, "an IP header longer than the copied payload (IHL 15) is refused");
        memcpy(m, captured, sizeof m);
        m[40] = 0x44;
        ok(nflog_parse(m, sizeof m, 32773, p, 4) == 0, "an IP header shorter than 20 bytes is refused");
        memcpy(m, captured, sizeof m);
        m[40] = 0x60;
        ok(nflog_parse(m, sizeof m, 32773, p, 4) == 0, "IPv6 (not on a cage's link) is skipped");
        memcpy(m, captured, sizeof m);
        m[40 + 6] = 0x00, m[40 + 7] = 0x10; /* fragment offset 16 */
        ok(nflog_parse(m, sizeof m, 32773, p, 4) == 1 && p[0].dport == 0, "a later fragment: no ports read from its data");
        memcpy(m, captured, sizeof m);
        m[0] = 8;
        ok(nflog_parse(m, sizeof m, 32773, p, 4) == 0, "a message shorter than its header is refused");
        memcpy(m, captured, sizeof m);
        m[4] = 0x01; /* NFULNL_MSG_CONFIG */
        ok(nflog_parse(m, sizeof m, 32773, p, 4) == 0, "only packet messages");
        memcpy(m, captured, sizeof m);
        m[20] = 4, m[21] = 0; /* a zero-length attribute would loop */
        ok(nflog_parse(m, sizeof m, 32773, p, 4) == 0, "an attribute of no payload ends the parse");
        return tap_done();
}
