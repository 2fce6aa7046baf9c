/* test-staging.c: the staging paths of a cage and how a refusal to idmap
 * reads (staging.h); the mounts themselves are the integration tier's. */
#include "autoconfig.h"

#include "staging.h"
#include "state.h"
#include "tap.h"

int main(void) {
        _cleanup_free_ char *dir = staging_dir("c1");
        is_str(dir, STATE_DIR "/cages/c1/" STAGING_SUBDIR, "the staging directory is the cage's, below STATE_DIR");

        CageSpec *s = calloc(1, sizeof *s);
        CageError err = {};
        s->name = strdup("c1");
        s->project = strdup("/home/alice/p");
        BindSpec *b = cage_spec_add_bind(s, strdup("/home/alice/data"), strdup("/data"));
        b->origin = (Origin) { .layer = LAYER_USER, .file = "/home/alice/.config/nspawn-cage/config", .line = 7 };
        ok(staging_set_paths(s, 0x70000, &err) == 0, "paths for the range at 0x70000");
        is_str(s->project_staged, STATE_DIR "/cages/c1/" STAGING_SUBDIR "/project", "the project's staging mount point");
        is_str(s->store_dir, STATE_DIR "/cages/c1/rootfs/nix/store", "the rootfs's own store directory");
        ok(b->staged && startswith(b->staged, STATE_DIR "/cages/c1/" STAGING_SUBDIR "/"), "a bind gets its staging path (%s)", strempty(b->staged));

        _cleanup_free_ char *label = staging_bind_label(b);
        is_str(label, "/home/alice/.config/nspawn-cage/config:7: Bind=/home/alice/data:/data", "a bind's label names its file and line");
        b->origin.file = NULL;
        b->read_only = true;
        free(label);
        label = staging_bind_label(b);
        is_str(label, "ProtectGit=: BindReadOnly=/home/alice/data", "a bind nspawn-cage added says so");

        ok(staging_idmap_refusal(&err, "project", "/mnt/nfs/p", "nfs4", "/mnt/nfs", -EOPNOTSUPP) == -EOPNOTSUPP && err.message &&
           strstr(err.message, "project /mnt/nfs/p is on nfs4 (mounted at /mnt/nfs)") && strstr(err.message, "move it to a local file system"),
           "a file system without idmapped mounts: where it is and the fix");
        ok(staging_idmap_refusal(&err, "project", "/home/alice/p", "ext4", "/home", -ENOSYS) == -ENOSYS && strstr(err.message, "Linux 5.12"),
           "a kernel without idmapped mounts: which one is needed");
        ok(staging_idmap_refusal(&err, "project", "/home/alice/p", "ext4", "/home", -EPERM) == -EPERM && strstr(err.message, "already an idmapped mount"),
           "an idmapped mount below: cannot be stacked");
        cage_error_done(&err);
        cage_spec_free(s);
        return tap_done();
}
