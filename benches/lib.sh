# shellcheck shell=bash
# lib.sh — what the rootless benches share; sourced (`. benches/lib.sh`), never run.
# Owns: the bench user (root runs the script, the tools run as BENCH_USER), its fresh
# work dir under $IMAGO_TEST_TMP, running a command as that user (`asu`), and rootless
# podman's config inside that dir. Never: builds, measures or prints results.
#
#   bench_user NAME      as root; U=$BENCH_USER (default imago-sub), must exist; GID_.
#   bench_workdir DIR    W=$IMAGO_TEST_TMP/DIR-$U, fresh, with logs/, home/ and run/
#                        (0700, the user's XDG_RUNTIME_DIR); ENVU: the user's env.
#   asu CMD...           run CMD as U in W with ENVU.
#   podman_conf          storage.conf/containers.conf for U: storage in W, cgroupfs.
#   podman_end_pause     end the pause process rootless podman leaves behind.

# Diagnostics on stderr, so stdout stays the results.
log() { printf '== %s\n' "$*" >&2; }

bench_user() {
  local me=$1
  [ "$(id -u)" = 0 ] || { echo "$me: run as root (it prepares dirs and runs as \$BENCH_USER)" >&2; exit 1; }
  U=${BENCH_USER:-imago-sub}
  id "$U" >/dev/null 2>&1 || { echo "$me: user $U missing: run scripts/setup-host.sh" >&2; exit 1; }
  GID_=$(id -g "$U")
}

bench_workdir() {
  # A tmpfs in our setup: the root ext4 of our VMs is slow at small writes.
  local base=${IMAGO_TEST_TMP:-/var/tmp/imago-test}
  install -d -m 1777 "$base"
  W=$base/$1-$U; rm -rf "$W"; install -d -o "$U" -g "$GID_" "$W" "$W/logs" "$W/home" "$W/run"
  chmod 700 "$W/run"
  ENVU=(env -i HOME="$W/home" USER="$U" LOGNAME="$U" LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        XDG_RUNTIME_DIR="$W/run" IMAGO_ROOT="$W/store")
}

asu() { (cd "$W" && runuser -u "$U" -- "${ENVU[@]}" "$@"); }

# No systemd here (cgroupfs, events to a file), and nothing of podman outside $W.
podman_conf() {
  install -d -o "$U" -g "$GID_" "$W/home/.config/containers"
  cat > "$W/home/.config/containers/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$W/podman/storage"
runroot = "$W/run/containers"
CONF
  cat > "$W/home/.config/containers/containers.conf" <<'CONF'
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  chown -R "$U:$GID_" "$W/home"
}

# Rootless podman leaves a pause process holding its user namespace: end ours.
podman_end_pause() {
  if [ -s "$W/run/libpod/tmp/pause.pid" ]; then kill "$(cat "$W/run/libpod/tmp/pause.pid")" 2>/dev/null || true; fi
}
