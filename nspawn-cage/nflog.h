/* nflog.h: what a cage's nft table drops, named. The drop rules (network.c)
 * send the headers of each dropped packet, at a limited rate, to an NFLOG
 * group of the cage's own; the egress process (egress.c) reads it on a
 * netlink socket bound as root and records each packet as a refusal. Raw
 * netlink, no library; what the kernel copies is the cage's packet, so the
 * parser reads bounded headers only and trusts nothing else in it. */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "network.h"

/* The cage's group: NETWORK_NFLOG_GROUP_BASE + its lease slot, unique among
 * running cages as the slot is. */
static inline uint16_t nflog_group(unsigned slot) { return (uint16_t) (NETWORK_NFLOG_GROUP_BASE + slot); }

/* Bind group on a new NETLINK_NETFILTER socket (needs CAP_NET_ADMIN):
 * copy NETWORK_NFLOG_SNAPLEN bytes of each packet, each sent at once.
 * Only the kernel can send to it (connected to port 0). -EBUSY: another
 * socket holds the group. */
int nflog_open(uint16_t group, int *ret_fd);

/* One logged packet. dport is 0 for protocols without ports, and for
 * fragments after the first. */
typedef struct NflogPacket {
        struct in_addr daddr;
        uint8_t proto;  /* IPPROTO_* */
        uint16_t dport;
        uint8_t hook;   /* NF_INET_*: 1 input (the host), 2 forward (beyond) */
} NflogPacket;

/* The packets of one datagram read from the socket (buf, len), of group
 * only, into ret (at most max). Returns how many; malformed messages and
 * packets that are no IPv4 are skipped. */
size_t nflog_parse(const uint8_t *buf, size_t len, uint16_t group, NflogPacket *ret, size_t max);

/* "tcp", "udp", "icmp" or the number. */
const char *nflog_proto_name(uint8_t proto, char *buf, size_t size);
