complete -c ipush -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ipush -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ipush -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ipush -l tls-verify -d 'Verify TLS (default: yes, except for localhost/127.0.0.1, which may also use plain HTTP)' -r -f -a "true\t''
false\t''"
complete -c ipush -l cert-dir -d 'Directory of CA files (`*.crt`) for the registry, instead of the certs.d search' -r -F
complete -c ipush -l authfile -d 'Credentials file (default: $REGISTRY_AUTH_FILE, then podman\'s and docker\'s files)' -r -F
complete -c ipush -l creds -d 'USER:PASSWORD to use instead of stored credentials' -r
complete -c ipush -l compression -d 'Layer compression to push (recompresses layers stored otherwise; default: as stored)' -r -f -a "gzip\t''
zstd\t''"
complete -c ipush -l format -d 'Manifest format to push (default: as stored)' -r -f -a "oci\t''
docker\t'Docker schema 2 (alias: v2s2)'"
complete -c ipush -l jobs -d 'Blobs uploaded at once' -r
complete -c ipush -l chunk-size -d 'Upload blobs in chunks of this many bytes (default: one PUT per blob up to 128 MiB, 64 MiB chunks for larger blobs, so that a killed push can resume)' -r
complete -c ipush -l digestfile -d 'Write the pushed manifest digest to this file' -r -F
complete -c ipush -l no-mount -d 'Do not try cross-repository mounts'
complete -c ipush -s q -l quiet -d 'No progress output'
complete -c ipush -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ipush -s V -l version -d 'Print version'

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
# name slot of ipush; fails otherwise.
function __ipush_imago_slot
    set -l words (commandline -opc)
    set -l has_verbs ''
    set -l spec 0:i
    set -l vopts --root --log-level --additional-store --cert-dir --authfile --creds --compression --format --jobs --chunk-size --digestfile
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

complete -c ipush -n '__ipush_imago_slot >/dev/null' -f -a '(__imago_store_names (__ipush_imago_slot))'
