/* teardown.h: taking a cage away once its unit has stopped: its agent
 * state back to the user, its project checked for what could run code on
 * the host, its network, mounts, lock, settings, GC root and directory. */
#pragma once

#include "error.h"
#include "host.h"
#include "state.h"

/* What the cage left in its project that could run code as its user on
 * the host is made harmless (projectaudit.h), and the user told. */
int project_audit_end(Host *h, const CageRecord *rec, CageError *err);

/* Everything of cage name, whatever part of it is missing; every failure
 * is added to *err, and it goes on. remove_lock: also the uid range's lock
 * file (a failed start still holds it and drops it itself). */
int cage_teardown_full(Host *h, const char *name, bool remove_lock, CageError *err);
static inline int cage_teardown(Host *h, const char *name, CageError *err) { return cage_teardown_full(h, name, true, err); }
