complete -c irun -l root -d 'Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)' -r -F
complete -c irun -l log-level -d 'Log level: error, warn, info, debug, trace (or a tracing filter)' -r
complete -c irun -l additional-store -d 'A shared read-only store whose images are used in place, after your own store\'s (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key additional_stores)' -r -F
complete -c irun -l name -d 'Assign a name to the container' -r
complete -c irun -s e -l env -d 'Set environment variables (K=V, or K to pass irun\'s own value)' -r
complete -c irun -l env-file -d 'Read environment variables from a file (K=V lines, # comments)' -r -F
complete -c irun -s w -l workdir -d 'Working directory inside the container (created if missing)' -r
complete -c irun -s u -l user -d 'User: name|uid[:group|gid]' -r
complete -c irun -l entrypoint -d 'Overwrite the image\'s ENTRYPOINT ("" clears it)' -r
complete -c irun -l hostname -d 'Container host name (default: the short container id)' -r
complete -c irun -s v -l volume -d 'Bind mount a host path: HOST:CONTAINER[:ro]' -r
complete -c irun -l mount -d 'Attach a mount: type=bind,source=…,target=…[,readonly] | type=tmpfs,target=…' -r
complete -c irun -l tmpfs -d 'Mount a tmpfs: /path[:options]' -r
complete -c irun -l device -d 'Add a host device (HOST[:CONTAINER][:PERMS], bound from the host; PERMS is not enforced) or a CDI device (vendor.com/class=name, or =all) from the specs in /etc/cdi and /var/run/cdi ($IMAGO_CDI_SPEC_DIRS); repeatable' -r
complete -c irun -l cap-add -d 'Add a capability (e.g. NET_ADMIN, ALL)' -r
complete -c irun -l cap-drop -d 'Drop a capability (e.g. CHOWN, ALL)' -r
complete -c irun -l security-opt -d 'Security options: no-new-privileges[:true|false], seccomp=unconfined, seccomp=FILE (a docker/OCI seccomp profile, JSON; default: docker\'s). As root, seccomp=unconfined with --cap-add SYS_ADMIN is as strong as --privileged' -r
complete -c irun -l network -l net -d 'Network: host (the host\'s), none (only a loopback interface) or private (a namespace of its own with outbound access through pasta or slirp4netns). Default: host, but private with -d, -p or -P' -r
complete -c irun -s p -l publish -d 'Publish a container port on the host: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp] (ranges A-B too; no HOST_PORT: a free one); repeatable' -r
complete -c irun -l pull -d 'When to pull the image from its registry: missing (only when the store has none), always, never' -r -f -a "missing\t''
always\t''
never\t''"
complete -c irun -l platform -d 'Platform to run (OS/ARCH[/VARIANT]): picked from a multi-platform image when it is pulled; an image in the store of another platform is pulled again' -r
complete -c irun -l userns -d 'User namespace mode: keep-id (inside you are your own uid and gid, with your groups; root stays root)' -r
complete -c irun -l pid -d 'PID namespace: host (see and signal the host\'s processes; no init as pid 1) or private (default)' -r
complete -c irun -l ipc -d 'IPC namespace: host (the host\'s SysV IPC and /dev/shm) or private (default)' -r
complete -c irun -l rootfs -d 'Run a directory as the container\'s (read-only, overlaid) root instead of an image' -r -F
complete -c irun -l storage-driver -d 'How the container\'s root is made: overlay (kernel overlayfs in a user namespace), fuse, or copy (a private copy of the image: slow, for hosts without either). Default: $IMAGO_STORAGE_DRIVER, else the config key storage_driver, else what this host supports' -r
complete -c irun -l pids-limit -d 'Limit the container\'s processes and threads (0 or -1: no limit). Needs a cgroup: root on cgroup v1, or a delegated cgroup v2 (see docs/irun.md)' -r
complete -c irun -s m -l memory -d 'Limit the container\'s memory (b, k, m, g; at least 6m); no swap on top: over it, the kernel kills the biggest process (exit 137). Needs a cgroup, as --pids-limit' -r
complete -c irun -l cpus -d 'Limit the container\'s CPU time to N CPUs (e.g. 1.5). Needs a cgroup, as --pids-limit' -r
complete -c irun -l rm -d 'Remove the container when it exits'
complete -c irun -s d -l detach -d 'Run the container in the background and print its id (its monitor keeps it; see `ictr`)'
complete -c irun -s i -l interactive -d 'Keep STDIN open (otherwise the container reads /dev/null)'
complete -c irun -s t -l tty -d 'Allocate a pseudo-TTY'
complete -c irun -l read-only -d 'Mount the container\'s root file system read-only'
complete -c irun -l privileged -d 'All capabilities (of the user namespace), no seccomp, no masked or read-only paths. Run by root this is host root, as docker\'s --privileged: the container can write host-wide sysctls (/proc/sys), remount /sys read-write and change kernel.core_pattern. Run by any other user it stays within that user\'s rights'
complete -c irun -s P -l publish-all -d 'Publish every port the image EXPOSEs on a free host port'
complete -c irun -l no-init -d 'Do not run an init as pid 1 (the command becomes pid 1)'
complete -c irun -l env-host -d 'Pass the host\'s environment in, but PATH, HOME, HOSTNAME, PWD, LD_* and a few more (see docs/irun.md); -e and --env-file win'
complete -c irun -l bind-home -d 'Bind your $HOME at the same path (read-write) and set HOME to it'
complete -c irun -l bind-cwd -d 'Bind the current directory at the same path and make it the working directory'
complete -c irun -l hpc -d 'The HPC profile: --userns keep-id --pid host --ipc host --network host --env-host --bind-cwd, the host\'s /tmp, $TMPDIR and name, and NUMA calls (SYS_NICE); for MPI ranks and Slurm tasks'
complete -c irun -s h -l help -d 'Print help'
complete -c irun -s V -l version -d 'Print version'

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
# name slot of irun; fails otherwise.
function __irun_imago_slot
    set -l words (commandline -opc)
    set -l has_verbs ''
    set -l spec 0:i
    set -l vopts --root --log-level --additional-store --name -e --env --env-file -w --workdir -u --user --entrypoint --hostname -v --volume --mount --tmpfs --device --cap-add --cap-drop --security-opt --network --net -p --publish --pull --platform --userns --pid --ipc --rootfs --storage-driver --pids-limit -m --memory --cpus
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

complete -c irun -n '__irun_imago_slot >/dev/null' -f -a '(__imago_store_names (__irun_imago_slot))'
