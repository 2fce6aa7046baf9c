/* validate.h: what a value of nspawn-cage's configuration may be, as
 * parsers (sizes, CPUs, counts, yes/no) and validators (names, paths,
 * store paths, Allow= entries). Pure functions, tested in test-config. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define CPUS_INFINITY UINT64_MAX
#define COUNT_INFINITY UINT64_MAX
#define SIZE_INFINITY UINT64_MAX

/* Value parsers, shared with the CLI (`set`) and tests. */
int parse_size(const char *s, uint64_t *ret);
int parse_cpus(const char *s, uint64_t *ret);
int parse_count(const char *s, uint64_t *ret);
int parse_bool(const char *s);
bool machine_name_is_valid(const char *s);
bool env_name_is_valid(const char *s);
bool package_name_is_valid(const char *s);
bool user_name_is_valid(const char *s);
/* A [State] Directory= or File= value: a path relative to the home
 * directory, normalised (no "." or ".." components, no "//", no leading or
 * trailing "/"), of characters a .nspawn bind can carry, at most
 * STATE_PATH_MAX bytes. */
#define STATE_PATH_MAX 128
bool state_path_is_valid(const char *s);

/* One [Network] Allow= entry, HOST[:PORT]: HOST a DNS name (letters, digits,
 * '-' and '.', labels of 1-63 characters), "*." and such a name (any name
 * below it) or an IPv4 address, PORT 1-65535 (443 when left out). On
 * success the host in lower case and the port; on failure -EINVAL and *err
 * says what is wrong. */
int allow_entry_parse(const char *s, char **ret_host, uint16_t *ret_port, CageError *err);
/* Is an Allow= host (as parsed) a name or a pattern, not an IPv4 address? */
bool allow_host_is_name(const char *host);
/* Does pattern ("*.a.b" or an exact name) match host (lower case)? */
bool allow_pattern_match(const char *pattern, const char *host);
/* Does the normalised entry outer ("HOST:PORT") allow all that inner does:
 * same port, and inner's host equal to, or matched by, outer's pattern? */
bool allow_entry_covers(const char *outer, const char *inner);
/* The lowest host port Publish= may bind: an ordinary user's. */
#define PUBLISH_PORT_MIN 1024
/* [Network] Publish= PORT[:CAGEPORT] and HostService= ADDR:PORT (an IPv4
 * address; not the egress proxy's ports 53, 3128, 3129). */
int publish_entry_parse(const char *s, uint16_t *ret_port, uint16_t *ret_cage_port);
bool publish_entry_is_valid(const char *s);
int host_service_entry_parse(const char *s, char ret_addr[16], uint16_t *ret_port);
bool host_service_entry_is_valid(const char *s);
/* Absolute, no "." or ".." components, no "//", no trailing "/", no control
 * characters and none of the bytes systemd.nspawn(5) would need escaped. */
bool path_is_safe_absolute(const char *p);
bool path_startswith_dir(const char *path, const char *dir);
/* /nix/store/<32 chars of Nix's base32>-<name>, nothing below it. */
bool store_path_is_valid(const char *p);
void format_cpus(uint64_t hundredths, char buf[static 32]);
/* Split a Command= value into words: whitespace separates, '...' and "..."
 * group, no other escapes. */
int split_command(const char *s, char ***ret);

