complete -c ibuild -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ibuild -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ibuild -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ibuild -s t -l tag -d 'Name (and optionally a tag) for the image: `name:tag` (repeatable)' -r
complete -c ibuild -s f -l file -d 'The Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/Containerfile); `-` reads stdin' -r
complete -c ibuild -l target -d 'The stage to build (default: the last one)' -r
complete -c ibuild -l build-arg -d 'A build-time variable: `K=V`, or `K` to take it from the environment (repeatable)' -r
complete -c ibuild -l iidfile -d 'Write the image id (`sha256:…`) to FILE once the build succeeds' -r -F
complete -c ibuild -l http-proxy -d 'Pass the host\'s proxy variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, … in either case) to RUN steps, as podman does; they stay out of the image\'s config, history and cache key. `--build-arg` of the same name wins' -r -f -a "true\t''
false\t''"
complete -c ibuild -l label -d 'Add a label to the image: `K=V` (repeatable)' -r
complete -c ibuild -l network -d 'Network for RUN steps' -r -f -a "host\t''
none\t''
private\t''
default\t''"
complete -c ibuild -l progress -d 'Progress display: `tty` (a spinner per step with its last output line), `plain` (one line per step and the RUN output as is), `auto` (tty when stderr is a terminal)' -r -f -a "auto\t''
plain\t''
tty\t''"
complete -c ibuild -l platform -d 'Target platform (OS/ARCH[/VARIANT]; default: this host\'s): TARGETPLATFORM, and the platform of stages without their own `FROM --platform`, whose base images are picked from a multi-platform image for it (a stored image of another platform is pulled again). RUN steps of a platform this host cannot run fail' -r
complete -c ibuild -l secret -d 'A secret for `RUN --mount=type=secret`: `id=NAME,src=FILE` (repeatable)' -r
complete -c ibuild -l source-date-epoch -d 'Clamp timestamps to this Unix time for reproducible images (default: $SOURCE_DATE_EPOCH)' -r
complete -c ibuild -l storage-driver -d 'How RUN steps get their root: overlay (kernel overlayfs in a user namespace), fuse, or copy (a private copy of the parent\'s layers: slow, for hosts without either). Default: $IMAGO_STORAGE_DRIVER, else the config key storage_driver, else what this host supports. The layers are the same with every driver' -r
complete -c ibuild -l no-cache -d 'Do not use the build cache'
complete -c ibuild -s q -l quiet -d 'Print only the image id (on stdout)'
complete -c ibuild -l pull -d 'Always pull base images from their registry (default: only when missing from the store)'
complete -c ibuild -s h -l help -d 'Print help'
complete -c ibuild -s V -l version -d 'Print version'
