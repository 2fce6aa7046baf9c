/* caps.c: capability dropping with libcap. The bounding set is cut too, so
 * nothing the helper might still execute can regain what it gave up. */
#include "autoconfig.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include "caps.h"
#include "util.h"

/* CAP_NET_ADMIN: teardown deletes a Mode=private cage's nftables table
 * (network_release runs nft, which inherits the bounding set as uid 0). */
static const cap_value_t keep[] = { CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_NET_ADMIN };

int caps_drop_for_session(void) {
        if (geteuid() != 0)
                return 0;
        for (cap_value_t c = 0; cap_valid(c); c++) {
                bool kept = false;
                for (size_t i = 0; i < ELEMENTSOF(keep); i++)
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
        if (cap_set_flag(caps, CAP_PERMITTED, (int) ELEMENTSOF(keep), keep, CAP_SET) < 0 ||
            cap_set_flag(caps, CAP_EFFECTIVE, (int) ELEMENTSOF(keep), keep, CAP_SET) < 0 || cap_set_proc(caps) < 0)
                r = -errno;
        cap_free(caps);
        if (r == 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                r = -errno;
        return r;
}
