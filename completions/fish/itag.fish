complete -c itag -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c itag -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c itag -s h -l help -d 'Print help'
complete -c itag -s V -l version -d 'Print version'
