/* layers.h: who a cage is for and what it is: the invoking (or declared)
 * user, the project opened once as that user, the three configuration
 * layers (administrator, user, project), the preset, and the spec resolved
 * from them. Reads files only; failures fill in the error record. */
#pragma once

#include "config.h"
#include "error.h"
#include "spec.h"
#include "state.h"
#include "user.h"

#define ADMIN_DIR SYSCONFDIR "/nspawn-cage"

/* What the command line and the environment say about where to look. */
typedef struct LoadOptions {
        const char *project;     /* the PROJECT argument (a declared cage: its Project=) */
        const char *name;        /* --name, or NULL to derive it */
        const char *admin_dir;   /* NULL: ADMIN_DIR */
        const char *user_config; /* NULL: ~/.config/nspawn-cage/config */
        const char *data_dir;    /* NULL: PKGDATADIR */
        const char *declared;    /* a declared cage's file: its user and project */
        const char *preset;      /* --preset: the user's choice, as if in their configuration */
        const char *sudo_uid;    /* $SUDO_UID as sudo set it, or NULL */
} LoadOptions;

/* Everything a cage is made from, loaded once. */
typedef struct Cage {
        HostUser user;
        int project_fd; /* the project, opened once as the user (O_PATH) */
        Config *config;
        CageSpec *spec;
        Preset preset;
} Cage;

#define CAGE_NULL ((Cage) { .project_fd = -1 })
void cage_done(Cage *c);

static inline const char *load_admin_dir(const LoadOptions *o) { return o->admin_dir ? o->admin_dir : ADMIN_DIR; }
static inline const char *load_data_dir(const LoadOptions *o) { return o->data_dir ? o->data_dir : PKGDATADIR; }

/* The user a cage is for: who ran sudo (sudo_uid, when running as root),
 * else the caller. */
int invoking_user(const char *sudo_uid, HostUser *ret, CageError *err);

/* Layers, preset, project checks and the spec, in that order. */
int cage_load(Cage *cage, const LoadOptions *o, CageError *err);

/* The administrator's layer alone ([Policy] for `set`). */
int load_admin_layer(Config *c, const char *dir, CageError *err);

/* A declared cage's user and project, from its file. */
int declared_identity(const char *admin_dir, const char *path, HostUser *ret_user, char **ret_project, CageError *err);

/* The file that declares cage `name`, if the administrator declared one. */
char *declared_file(const char *admin_dir, const char *name);
bool is_declared(const char *file);
/* An ad hoc cage must not take a declared cage's name. */
int declared_name_refuse(const char *admin_dir, const char *name, CageError *err);
/* Root reaching a cage by name (`entering`: to run a shell in it): say
 * whose it is, and refuse to enter one that squats a declared cage's name. */
int cage_owner_check(const char *admin_dir, const CageRecord *rec, bool entering, CageError *err);
