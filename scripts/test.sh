#!/usr/bin/env bash
# test.sh — the test command: prepares the machine (as root), builds the workspace once,
# and runs every test: unit tests and the integration tests that drive the real binaries
# as root and as the unprivileged users imago-sub and imago-nosub.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  scripts/setup-host.sh
  # A real one-node Slurm on loopback for tests/it/slurm.rs; it stays up after the
  # tests (scripts/slurm-stop.sh stops it).
  scripts/slurm-start.sh
  # File-heavy tests run on a tmpfs: the root ext4 of our VMs slows down at small-file writes.
  export IMAGO_TEST_TMP=${IMAGO_TEST_TMP:-/var/tmp/imago-test}
  install -d -m 1777 "$IMAGO_TEST_TMP"
  mountpoint -q "$IMAGO_TEST_TMP" || mount -t tmpfs -o size=8g,mode=1777 tmpfs "$IMAGO_TEST_TMP"
else
  echo "test.sh: not root: the unprivileged-user variants of the integration tests are skipped" >&2
fi
# Skips that cannot apply to a user (not host problems) are listed here at the end;
# with IMAGO_TEST_STRICT=1 (CI) any other skip fails its test.
IMAGO_SKIP_LOG=$(mktemp /tmp/imago-skips.XXXXXX)
export IMAGO_SKIP_LOG
chmod 666 "$IMAGO_SKIP_LOG"
cargo build --workspace --all-targets --locked
status=0
cargo test --workspace --locked --no-fail-fast -- --test-threads="${IMAGO_TEST_THREADS:-2}" || status=$?
# The build and run tests again on each fallback storage driver (docs/store.md): the FUSE
# overlay and the copy driver must behave as kernel overlayfs does.
# (`ictr commit` refuses copy-driver containers: its tests run on the FUSE pass only.)
for driver in fuse copy; do
  echo "== build and run tests with --storage-driver $driver"
  only_fuse=""; [ "$driver" = fuse ] && only_fuse="ictr_commit::"
  IMAGO_TEST_STORAGE_DRIVER=$driver cargo test --locked --no-fail-fast -p imago-it --test it -- \
    --test-threads="${IMAGO_TEST_THREADS:-2}" ibuild:: ibuild_regress:: irun:: ictr:: ictr_exec:: single_map:: mpi:: hpc_mode:: \
    $only_fuse || status=$?
done
echo "inherent skips (cannot apply to that user; not failures):"
sort "$IMAGO_SKIP_LOG" | uniq -c | sed 's/^/  /'
rm -f "$IMAGO_SKIP_LOG"
exit "$status"
