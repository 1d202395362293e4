# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ictr_global_optspecs
    string join \n root= log-level= additional-store= h/help V/version
end

function __fish_ictr_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ictr_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ictr_using_subcommand
    set -l cmd (__fish_ictr_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ictr -n "__fish_ictr_needs_command" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_needs_command" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_needs_command" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_needs_command" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_needs_command" -s V -l version -d 'Print version'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "ps" -d 'List containers'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "logs" -d 'Print a container\'s output'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "stop" -d 'Stop running containers (the stop signal, then SIGKILL after a timeout)'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "kill" -d 'Send a signal to running containers'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "rm" -d 'Remove containers'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "inspect" -d 'Show containers as JSON (docker\'s shape)'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "start" -d 'Start stopped containers again'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "wait" -d 'Wait until containers end and print their exit codes'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "port" -d 'List a container\'s published ports'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "attach" -d 'Attach to a running container\'s terminal or output'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "exec" -d 'Run a command in a running container'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "commit" -d 'Create a new image from a container\'s changes'
complete -c ictr -n "__fish_ictr_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ictr -n "__fish_ictr_using_subcommand ps" -s n -l last -d 'Show the last N created containers (all states)' -r
complete -c ictr -n "__fish_ictr_using_subcommand ps" -l format -d 'table, json (one object per line) or a Go template (`{{.Names}} {{.Status}}`, `table {{.ID}}\\t{{.Names}}`); fields: ID, Image, Command, CreatedAt, RunningFor, Status, Ports, Names, State, Labels' -r
complete -c ictr -n "__fish_ictr_using_subcommand ps" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand ps" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand ps" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand ps" -s a -l all -d 'Show all containers (default: running ones)'
complete -c ictr -n "__fish_ictr_using_subcommand ps" -s q -l quiet -d 'Only container ids'
complete -c ictr -n "__fish_ictr_using_subcommand ps" -l no-trunc -d 'Do not truncate ids and commands'
complete -c ictr -n "__fish_ictr_using_subcommand ps" -s l -l latest -d 'Show the latest created container (all states)'
complete -c ictr -n "__fish_ictr_using_subcommand ps" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand logs" -s n -l tail -d 'Only the last N lines ("all" for all)' -r
complete -c ictr -n "__fish_ictr_using_subcommand logs" -l since -d 'Only lines since this time: RFC 3339, Unix seconds, or relative (10m, 1h30m)' -r
complete -c ictr -n "__fish_ictr_using_subcommand logs" -l until -d 'Only lines before this time (same forms as --since)' -r
complete -c ictr -n "__fish_ictr_using_subcommand logs" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand logs" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand logs" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand logs" -s f -l follow -d 'Follow the output until the container ends'
complete -c ictr -n "__fish_ictr_using_subcommand logs" -s t -l timestamps -d 'Show each line\'s time'
complete -c ictr -n "__fish_ictr_using_subcommand logs" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand stop" -s t -l time -l timeout -d 'Seconds to wait before SIGKILL' -r
complete -c ictr -n "__fish_ictr_using_subcommand stop" -s s -l signal -d 'The signal to stop with (default: the image\'s STOPSIGNAL, else SIGTERM)' -r
complete -c ictr -n "__fish_ictr_using_subcommand stop" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand stop" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand stop" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand stop" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand kill" -s s -l signal -d 'The signal: a name (KILL, SIGTERM) or a number' -r
complete -c ictr -n "__fish_ictr_using_subcommand kill" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand kill" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand kill" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand kill" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand rm" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand rm" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand rm" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand rm" -s f -l force -d 'Kill a running container first (and ignore missing ones)'
complete -c ictr -n "__fish_ictr_using_subcommand rm" -s v -l volumes -d 'Accepted for docker compatibility (imago has no anonymous volumes)'
complete -c ictr -n "__fish_ictr_using_subcommand rm" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand inspect" -s f -l format -d 'A Go template applied to each container (`{{.State.Status}}`)' -r
complete -c ictr -n "__fish_ictr_using_subcommand inspect" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand inspect" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand inspect" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand start" -l detach-keys -d 'The keys that detach (with -a and a terminal)' -r
complete -c ictr -n "__fish_ictr_using_subcommand start" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand start" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand start" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand start" -s a -l attach -d 'Attach to the container\'s output (or terminal) and exit with its code'
complete -c ictr -n "__fish_ictr_using_subcommand start" -s i -l interactive -d 'Pass our input to the container\'s terminal (with -a)'
complete -c ictr -n "__fish_ictr_using_subcommand start" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand wait" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand wait" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand wait" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand wait" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand port" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand port" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand port" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand port" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand attach" -l detach-keys -d 'The keys that detach: ctrl-<key> or single characters, comma separated' -r
complete -c ictr -n "__fish_ictr_using_subcommand attach" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand attach" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand attach" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand attach" -l no-stdin -d 'Do not send our input to the container'
complete -c ictr -n "__fish_ictr_using_subcommand attach" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand exec" -s e -l env -d 'Set environment variables (K=V, or K to pass ictr\'s own value)' -r
complete -c ictr -n "__fish_ictr_using_subcommand exec" -l env-file -d 'Read environment variables from a file (K=V lines, # comments)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand exec" -s w -l workdir -d 'Working directory inside the container (default: the container\'s)' -r
complete -c ictr -n "__fish_ictr_using_subcommand exec" -s u -l user -d 'User: name|uid[:group|gid] (default: the container\'s)' -r
complete -c ictr -n "__fish_ictr_using_subcommand exec" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand exec" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand exec" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand exec" -s i -l interactive -d 'Keep STDIN open (otherwise the command reads /dev/null)'
complete -c ictr -n "__fish_ictr_using_subcommand exec" -s t -l tty -d 'Allocate a pseudo-TTY'
complete -c ictr -n "__fish_ictr_using_subcommand exec" -s d -l detach -d 'Detached mode: start the command and return (its output is discarded)'
complete -c ictr -n "__fish_ictr_using_subcommand exec" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand commit" -s a -l author -d 'The image\'s author (`Jane <jane@example.com>`)' -r
complete -c ictr -n "__fish_ictr_using_subcommand commit" -s c -l change -d 'A Dockerfile instruction applied to the image\'s config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR (repeatable)' -r
complete -c ictr -n "__fish_ictr_using_subcommand commit" -s m -l message -d 'A commit message (the history entry\'s comment)' -r
complete -c ictr -n "__fish_ictr_using_subcommand commit" -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand commit" -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c ictr -n "__fish_ictr_using_subcommand commit" -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c ictr -n "__fish_ictr_using_subcommand commit" -s h -l help -d 'Print help'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "ps" -d 'List containers'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "logs" -d 'Print a container\'s output'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "stop" -d 'Stop running containers (the stop signal, then SIGKILL after a timeout)'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "kill" -d 'Send a signal to running containers'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "rm" -d 'Remove containers'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "inspect" -d 'Show containers as JSON (docker\'s shape)'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "start" -d 'Start stopped containers again'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "wait" -d 'Wait until containers end and print their exit codes'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "port" -d 'List a container\'s published ports'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "attach" -d 'Attach to a running container\'s terminal or output'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "exec" -d 'Run a command in a running container'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "commit" -d 'Create a new image from a container\'s changes'
complete -c ictr -n "__fish_ictr_using_subcommand help; and not __fish_seen_subcommand_from ps logs stop kill rm inspect start wait port attach exec commit help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

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
# name slot of ictr; fails otherwise.
function __ictr_imago_slot
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
                    case logs
                        set spec 0:c
                        set -a vopts -n --tail --since --until --root --log-level --additional-store
                    case stop
                        set spec 0:c+
                        set -a vopts -t --time --timeout -s --signal --root --log-level --additional-store
                    case kill
                        set spec 0:c+
                        set -a vopts -s --signal --root --log-level --additional-store
                    case rm remove
                        set spec 0:c+
                        set -a vopts --root --log-level --additional-store
                    case inspect
                        set spec 0:c+
                        set -a vopts -f --format --root --log-level --additional-store
                    case start
                        set spec 0:c+
                        set -a vopts --detach-keys --root --log-level --additional-store
                    case wait
                        set spec 0:c+
                        set -a vopts --root --log-level --additional-store
                    case port
                        set spec 0:c
                        set -a vopts --root --log-level --additional-store
                    case attach
                        set spec 0:c
                        set -a vopts --detach-keys --root --log-level --additional-store
                    case exec
                        set spec 0:c
                        set -a vopts -e --env --env-file -w --workdir -u --user --root --log-level --additional-store
                    case commit
                        set spec 0:c
                        set -a vopts -a --author -c --change -m --message --root --log-level --additional-store
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

complete -c ictr -n '__ictr_imago_slot >/dev/null' -f -a '(__imago_store_names (__ictr_imago_slot))'
