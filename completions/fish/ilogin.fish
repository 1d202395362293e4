complete -c ilogin -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ilogin -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ilogin -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ilogin -l tls-verify -d 'Verify TLS (default: yes, except for localhost/127.0.0.1, which may also use plain HTTP)' -r -f -a "true\t''
false\t''"
complete -c ilogin -l cert-dir -d 'Directory of CA files (`*.crt`) for the registry, instead of the certs.d search' -r -F
complete -c ilogin -l authfile -d 'Credentials file (default: $REGISTRY_AUTH_FILE, then podman\'s and docker\'s files)' -r -F
complete -c ilogin -l creds -d 'USER:PASSWORD to use instead of stored credentials' -r
complete -c ilogin -s u -l username -d 'User name (asked for on a terminal when missing)' -r
complete -c ilogin -s p -l password -d 'Password (prefer --password-stdin: arguments show in `ps`)' -r
complete -c ilogin -l password-stdin -d 'Read the password from stdin (one line)'
complete -c ilogin -l logout -d 'Remove the stored credentials instead'
complete -c ilogin -s h -l help -d 'Print help'
complete -c ilogin -s V -l version -d 'Print version'
