/* caps.h: the helper holds only what it still needs. Once the agent's
 * session in the cage is open, what remains is D-Bus (uid 0 is what
 * systemd checks) and removing the cage's files at the end. */
#pragma once

#include <stdbool.h>

/* Drop every capability from the bounding set and from the permitted,
 * effective and inheritable sets, except the ones teardown needs to remove
 * files the cage made: CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, and
 * with net_admin CAP_NET_ADMIN, to delete a Mode=private cage's nftables table,
 * with chown CAP_CHOWN, to give copied-out agent state to its user. */
int caps_drop_for_session(bool net_admin, bool chown);
