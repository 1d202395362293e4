#!/usr/bin/env bash
# setup-host.sh — prepare a fresh Debian 12 machine for imago's tests and demo (run as root).
# Idempotent. Installs the packages the tests use (mmdebstrap makes the Debian base image
# of the tutorial's examples), creates the two unprivileged test users
# (imago-sub with a subuid/subgid range, imago-nosub without), opens /dev/fuse and
# /dev/net/tun (no udev on our VMs) and makes podman usable rootless for interop tests.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup-host.sh: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

PKGS=(build-essential pkg-config busybox-static uidmap skopeo umoci podman crun fuse-overlayfs
      fuse3 docker-registry apache2-utils jq curl tmux util-linux passt slirp4netns openssl
      ca-certificates libssl-dev time mmdebstrap groff-base
      fish  # the fish name completion test (tests/it/completion_names.rs)
      zsh  # the zsh name completion test (tests/it/completion_zsh.rs)
      slurm-wlm slurmctld slurmd slurm-client munge
      openmpi-bin libopenmpi-dev  # mpirun and mpicc for the MPI tests (tests/it/mpi.rs)
      squashfs-tools)  # unsquashfs/mksquashfs cross-check the .sqsh writer and reader
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  # Slurm and munge: their postinsts start daemons through invoke-rc.d, which we could
  # not stop cleanly; scripts/slurm-start.sh starts them itself. A policy-rc.d that
  # exits 101 denies every start during the install (docker images ship one).
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  apt-get install -y -qq conmon containers-common catatonit >/dev/null 2>&1 || true
  [ "$made_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi

# Test users. Debian's useradd gives every new user a subuid range: keep it for imago-sub,
# remove it for imago-nosub (the HPC case).
for u in imago-sub imago-nosub; do
  id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"
done
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  grep -q '^imago-sub:' "$f" || echo "imago-sub:200000:65536" >> "$f"
  sed -i '/^imago-nosub:/d' "$f"
done

# Device nodes: no udev here, so both come up 0600 root.
[ -e /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229
chmod 666 /dev/fuse
[ -e /dev/net/tun ] || { mkdir -p /dev/net; mknod -m 666 /dev/net/tun c 10 200; }
chmod 666 /dev/net/tun

# cgroup v1 "hybrid" with hugetlb on v2: crun (podman's runtime) refuses that layout.
# Binding hugetlb to a v1 hierarchy leaves v2 without controllers. imago itself needs no cgroups.
# (cgroupfs files report size 0, so read the file rather than testing its size.)
if grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null \
   && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || echo "WARN: could not move hugetlb to v1" >&2
fi

# Rootless podman for interop tests: a runtime dir (no logind), cgroupfs, file events,
# the kernel overlay driver.
for u in imago-sub imago-nosub; do
  uid=$(id -u "$u"); home=$(getent passwd "$u" | cut -d: -f6)
  install -d -m 700 -o "$u" -g "$u" "/run/user/$uid"
  install -d -o "$u" -g "$u" "$home/.config" "$home/.config/containers"
  printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$home/.config/containers/containers.conf"
  printf '[storage]\ndriver = "overlay"\n' > "$home/.config/containers/storage.conf"
  chown -R "$u:$u" "$home/.config"
done
echo "setup-host: done"
