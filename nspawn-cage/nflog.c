/* nflog.c: the NFLOG reader of a cage's nft drops (nflog.h). Every length
 * in a message is checked against what was received before it is used. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nflog.h"
#include "util.h"

#define NFLOG_TYPE(msg) ((uint16_t) ((NFNL_SUBSYS_ULOG << 8) | (msg)))

static void put_attr(uint8_t *buf, size_t *len, uint16_t type, const void *data, size_t size) {
        struct nlattr a = { .nla_len = (uint16_t) (NLA_HDRLEN + size), .nla_type = type };
        memcpy(buf + *len, &a, sizeof a);
        memcpy(buf + *len + NLA_HDRLEN, data, size);
        memset(buf + *len + NLA_HDRLEN + size, 0, NLA_ALIGN(size) - size);
        *len += NLA_HDRLEN + NLA_ALIGN(size);
}

int nflog_open(uint16_t group, int *ret_fd) {
        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
        struct sockaddr_nl self = { .nl_family = AF_NETLINK }, kernel = { .nl_family = AF_NETLINK };
        if (fd < 0)
                return -errno;
        /* Connected to the kernel: a local process cannot write forged
         * packets to this socket's port. */
        if (bind(fd, (struct sockaddr *) &self, sizeof self) < 0 || connect(fd, (struct sockaddr *) &kernel, sizeof kernel) < 0)
                return -errno;
        union {
                uint8_t b[256];
                struct nlmsghdr align;
        } m = {};
        size_t len = NLMSG_HDRLEN;
        struct nfgenmsg g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0, .res_id = htons(group) };
        memcpy(m.b + len, &g, sizeof g);
        len += NLMSG_ALIGN(sizeof g);
        struct nfulnl_msg_config_cmd cmd = { .command = NFULNL_CFG_CMD_BIND };
        struct nfulnl_msg_config_mode mode = { .copy_range = htonl(NETWORK_NFLOG_SNAPLEN), .copy_mode = NFULNL_COPY_PACKET };
        uint32_t qthresh = htonl(1);
        put_attr(m.b, &len, NFULA_CFG_CMD, &cmd, sizeof cmd);
        put_attr(m.b, &len, NFULA_CFG_MODE, &mode, sizeof mode);
        put_attr(m.b, &len, NFULA_CFG_QTHRESH, &qthresh, sizeof qthresh);
        m.align = (struct nlmsghdr) { .nlmsg_len = (uint32_t) len, .nlmsg_type = NFLOG_TYPE(NFULNL_MSG_CONFIG),
                                      .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 1 };
        if (send(fd, m.b, len, 0) != (ssize_t) len)
                return -errno;
        /* The acknowledgement: an error message, 0 for success. */
        for (;;) {
                uint8_t r[512];
                ssize_t n = recv(fd, r, sizeof r, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                struct nlmsghdr h;
                if ((size_t) n < NLMSG_HDRLEN + sizeof(struct nlmsgerr))
                        return -EPROTO;
                memcpy(&h, r, sizeof h);
                if (h.nlmsg_type != NLMSG_ERROR || h.nlmsg_seq != 1)
                        continue;
                struct nlmsgerr e;
                memcpy(&e, r + NLMSG_HDRLEN, sizeof e);
                if (e.error != 0)
                        return e.error;
                break;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The IPv4 header and ports of payload p (len bytes). */
static int parse_ipv4(const uint8_t *p, size_t len, NflogPacket *ret) {
        if (len < 20 || p[0] >> 4 != 4)
                return -EINVAL;
        size_t ihl = (size_t) (p[0] & 0x0f) * 4;
        if (ihl < 20 || ihl > len)
                return -EINVAL;
        ret->proto = p[9];
        memcpy(&ret->daddr, p + 16, 4);
        ret->dport = 0;
        bool first_fragment = ((p[6] & 0x1f) | p[7]) == 0;
        if ((ret->proto == IPPROTO_TCP || ret->proto == IPPROTO_UDP) && first_fragment && len >= ihl + 4)
                ret->dport = (uint16_t) (p[ihl + 2] << 8 | p[ihl + 3]);
        return 0;
}

/* One NFULNL_MSG_PACKET's attributes (after the nfgenmsg). */
static int parse_packet(const uint8_t *a, size_t len, NflogPacket *ret) {
        const uint8_t *payload = NULL;
        size_t payload_len = 0;
        uint8_t hook = 0;
        while (len >= NLA_HDRLEN) {
                struct nlattr h;
                memcpy(&h, a, sizeof h);
                if (h.nla_len < NLA_HDRLEN || h.nla_len > len)
                        return -EINVAL;
                size_t dl = h.nla_len - NLA_HDRLEN;
                switch (h.nla_type & NLA_TYPE_MASK) {
                case NFULA_PACKET_HDR:
                        if (dl < sizeof(struct nfulnl_msg_packet_hdr))
                                return -EINVAL;
                        hook = a[NLA_HDRLEN + 2]; /* hw_protocol (2 bytes), hook */
                        break;
                case NFULA_PAYLOAD:
                        payload = a + NLA_HDRLEN;
                        payload_len = dl;
                        break;
                }
                size_t step = NLA_ALIGN(h.nla_len);
                if (step >= len)
                        break;
                a += step;
                len -= step;
        }
        if (!payload || parse_ipv4(payload, payload_len, ret) < 0)
                return -EINVAL;
        ret->hook = hook;
        return 0;
}

size_t nflog_parse(const uint8_t *buf, size_t len, uint16_t group, NflogPacket *ret, size_t max) {
        size_t n = 0;
        while (len >= NLMSG_HDRLEN && n < max) {
                struct nlmsghdr h;
                memcpy(&h, buf, sizeof h);
                if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len)
                        break; /* cut or malformed: nothing after it can be found */
                struct nfgenmsg g;
                size_t body = h.nlmsg_len - NLMSG_HDRLEN;
                if (h.nlmsg_type == NFLOG_TYPE(NFULNL_MSG_PACKET) && body >= NLMSG_ALIGN(sizeof g)) {
                        memcpy(&g, buf + NLMSG_HDRLEN, sizeof g);
                        if (ntohs(g.res_id) == group && /* the family: parse_ipv4 checks the version */
                            parse_packet(buf + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof g), body - NLMSG_ALIGN(sizeof g), &ret[n]) == 0)
                                n++;
                }
                size_t step = NLMSG_ALIGN(h.nlmsg_len);
                if (step >= len)
                        break;
                buf += step;
                len -= step;
        }
        return n;
}

const char *nflog_proto_name(uint8_t proto, char *buf, size_t size) {
        switch (proto) {
        case IPPROTO_TCP:
                return "tcp";
        case IPPROTO_UDP:
                return "udp";
        case IPPROTO_ICMP:
                return "icmp";
        }
        snprintf(buf, size, "%u", (unsigned) proto);
        return buf;
}
