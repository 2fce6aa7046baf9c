/* caps.c: capability dropping with libcap. The bounding set is cut too, so
 * nothing the helper might still execute can regain what it gave up. */
#include "autoconfig.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include "caps.h"
#include "util.h"

/* CAP_NET_ADMIN only for a Mode=private cage: its teardown deletes the
 * cage's nftables table (nft, run as uid 0, gets the bounding set).
 * CAP_CHOWN only for a cage with [State] File=: teardown writes them into
 * the user's state directory, owned by the user. */
int caps_drop_for_session(bool net_admin, bool chown) {
        cap_value_t keep[6] = { CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER };
        size_t n_keep = 3;
        if (net_admin)
                keep[n_keep++] = CAP_NET_ADMIN;
        if (chown)
                keep[n_keep++] = CAP_CHOWN;
        if (geteuid() != 0)
                return 0;
        for (cap_value_t c = 0; cap_valid(c); c++) {
                bool kept = false;
                for (size_t i = 0; i < n_keep; i++)
                        kept = kept || keep[i] == c;
                /* CAP_SETPCAP is needed to drop from the bounding set: last. */
                if (!kept && c != CAP_SETPCAP && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                        return -errno;
        }
        if (prctl(PR_CAPBSET_DROP, CAP_SETPCAP, 0, 0, 0) < 0)
                return -errno;
        cap_t caps = cap_init(); /* all clear */
        if (!caps)
                return -ENOMEM;
        int r = 0;
        if (cap_set_flag(caps, CAP_PERMITTED, (int) n_keep, keep, CAP_SET) < 0 ||
            cap_set_flag(caps, CAP_EFFECTIVE, (int) n_keep, keep, CAP_SET) < 0 || cap_set_proc(caps) < 0)
                r = -errno;
        cap_free(caps);
        if (r == 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                r = -errno;
        return r;
}
