# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_iimage_global_optspecs
    string join \n root= log-level= additional-store= h/help V/version
end

function __fish_iimage_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_iimage_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_iimage_using_subcommand
    set -l cmd (__fish_iimage_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c iimage -n "__fish_iimage_needs_command" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_needs_command" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_needs_command" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_needs_command" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_needs_command" -s V -l version -d 'Print version'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "ls" -d 'List images (REPOSITORY TAG IMAGE ID CREATED SIZE)'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "inspect" -d 'Show images as a JSON array in docker\'s shape (Id, RepoTags, Config, RootFS...)'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "rm" -d 'Remove images: by name, untag it (and delete the image with its last name); by id, delete the image (-f when it has several names)'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "prune" -d 'Remove images without a name (-a: every image no container uses), then collect garbage'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "import" -d 'Make a one-layer image from a root file system tarball or directory'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "export" -d 'Write an image\'s flattened root file system as a tar'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "squash" -d 'Write an image as a single-file squashfs (zstd) that `irun FILE.sqsh` runs'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "save" -d 'Write images to an archive (docker-archive by default; podman/docker load it)'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "load" -d 'Load images from an archive (docker-archive or oci-archive, detected)'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "fsck" -d 'Check every blob\'s digest and every reference of the store'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "gc" -d 'Remove unreferenced blobs, unused unpacked layers and debris of killed processes'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "info" -d 'Show the store and what this host allows (user namespaces, overlay, FUSE, id mapping), with a fix for each missing item'
complete -c iimage -n "__fish_iimage_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c iimage -n "__fish_iimage_using_subcommand ls" -l format -d 'table, json (one object per line) or a Go template (`{{.Repository}}:{{.Tag}}`, `table {{.ID}}\\t{{.Size}}`); fields: ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size' -r
complete -c iimage -n "__fish_iimage_using_subcommand ls" -s f -l filter -d 'Only some images: reference=PATTERN, dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE (repeatable)' -r
complete -c iimage -n "__fish_iimage_using_subcommand ls" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand ls" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand ls" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand ls" -s q -l quiet -d 'Only image ids'
complete -c iimage -n "__fish_iimage_using_subcommand ls" -l no-trunc -d 'Full image ids'
complete -c iimage -n "__fish_iimage_using_subcommand ls" -l digests -d 'Show the manifest digest in the table'
complete -c iimage -n "__fish_iimage_using_subcommand ls" -s a -l all -d 'All images (docker\'s intermediate images: the store keeps none, so the same list)'
complete -c iimage -n "__fish_iimage_using_subcommand ls" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand inspect" -s f -l format -d 'A Go template applied to each image (`{{json .Config.Env}}`)' -r
complete -c iimage -n "__fish_iimage_using_subcommand inspect" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand inspect" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand inspect" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand inspect" -l raw -d 'imago\'s stored view instead: the OCI manifest and config as stored, with the index and manifest digests'
complete -c iimage -n "__fish_iimage_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand rm" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand rm" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand rm" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand rm" -s f -l force -d 'Delete an image by id even when it has several names'
complete -c iimage -n "__fish_iimage_using_subcommand rm" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand prune" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand prune" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand prune" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand prune" -s f -l force -d 'Do not ask (kept for docker compatibility; iimage never asks)'
complete -c iimage -n "__fish_iimage_using_subcommand prune" -s a -l all -d 'Remove every image no container was made from, not only unnamed ones'
complete -c iimage -n "__fish_iimage_using_subcommand prune" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand import" -s c -l change -d 'Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME (repeatable)' -r
complete -c iimage -n "__fish_iimage_using_subcommand import" -s m -l message -d 'A comment for the image\'s history' -r
complete -c iimage -n "__fish_iimage_using_subcommand import" -l max-size -d 'Size cap of the unpacked layer, bytes (default 64 GiB)' -r
complete -c iimage -n "__fish_iimage_using_subcommand import" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand import" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand import" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand import" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand export" -s o -l output -d 'Write to FILE instead of stdout' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand export" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand export" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand export" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand export" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand squash" -s o -l output -d 'The file to write (replaced atomically)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand squash" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand squash" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand squash" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand squash" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand save" -s o -l output -d 'Write to FILE instead of stdout' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand save" -l format -d 'docker-archive or oci-archive' -r
complete -c iimage -n "__fish_iimage_using_subcommand save" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand save" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand save" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand save" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand load" -s i -l input -d 'Read from FILE instead of stdin' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand load" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand load" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand load" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand load" -s q -l quiet -d 'Print only the image ids'
complete -c iimage -n "__fish_iimage_using_subcommand load" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand fsck" -l format -r -f -a "table\t'A human table, aligned columns'
json\t'One JSON document on stdout'"
complete -c iimage -n "__fish_iimage_using_subcommand fsck" -l wait -d 'With --repair: seconds to wait for running writers before giving up' -r
complete -c iimage -n "__fish_iimage_using_subcommand fsck" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand fsck" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand fsck" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand fsck" -l repair -d 'Take out what is damaged: damaged blobs deleted, images missing a part dropped (their names are listed: pull or load them again), broken unpacked layers removed; then gc'
complete -c iimage -n "__fish_iimage_using_subcommand fsck" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c iimage -n "__fish_iimage_using_subcommand gc" -l wait -d 'Seconds to wait for running builds, imports, loads and pulls before giving up (writers that start meanwhile wait for the gc)' -r
complete -c iimage -n "__fish_iimage_using_subcommand gc" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand gc" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand gc" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand gc" -l layers -d 'Also remove unpacked layers images still use (unpacked again when needed)'
complete -c iimage -n "__fish_iimage_using_subcommand gc" -l dry-run -d 'Show what would be removed'
complete -c iimage -n "__fish_iimage_using_subcommand gc" -l build-cache -d 'Also drop every build cache entry'
complete -c iimage -n "__fish_iimage_using_subcommand gc" -l force -d 'Collect a store that has damaged manifests or configs (deletes what only they reference); without it gc refuses such a store'
complete -c iimage -n "__fish_iimage_using_subcommand gc" -s h -l help -d 'Print help'
complete -c iimage -n "__fish_iimage_using_subcommand info" -l format -r -f -a "table\t'A human table, aligned columns'
json\t'One JSON document on stdout'"
complete -c iimage -n "__fish_iimage_using_subcommand info" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand info" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c iimage -n "__fish_iimage_using_subcommand info" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c iimage -n "__fish_iimage_using_subcommand info" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "ls" -d 'List images (REPOSITORY TAG IMAGE ID CREATED SIZE)'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "inspect" -d 'Show images as a JSON array in docker\'s shape (Id, RepoTags, Config, RootFS...)'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "rm" -d 'Remove images: by name, untag it (and delete the image with its last name); by id, delete the image (-f when it has several names)'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "prune" -d 'Remove images without a name (-a: every image no container uses), then collect garbage'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "import" -d 'Make a one-layer image from a root file system tarball or directory'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "export" -d 'Write an image\'s flattened root file system as a tar'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "squash" -d 'Write an image as a single-file squashfs (zstd) that `irun FILE.sqsh` runs'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "save" -d 'Write images to an archive (docker-archive by default; podman/docker load it)'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "load" -d 'Load images from an archive (docker-archive or oci-archive, detected)'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "fsck" -d 'Check every blob\'s digest and every reference of the store'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "gc" -d 'Remove unreferenced blobs, unused unpacked layers and debris of killed processes'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "info" -d 'Show the store and what this host allows (user namespaces, overlay, FUSE, id mapping), with a fix for each missing item'
complete -c iimage -n "__fish_iimage_using_subcommand help; and not __fish_seen_subcommand_from ls inspect rm prune import export squash save load fsck gc info help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

# Image and container names from the store (imago's addition to clap's script; see
# xtask/src/names.rs): a positional IMAGE or CONTAINER completes from `iimage ls` or
# `ictr ps -a`, bounded in time and count, quiet on error.
function __imago_store_names
    set -l root
    test -n "$argv[2]"; and set root --root $argv[2]
    switch $argv[1]
        case i
            command timeout 5 iimage $root ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | string match -v -- '*<none>*' | head -n 2000
        case c
            command timeout 5 ictr $root ps -a --format '{{.Names}}' 2>/dev/null | head -n 2000
    end
end

# Prints the kind (i or c) and the line's --root when the word being completed is a
# name slot of iimage; fails otherwise.
function __iimage_imago_slot
    set -l words (commandline -opc)
    set -l has_verbs '1'
    set -l spec
    set -l vopts --root --log-level --additional-store
    set -l verb ''
    set -l n 0
    set -l skip 0
    set -l want_root 0
    set -l root ''
    for w in $words[2..]
        if test $want_root = 1
            set root $w
            set want_root 0
        end
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case '--root=*'
                set root (string replace -- '--root=' '' $w)
            case '--*=*'
            case '-*'
                test $w = --root; and set want_root 1
                contains -- $w $vopts; and set skip 1
            case '*'
                if test -n "$has_verbs" -a -z "$verb"
                    set verb $w
                    set spec
                    switch $verb
                    case inspect
                        set spec 0:i+
                        set -a vopts -f --format --root --log-level --additional-store
                    case rm rmi
                        set spec 0:i+
                        set -a vopts --root --log-level --additional-store
                    case export
                        set spec 0:i
                        set -a vopts -o --output --root --log-level --additional-store
                    case squash
                        set spec 0:i
                        set -a vopts -o --output --root --log-level --additional-store
                    case save
                        set spec 0:i+
                        set -a vopts -o --output --format --root --log-level --additional-store
                    end
                else
                    set n (math $n + 1)
                end
        end
    end
    if test -n "$has_verbs" -a -z "$verb"
        return 1
    end
    string match -q -- '-*' (commandline -ct); and return 1
    set -l kind ''
    for s in $spec
        set -l parts (string split : $s)
        set -l k (string replace + '' $parts[2])
        if test $parts[1] -eq $n
            set kind $k
        else if string match -q '*+' $s; and test $parts[1] -le $n
            set kind $k
        end
    end
    test -n "$kind"; or return 1
    echo $kind
    echo $root
end

complete -c iimage -n '__iimage_imago_slot >/dev/null' -f -a '(__imago_store_names (__iimage_imago_slot))'
