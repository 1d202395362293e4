complete -c ipull -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ipull -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ipull -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ipull -l tls-verify -d 'Verify TLS (default: yes, except for localhost/127.0.0.1, which may also use plain HTTP)' -r -f -a "true\t''
false\t''"
complete -c ipull -l cert-dir -d 'Directory of CA files (`*.crt`) for the registry, instead of the certs.d search' -r -F
complete -c ipull -l authfile -d 'Credentials file (default: $REGISTRY_AUTH_FILE, then podman\'s and docker\'s files)' -r -F
complete -c ipull -l creds -d 'USER:PASSWORD to use instead of stored credentials' -r
complete -c ipull -l platform -d 'Platform to pick from a multi-platform image (OS/ARCH[/VARIANT]; default: this host\'s)' -r
complete -c ipull -l jobs -d 'Blobs fetched at once' -r
complete -c ipull -s q -l quiet -d 'No progress output'
complete -c ipull -s h -l help -d 'Print help'
complete -c ipull -s V -l version -d 'Print version'
