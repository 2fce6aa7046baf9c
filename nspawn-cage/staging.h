/* staging.h: how the project and each Bind= source reach systemd-nspawn:
 * checked for idmapped mounts before anything is built, then mounted from
 * fds opened as their owner at root-owned staging paths of the cage
 * (STATE_DIR/cages/NAME/mnt), idmapped into the cage's uid range. */
#pragma once

#include "error.h"
#include "spec.h"

/* STATE_DIR/cages/NAME/mnt */
char *staging_dir(const char *name);
/* Where nspawn binds from: the cage's staging mounts, and its rootfs's own
 * /nix/store directory, for the uid range at base. */
int staging_set_paths(CageSpec *s, uid_t base, CageError *err);
/* "FILE:LINE: Bind=VALUE" of a bind, or what added it, for messages. */
char *staging_bind_label(const BindSpec *b);
/* Why path (what: "project", a bind's label) cannot be idmapped, as the
 * fix a user can apply; fstype and target say where it lives. Returns r. */
int staging_idmap_refusal(CageError *err, const char *what, const char *path, const char *fstype, const char *target, int r);
/* The project (project_fd) and each writable bind must be idmappable; a
 * read-only bind that is not is marked no_idmap (a plain read-only clone). */
int staging_check(CageSpec *s, int project_fd, CageError *err);
/* Mount the project and each bind at their staging paths. */
int staging_mount(const CageSpec *s, int project_fd, CageError *err);
/* Detach what is left mounted below the staging directory of cage name. */
int staging_umount(const char *name);
