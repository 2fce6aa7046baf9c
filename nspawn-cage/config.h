/* config.h: the configuration of one cage as three INI layers merged in
 * order (administrator, user, project), each value remembering the file and
 * line it came from. Parsing has no side effects beyond memory: callers open
 * the files (with the right identity) and hand over their contents. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "validate.h"
#include "util.h"

/* Longest line accepted: inih cuts lines at its 200-byte buffer and hands
 * the pieces on, so anything near that is refused before inih sees it. */
#define CONFIG_LINE_MAX 190
#define CONFIG_FILE_MAX (64 * 1024)

typedef enum Layer {
        LAYER_BUILTIN,
        LAYER_ADMIN,
        LAYER_USER,
        LAYER_PROJECT,
        _LAYER_MAX,
        _LAYER_INVALID = -EINVAL,
} Layer;

typedef enum NetworkMode {
        NETWORK_OFF,
        NETWORK_PRIVATE,
        NETWORK_HOST,
        _NETWORK_MODE_MAX,
        _NETWORK_MODE_INVALID = -EINVAL,
} NetworkMode;

/* [Cage] Containers=: which container engine the cage is made for (builders.h). */
typedef enum Containers {
        CONTAINERS_NO,
        CONTAINERS_PODMAN,
        _CONTAINERS_MAX,
        _CONTAINERS_INVALID = -EINVAL,
} Containers;

typedef enum SettingId {
        SETTING_PRESET,
        SETTING_COMMAND,
        SETTING_PACKAGES,
        SETTING_NIXPKGS,
        SETTING_NAME,
        SETTING_CPUS,
        SETTING_MEMORY,
        SETTING_SWAP,
        SETTING_TASKS,
        SETTING_NETWORK_MODE,
        SETTING_ALLOW,
        SETTING_PUBLISH,
        SETTING_HOST_SERVICE,
        SETTING_X11,
        SETTING_WAYLAND,
        SETTING_GPU,
        SETTING_X11_TRUSTED,
        SETTING_BIND,
        SETTING_BIND_READ_ONLY,
        SETTING_PROTECT_GIT,
        SETTING_PASS,
        SETTING_SET,
        SETTING_STATE_DIRECTORY,
        SETTING_STATE_FILE,
        SETTING_PERSIST,
        SETTING_ENV_FILE,
        SETTING_SSH_AGENT,
        SETTING_GIT_CONFIG,
        SETTING_ALLOW_USERS,
        SETTING_MAX_CPUS,
        SETTING_MAX_MEMORY,
        SETTING_MAX_SWAP,
        SETTING_MAX_TASKS,
        SETTING_ALLOW_NETWORK,
        SETTING_ALLOW_DISPLAY,
        SETTING_ALLOW_GPU,
        SETTING_ALLOW_X11_TRUSTED,
        SETTING_ALLOW_BINDS,
        SETTING_ALLOW_EGRESS,
        SETTING_NIX_DAEMON,
        SETTING_ALLOW_NIX_DAEMON,
        SETTING_ALLOW_PUBLISH,
        SETTING_ALLOW_HOST_SERVICES,
        SETTING_CONTAINERS,
        SETTING_ALLOW_CONTAINERS,
        /* Only in a declared cage's file (/etc/nspawn-cage/cages/NAME.conf). */
        SETTING_PROJECT,
        SETTING_USER,
        SETTING_TOPLEVEL,
        _SETTING_MAX,
        _SETTING_INVALID = -EINVAL,
} SettingId;

typedef struct Origin {
        Layer layer;
        const char *file; /* owned by the Config (interned) */
        unsigned line;
} Origin;

typedef struct Item {
        char *value;
        Origin origin;
} Item;

/* One setting's effective value. Scalars use `number` (sizes in bytes, CPUs
 * in hundredths, counts, enums, booleans) or `string`; lists use `items`. */
typedef struct Setting {
        bool set;
        Origin origin;
        uint64_t number;
        char *string;
        Item *items;
        size_t n_items;
} Setting;

typedef struct Config {
        Setting settings[_SETTING_MAX];
        char **files;       /* interned file names */
        Item *trusted_pass; /* Pass= as the trusted layers left it */
        size_t n_trusted_pass;
        Item *trusted_allow; /* [Network] Allow= as the trusted layers left it */
        size_t n_trusted_allow;
        bool in_project;
} Config;


const char *layer_to_string(Layer l);
Layer layer_from_string(const char *s);
const char *network_mode_to_string(NetworkMode m);
NetworkMode network_mode_from_string(const char *s);
const char *containers_to_string(Containers e);
Containers containers_from_string(const char *s);
const char *setting_to_string(SettingId id); /* "Limits.Memory" */
SettingId setting_from_string(const char *s);
const char *setting_section(SettingId id);
const char *setting_key(SettingId id);
bool setting_is_list(SettingId id);

/* Built-in defaults. */
int config_new(Config **ret);
Config *config_free(Config *c);
static inline void config_freep(Config **c) { config_free(*c); }

/* Parse one file's contents as a layer and merge it. `label` is the path
 * shown in messages. On failure *err holds file, line and a message that
 * says what was asked, what is allowed and how to fix it; the Config must
 * then be discarded: the whole file is rejected. */
int config_load_buffer(Config *c, Layer layer, const char *label, const char *data, size_t size,
                       CageError *err);

/* A declared cage's file: administrator rights, plus Project=, User= and
 * Toplevel=, which no other file may set. */
int config_load_declared(Config *c, const char *label, const char *data, size_t size, CageError *err);
bool setting_is_declared_only(SettingId id);

/* Read a config file from an open fd with the caller's identity: refuses
 * anything but a regular file of at most CONFIG_FILE_MAX bytes. */
int config_read_fd(int fd, char **ret_data, size_t *ret_size);

/* Human form of a setting's value ("4G", "0.5", "private", "yes", ...). */
char *setting_format_value(const Config *c, SettingId id);
char *origin_to_string(const Origin *o); /* "file:/etc/x.conf:3" or "builtin" */
