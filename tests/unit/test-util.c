/* test-util.c: the bounded readers every module reads files and pipes
 * with: the bound holds for a pipe and for a file that grows, and the
 * result is NUL-terminated. */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "util.h"

/* A pipe holding n bytes of 'x', its write side closed. */
static int pipe_of(size_t n) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        char buf[64];
        memset(buf, 'x', sizeof buf);
        for (size_t left = n; left > 0;) {
                size_t k = left < sizeof buf ? left : sizeof buf;
                if (write(p[1], buf, k) != (ssize_t) k)
                        return -1;
                left -= k;
        }
        close(p[1]);
        return p[0];
}

int main(void) {
        char *data = NULL;
        size_t size = 0;

        /* A pipe: exactly the bound is read whole, one byte more is refused,
         * also when the bound is not a multiple of the growth steps. */
        const size_t bounds[] = { 1, 100, 4096, 10000 };
        for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
                size_t max = bounds[i];
                int fd = pipe_of(max);
                ok(fd >= 0 && read_fd_bounded(fd, max, &data, &size) == 0 && size == max && data[max] == 0 &&
                   strspn(data, "x") == max, "a pipe of %zu bytes is read whole with max %zu, NUL-terminated", max, max);
                free(data);
                data = NULL;
                close(fd);
                fd = pipe_of(max + 1);
                ok(fd >= 0 && read_fd_bounded(fd, max, &data, &size) == -EFBIG && !data,
                   "a pipe of %zu bytes is refused with max %zu (-EFBIG)", max + 1, max);
                close(fd);
        }
        int fd = pipe_of(0);
        ok(fd >= 0 && read_fd_bounded(fd, 10, &data, &size) == 0 && size == 0 && data[0] == 0, "an empty pipe reads as an empty string");
        free(data);
        data = NULL;
        close(fd);

        /* read_regular_fd: regular files only. */
        char tmpl[] = "/tmp/test-util.XXXXXX";
        ok(mkdtemp(tmpl) != NULL, "a scratch directory");
        char path[64];
        snprintf(path, sizeof path, "%s/f", tmpl);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        ok(fd >= 0 && write(fd, "hello", 5) == 5 && lseek(fd, 0, SEEK_SET) == 0 && read_regular_fd(fd, 5, &data, &size) == 0 &&
           size == 5 && streq(data, "hello"), "a file of exactly max bytes is read");
        free(data);
        data = NULL;
        ok(lseek(fd, 0, SEEK_SET) == 0 && read_regular_fd(fd, 4, &data, &size) == -EFBIG, "a file over max is refused");
        close(fd);
        fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok(fd >= 0 && read_regular_fd(fd, 10, &data, &size) == -EISDIR, "a directory: -EISDIR");
        close(fd);
        fd = pipe_of(3);
        ok(fd >= 0 && read_regular_fd(fd, 10, &data, &size) == -EBADFD, "a pipe is not a regular file: -EBADFD");
        close(fd);
        unlink(path);
        rmdir(tmpl);
        return tap_done();
}
