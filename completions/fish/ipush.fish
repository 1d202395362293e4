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
complete -c ipush -l chunk-size -d 'Upload blobs larger than 32 MiB in chunks of this many bytes (default: one streamed PATCH)' -r
complete -c ipush -l digestfile -d 'Write the pushed manifest digest to this file' -r -F
complete -c ipush -l no-mount -d 'Do not try cross-repository mounts'
complete -c ipush -s q -l quiet -d 'No progress output'
complete -c ipush -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ipush -s V -l version -d 'Print version'
