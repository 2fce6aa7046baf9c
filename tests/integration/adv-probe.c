/* adv-probe: the few system calls the adversarial suite needs inside a cage
 * and the cage's closure has no tool for. Linked statically, so it runs from
 * the project directory without any library of the cage.
 *
 *   adv-probe keyctl          add a key to the session keyring
 *   adv-probe hostname NAME   sethostname(NAME)
 *   adv-probe connect PATH    connect a stream socket to PATH (@NAME: abstract)
 *   adv-probe exchange A B S  swap A and B (renameat2 RENAME_EXCHANGE) over
 *                             and over for S seconds: a directory and a
 *                             symbolic link trading places under a racing start
 *   adv-probe hold PATH N S   connect N stream sockets to PATH, hold them S
 *                             seconds (one process: the cage's Tasks= do not
 *                             limit it), print "held K" (K connected)
 *   adv-probe listen PORT S   TCP on every address (IPv4 and IPv6) of PORT for
 *                             S seconds, answering "hello-from-cage"
 *   adv-probe nflog GROUP S   bind NFLOG GROUP (a cage's nft drops), then print
 *                             "received K": its messages in S seconds
 *
 * Prints "ok" and exits 0 when the call succeeded, else the error and 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <poll.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING -3

static int result(int r) {
        if (r < 0) {
                printf("%s\n", strerror(errno));
                return 1;
        }
        printf("ok\n");
        return 0;
}

static int probe_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(path);
        if (n >= sizeof(sa.sun_path)) {
                printf("path too long\n");
                return 2;
        }
        memcpy(sa.sun_path, path, n);
        if (path[0] == '@')
                sa.sun_path[0] = '\0'; /* abstract: no terminating NUL counted */
        else
                n++;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return result(-1);
        int r = connect(fd, (struct sockaddr *) &sa, offsetof(struct sockaddr_un, sun_path) + n);
        r = result(r);
        close(fd);
        return r;
}

static int probe_exchange(const char *a, const char *b, const char *seconds) {
        time_t end = time(NULL) + atoi(seconds);
        unsigned long n = 0;
        while (time(NULL) < end) {
                if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) < 0)
                        return result(-1);
                n++;
        }
        printf("ok %lu\n", n);
        return 0;
}

static int probe_hold(const char *path, int n, int seconds) {
        int held = 0;
        for (int i = 0; i < n; i++) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                        held++;
        }
        printf("held %d\n", held);
        fflush(stdout);
        sleep((unsigned) seconds);
        return 0;
}

static int probe_listen(int port, int seconds) {
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), zero = 0, one = 1;
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t) port), .sin6_addr = IN6ADDR_ANY_INIT };
        if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            listen(fd, 16) < 0)
                return result(-1);
        printf("listening\n");
        fflush(stdout);
        time_t end = time(NULL) + seconds;
        while (time(NULL) < end) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 500) <= 0)
                        continue;
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0) {
                        (void) !write(c, "hello-from-cage\n", 16);
                        close(c);
                }
        }
        return 0;
}

static int probe_nflog(int group, int seconds) {
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
        struct {
                struct nlmsghdr h;
                struct nfgenmsg g;
                struct nlattr a;
                struct nfulnl_msg_config_cmd c;
                uint8_t pad[3];
        } m = { .h = { .nlmsg_len = sizeof m, .nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK },
                .g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0, .res_id = htons((uint16_t) group) },
                .a = { .nla_len = NLA_HDRLEN + 1, .nla_type = NFULA_CFG_CMD }, .c = { .command = NFULNL_CFG_CMD_BIND } };
        char buf[8192];
        if (fd < 0 || send(fd, &m, sizeof m, 0) < 0 || recv(fd, buf, sizeof buf, 0) < 0)
                return result(-1);
        struct nlmsgerr *e = (struct nlmsgerr *) (buf + NLMSG_HDRLEN);
        if (e->error != 0) {
                errno = -e->error;
                return result(-1);
        }
        int k = 0;
        time_t end = time(NULL) + seconds;
        while (time(NULL) < end) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 500) > 0 && recv(fd, buf, sizeof buf, 0) > 0)
                        k++;
        }
        printf("received %d\n", k);
        return 0;
}

int main(int argc, char **argv) {
        if (argc == 2 && strcmp(argv[1], "keyctl") == 0)
                return result((int) syscall(SYS_add_key, "user", "adv-canary", "x", (size_t) 1, KEY_SPEC_SESSION_KEYRING));
        if (argc == 3 && strcmp(argv[1], "hostname") == 0)
                return result(sethostname(argv[2], strlen(argv[2])));
        if (argc == 3 && strcmp(argv[1], "connect") == 0)
                return probe_connect(argv[2]);
        if (argc == 5 && strcmp(argv[1], "exchange") == 0)
                return probe_exchange(argv[2], argv[3], argv[4]);
        if (argc == 5 && strcmp(argv[1], "hold") == 0)
                return probe_hold(argv[2], atoi(argv[3]), atoi(argv[4]));
        if (argc == 4 && strcmp(argv[1], "listen") == 0)
                return probe_listen(atoi(argv[2]), atoi(argv[3]));
        if (argc == 4 && strcmp(argv[1], "nflog") == 0)
                return probe_nflog(atoi(argv[2]), atoi(argv[3]));
        fprintf(stderr, "usage: adv-probe keyctl | hostname NAME | connect PATH|@NAME | exchange A B SECONDS | hold PATH N SECONDS | "
                        "listen PORT SECONDS | nflog GROUP SECONDS\n");
        return 2;
}
