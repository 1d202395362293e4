complete -c itag -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c itag -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c itag -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c itag -s h -l help -d 'Print help'
complete -c itag -s V -l version -d 'Print version'
