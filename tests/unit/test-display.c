/* test-display.c: the pure parts of display forwarding: DISPLAY and
 * WAYLAND_DISPLAY values, and Xauthority files read and written. */
#include "autoconfig.h"

#include "display.h"
#include "tap.h"

/* One Xauthority entry, as Xau writes it. */
static size_t entry(unsigned char *b, unsigned family, const char *addr, const char *number, const char *name,
                    const char *data, size_t data_len) {
        size_t n = 0;
        const char *parts[] = { addr, number, name };
        b[n++] = (unsigned char) (family >> 8);
        b[n++] = (unsigned char) family;
        for (size_t i = 0; i < 3; i++) {
                size_t l = strlen(parts[i]);
                b[n++] = (unsigned char) (l >> 8);
                b[n++] = (unsigned char) l;
                memcpy(b + n, parts[i], l);
                n += l;
        }
        b[n++] = (unsigned char) (data_len >> 8);
        b[n++] = (unsigned char) data_len;
        memcpy(b + n, data, data_len);
        return n + data_len;
}

int main(void) {
        unsigned n = 99;
        ok(display_parse_x11(":0", &n) == 0 && n == 0, ":0 is display 0");
        ok(display_parse_x11(":12.1", &n) == 0 && n == 12, ":12.1 is display 12");
        ok(display_parse_x11("unix:5", &n) == 0 && n == 5, "unix:5 is display 5");
        const char *bad[] = { "", ":", "host:0", "localhost:10.0", ":x", ":0.", ":0.1.2", "/tmp/.X11-unix/X0", ":1/../0", "tcp/host:0", ":-1" };
        int refused = 0;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                refused += display_parse_x11(bad[i], &n) < 0;
        ok(refused == (int) ELEMENTSOF(bad), "remote, empty and malformed DISPLAY values are refused (%d of %zu)", refused, ELEMENTSOF(bad));
        ok(display_parse_x11(":100000", &n) == -ERANGE, "a display number beyond 9999 is refused");
        ok(display_parse_x11(NULL, &n) < 0, "no DISPLAY is refused");

        ok(display_wayland_name_is_valid("wayland-0") && display_wayland_name_is_valid("wayland-1.lock-not"), "plain socket names are valid");
        ok(!display_wayland_name_is_valid("/run/dbus/system_bus_socket") && !display_wayland_name_is_valid("../0/wayland-0") &&
           !display_wayland_name_is_valid("..") && !display_wayland_name_is_valid("") && !display_wayland_name_is_valid(NULL) &&
           !display_wayland_name_is_valid("a\nb"), "paths, '..', empty names and control characters are refused");

        unsigned char file[512];
        size_t size = 0;
        size += entry(file + size, 256, "otherhost", "0", "MIT-MAGIC-COOKIE-1", "AAAAAAAAAAAAAAAA", 16);
        size += entry(file + size, 256, "myhost", "1", "MIT-MAGIC-COOKIE-1", "BBBBBBBBBBBBBBBB", 16);
        size += entry(file + size, 256, "myhost", "0", "XDM-AUTHORIZATION-1", "CCCCCCCCCCCCCCCC", 16);
        size += entry(file + size, 256, "myhost", "0", "MIT-MAGIC-COOKIE-1", "DDDDDDDDDDDDDDDD", 16);
        char *cookie = NULL;
        size_t cs = 0;
        ok(xauth_find_cookie((char *) file, size, 0, "myhost", false, &cookie, &cs) == 0 && cs == 16 && memcmp(cookie, "DDDDDDDDDDDDDDDD", 16) == 0,
           "the cookie of this host's display 0 is found, not another host's or another protocol's");
        free(cookie);
        cookie = NULL;
        ok(xauth_find_cookie((char *) file, size, 0, NULL, true, &cookie, &cs) == 0 && memcmp(cookie, "AAAAAAAAAAAAAAAA", 16) == 0,
           "with any host, the first entry of the display is taken");
        free(cookie);
        cookie = NULL;
        ok(xauth_find_cookie((char *) file, size, 7, "myhost", false, &cookie, &cs) == -ENOENT && !cookie, "no entry for display 7: -ENOENT");
        ok(xauth_find_cookie((char *) file, size - 3, 0, "myhost", false, &cookie, &cs) == -EBADMSG && !cookie, "a truncated file: -EBADMSG");
        ok(xauth_find_cookie("\x01", 1, 0, "myhost", false, &cookie, &cs) == -EBADMSG, "one byte: -EBADMSG");

        char *wild = NULL;
        size_t ws = 0;
        ok(xauth_render_wild(5, "0123456789abcdef", 16, &wild, &ws) == 0 && ws == 45, "a wildcard entry for display 5 is 45 bytes");
        ok(wild && (unsigned char) wild[0] == 0xff && (unsigned char) wild[1] == 0xff && wild[2] == 0 && wild[3] == 0,
           "it has FamilyWild and no address");
        ok(xauth_find_cookie(wild, ws, 5, "any-cage-name", false, &cookie, &cs) == 0 && cs == 16 && memcmp(cookie, "0123456789abcdef", 16) == 0,
           "it round-trips, and matches whatever the host is called");
        free(cookie);
        free(wild);
        ok(xauth_render_wild(5, "", 0, &wild, &ws) == -EINVAL, "an empty cookie is refused");
        return tap_done();
}
