/* validate.c: the value parsers and validators (validate.h). Pure: no
 * file, no environment, no logging; shared by config.c, spec.c, the
 * renderers, the verbs and the tests. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>

#include "validate.h"

int parse_size(const char *s, uint64_t *ret) {
        if (streq(s, "infinity")) {
                *ret = SIZE_INFINITY;
                return 0;
        }
        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        uint64_t v = 0;
        const char *p = s;
        for (; isdigit((unsigned char) *p); p++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        unsigned shift = 0;
        if (*p) {
                const char *units = "KMGT";
                const char *u = strchr(units, *p);
                if (!u || p[1])
                        return -EINVAL;
                shift = 10 * (unsigned) (u - units + 1);
        }
        if (shift && v > (UINT64_MAX >> shift) - 1)
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

int parse_cpus(const char *s, uint64_t *ret) {
        if (streq(s, "infinity")) {
                *ret = CPUS_INFINITY;
                return 0;
        }
        uint64_t whole = 0, frac = 0;
        const char *p = s;
        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        for (; isdigit((unsigned char) *p); p++) {
                whole = whole * 10 + (uint64_t) (*p - '0');
                if (whole > 4096)
                        return -ERANGE;
        }
        if (*p == '.') {
                p++;
                int digits = 0;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                for (; isdigit((unsigned char) *p); p++, digits++) {
                        if (digits >= 2)
                                return -EINVAL; /* hundredths are the resolution of CPUQuota= */
                        frac = frac * 10 + (uint64_t) (*p - '0');
                }
                if (digits == 1)
                        frac *= 10;
        }
        if (*p)
                return -EINVAL;
        uint64_t v = whole * 100 + frac;
        if (v == 0)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_count(const char *s, uint64_t *ret) {
        if (streq(s, "infinity")) {
                *ret = COUNT_INFINITY;
                return 0;
        }
        uint64_t v = 0;
        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*p - '0');
                if (v > 4194304)
                        return -ERANGE;
        }
        if (v == 0)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_bool(const char *s) {
        if (streq(s, "yes") || streq(s, "true") || streq(s, "on") || streq(s, "1"))
                return 1;
        if (streq(s, "no") || streq(s, "false") || streq(s, "off") || streq(s, "0"))
                return 0;
        return -EINVAL;
}

void format_cpus(uint64_t v, char buf[static 32]) {
        if (v == CPUS_INFINITY)
                snprintf(buf, 32, "infinity");
        else if (v % 100 == 0)
                snprintf(buf, 32, "%" PRIu64, v / 100);
        else if (v % 10 == 0)
                snprintf(buf, 32, "%" PRIu64 ".%" PRIu64, v / 100, (v % 100) / 10);
        else
                snprintf(buf, 32, "%" PRIu64 ".%02" PRIu64, v / 100, v % 100);
}

/* Machine names end up as host names, unit names and directory names. */
bool machine_name_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 64 || streq(s, ".host"))
                return false;
        if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-')
                return false;
        if (strstr(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_' && *p != '.')
                        return false;
        return true;
}

bool env_name_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 128 || isdigit((unsigned char) s[0]))
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && *p != '_')
                        return false;
        return true;
}

/* A nixpkgs attribute path: segments of [A-Za-z_][A-Za-z0-9_+-]* joined by '.'. */
bool package_name_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 128)
                return false;
        bool start = true;
        for (const char *p = s; *p; p++) {
                if (start) {
                        if (!isalpha((unsigned char) *p) && *p != '_')
                                return false;
                        start = false;
                } else if (*p == '.')
                        start = true;
                else if (!isalnum((unsigned char) *p) && !strchr("_+-", *p))
                        return false;
        }
        return !start;
}

bool user_name_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 32 || (!islower((unsigned char) s[0]) && s[0] != '_'))
                return false;
        for (const char *p = s; *p; p++)
                if (!islower((unsigned char) *p) && !isdigit((unsigned char) *p) && !strchr("_-.", *p))
                        return false;
        return true;
}

static bool host_name_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253)
                return false;
        for (const char *label = s; *label;) {
                size_t k = strcspn(label, ".");
                if (k == 0 || k > 63 || label[0] == '-' || label[k - 1] == '-')
                        return false;
                for (size_t i = 0; i < k; i++)
                        if (!isalnum((unsigned char) label[i]) && label[i] != '-' && label[i] != '_')
                                return false;
                label += k;
                if (*label == '.' && !*++label)
                        return false; /* a trailing dot */
        }
        return true;
}

int allow_entry_parse(const char *s, char **ret_host, uint16_t *ret_port, CageError *err) {
        const char *colon = strrchr(s, ':');
        if (strchr(s, '[') || (colon && strchr(s, ':') != colon))
                return cage_error_set(err, -EINVAL, "IPv6 addresses are not supported (a cage has IPv4 only); give a name or an IPv4 address");
        if (colon == s || isempty(s))
                return cage_error_set(err, -EINVAL, "expected HOST[:PORT], e.g. api.anthropic.com:443 or *.example.org");
        uint64_t port = 443; /* no port: HTTPS */
        if (colon) {
                const char *p = colon + 1;
                for (port = 0; isdigit((unsigned char) *p) && port <= 65535; p++)
                        port = port * 10 + (uint64_t) (*p - '0');
                if (*p || p == colon + 1 || port == 0 || port > 65535 || colon[1] == '0')
                        return cage_error_set(err, -EINVAL, "the port must be a number from 1 to 65535");
        }
        _cleanup_free_ char *host = colon ? strndup(s, (size_t) (colon - s)) : strdup(s);
        if (!host)
                return -ENOMEM;
        for (char *c = host; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        /* "*." then a name of at least two labels: any name below it. */
        bool wild = startswith(host, "*.");
        const char *name = wild ? host + 2 : host;
        if (strchr(name, '*') || (strchr(host, '*') && !wild))
                return cage_error_set(err, -EINVAL, "a wildcard is only '*.' before a name, e.g. *.example.org:443");
        if (wild && !strchr(name, '.'))
                return cage_error_set(err, -EINVAL, "a wildcard needs a name of at least two labels after '*.' (not a whole top-level domain)");
        /* A last label of digits only is no DNS name: it must be an address. */
        const char *last = strrchr(name, '.');
        last = last ? last + 1 : name;
        bool numeric = *last && strspn(last, "0123456789") == strlen(last);
        struct in_addr a;
        if (numeric && wild)
                return cage_error_set(err, -EINVAL, "a wildcard needs a name, not an address");
        if (numeric ? inet_pton(AF_INET, name, &a) != 1 : !host_name_is_valid(name))
                return cage_error_set(err, -EINVAL, "%s", numeric ? "not a valid IPv4 address (expected a dotted quad such as 192.0.2.10)"
                                                                  : "not a valid host name (letters, digits, '-' and '.'; no trailing '.')");
        *ret_host = TAKE_PTR(host);
        *ret_port = (uint16_t) port;
        return 0;
}

bool allow_host_is_name(const char *host) {
        struct in_addr a;
        return host && inet_pton(AF_INET, host, &a) != 1;
}

bool allow_pattern_match(const char *pattern, const char *host) {
        if (!pattern || !host)
                return false;
        if (!startswith(pattern, "*."))
                return streq(pattern, host);
        /* "*.a.b" names every x.a.b, x.y.a.b, ...; not a.b itself. */
        size_t lp = strlen(pattern) - 1, lh = strlen(host); /* ".a.b" */
        return lh > lp && streq(host + lh - lp, pattern + 1) && host[lh - lp - 1] != '.';
}

bool allow_entry_covers(const char *outer, const char *inner) {
        _cleanup_free_ char *oh = NULL, *ih = NULL;
        _cleanup_(cage_error_done) CageError e1 = {}, e2 = {};
        uint16_t op, ip;
        if (allow_entry_parse(outer, &oh, &op, &e1) < 0 || allow_entry_parse(inner, &ih, &ip, &e2) < 0 || op != ip)
                return false;
        /* A pattern inside a wider one: "*.x.a.b" within "*.a.b". */
        if (startswith(ih, "*.") && startswith(oh, "*."))
                return allow_pattern_match(oh, ih + 2) || streq(oh, ih);
        return allow_pattern_match(oh, ih);
}

static int port_parse(const char *s, size_t n, uint16_t *ret) {
        unsigned long v = 0;
        if (n == 0 || n > 5 || s[0] == '0')
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char) s[i]))
                        return -EINVAL;
                v = v * 10 + (unsigned long) (s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int publish_entry_parse(const char *s, uint16_t *ret_port, uint16_t *ret_cage_port) {
        const char *colon = strchr(s, ':');
        uint16_t a, b;
        if (port_parse(s, colon ? (size_t) (colon - s) : strlen(s), &a) < 0 || (colon && port_parse(colon + 1, strlen(colon + 1), &b) < 0))
                return -EINVAL;
        /* Root binds it for the user: only a port the user could bind
         * (local services trust the ports below 1024 as root's). */
        if (a < PUBLISH_PORT_MIN)
                return -EACCES;
        *ret_port = a;
        *ret_cage_port = colon ? b : a;
        return 0;
}

bool publish_entry_is_valid(const char *s) {
        uint16_t a, b;
        return publish_entry_parse(s, &a, &b) == 0;
}

int host_service_entry_parse(const char *s, char ret_addr[16], uint16_t *ret_port) {
        const char *colon = strrchr(s, ':');
        struct in_addr a;
        char addr[16];
        uint16_t port;
        if (!colon || (size_t) (colon - s) >= sizeof addr)
                return -EINVAL;
        memcpy(addr, s, (size_t) (colon - s));
        addr[colon - s] = 0;
        if (inet_pton(AF_INET, addr, &a) != 1 || port_parse(colon + 1, strlen(colon + 1), &port) < 0 || port == 53 || port == 3128 || port == 3129)
                return -EINVAL;
        inet_ntop(AF_INET, &a, ret_addr, 16);
        *ret_port = port;
        return 0;
}

bool host_service_entry_is_valid(const char *s) {
        char a[16];
        uint16_t p;
        return host_service_entry_parse(s, a, &p) == 0;
}

bool path_is_safe_absolute(const char *p) {
        if (p[0] != '/' || strlen(p) > 4000)
                return false;
        if (string_has_cc(p) || strpbrk(p, ":\\\"'"))
                return false;
        if (streq(p, "/"))
                return true;
        if (p[strlen(p) - 1] == '/')
                return false;
        for (const char *c = p; *c; ) {
                c++; /* skip '/' */
                size_t n = strcspn(c, "/");
                if (n == 0)
                        return false; /* "//" */
                if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (isspace((unsigned char) c[0]) || isspace((unsigned char) c[n - 1]))
                        return false;
                c += n;
        }
        return true;
}

bool state_path_is_valid(const char *s) {
        if (isempty(s) || s[0] == '/' || strlen(s) > STATE_PATH_MAX || strpbrk(s, " \t"))
                return false;
        _cleanup_free_ char *abs = strdup_printf("/%s", s);
        return abs && path_is_safe_absolute(abs);
}

/* /nix/store/<32 chars of Nix's base32>-<name>, nothing below it. */
bool store_path_is_valid(const char *p) {
        const char *h = startswith(p, "/nix/store/");
        if (!h || strlen(h) < 34)
                return false;
        for (int i = 0; i < 32; i++)
                if (!strchr("0123456789abcdfghijklmnpqrsvwxyz", h[i]))
                        return false;
        if (h[32] != '-' || strlen(h + 33) > 211)
                return false;
        for (const char *n = h + 33; *n; n++)
                if (!isalnum((unsigned char) *n) && !strchr("+-._?=", *n))
                        return false;
        return h[33] != '.';
}

bool path_startswith_dir(const char *path, const char *dir) {
        if (streq(dir, "/"))
                return true;
        const char *rest = startswith(path, dir);
        return rest && (*rest == 0 || *rest == '/');
}

int split_command(const char *s, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        const char *p = s;
        for (;;) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        break;
                StrBuf w = {};
                while (*p && *p != ' ' && *p != '\t') {
                        if (*p == '\'' || *p == '"') {
                                char q = *p++;
                                const char *end = strchr(p, q);
                                if (!end) {
                                        strbuf_done(&w);
                                        return -EBADMSG;
                                }
                                strbuf_appendn(&w, p, (size_t) (end - p));
                                p = end + 1;
                        } else
                                strbuf_appendn(&w, p++, 1);
                }
                char *word;
                int r = strbuf_steal(&w, &word);
                if (r < 0)
                        return r;
                if ((r = strv_push(&l, word)) < 0)
                        return r;
                if (strv_length(l) > 256)
                        return -E2BIG;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
