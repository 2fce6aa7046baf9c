/* cgroup.c: reading the cgroup file system. Limits themselves are set by
 * systemd from unit properties (bus.c); this only tells what happened. */
#include "autoconfig.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include "cgroup.h"
#include "config.h"
#include "util.h"

bool cgroup_is_unified(const char *root) {
        _cleanup_free_ char *p = strdup_printf("%s/sys/fs/cgroup", streq(root, "/") ? "" : root);
        struct statfs fs;
        return p && statfs(p, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

static int read_key(const char *file, const char *key, uint64_t *ret) {
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = config_read_fd(fd, &data, &size);
        if (r < 0)
                return r;
        size_t n = strlen(key);
        for (char *l = data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, key, n) == 0 && l[n] == ' ') {
                        *ret = strtoull(l + n + 1, NULL, 10);
                        return 0;
                }
        return -ENOENT;
}

int cgroup_oom_kills(const char *root, const char *path, uint64_t *ret) {
        if (!path || path[0] != '/' || strstr(path, ".."))
                return -EINVAL;
        const char *r0 = streq(root, "/") ? "" : root;
        _cleanup_free_ char *v2 = strdup_printf("%s/sys/fs/cgroup%s/memory.events", r0, path);
        _cleanup_free_ char *v1 = strdup_printf("%s/sys/fs/cgroup/memory%s/memory.oom_control", r0, path);
        if (!v2 || !v1)
                return -ENOMEM;
        if (cgroup_is_unified(root))
                return read_key(v2, "oom_kill", ret);
        return read_key(v1, "oom_kill", ret);
}
