/* settings.h: the systemd.nspawn(5) settings file of one cage. All escaping
 * of values into that format lives here: a value that cannot be written
 * safely is refused, never mangled. Secrets never enter this file. */
#pragma once

#include "spec.h"

/* Render the .nspawn text for a spec whose closure and user namespace are
 * known; *err names a value that cannot be written safely. */
int settings_render(const CageSpec *s, char **ret_text, CageError *err);

/* Quote one Environment= assignment, or -EINVAL if it cannot be expressed. */
int settings_quote_env(const char *assignment, char **ret);
