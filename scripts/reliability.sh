#!/bin/sh
# The reliability campaign, with counts, and one table of what it found.
#
#   scripts/reliability.sh [RUNS]        (as root; not part of CI)
#
# Builds the release binaries and the integration tests, then runs the campaign tests
# with IMAGO_CAMPAIGN_RUNS=RUNS (default 50: 50 SIGKILLs per command, 20 full-disk runs,
# 20 storms; the registry-fault and resource-limit tests scale their counts from the same
# variable): tests/it/reliability*.rs, and registry_faults*.rs and limits*.rs when they
# exist. Every test prints one line per scenario on stderr,
#   CAMPAIGN scenario=<name> runs=<n> failures=<n> lost=<n>
# (lost: corrupt stores + lost tags + bad blobs stored); this script collects them and
# prints the table. The full log is kept in $IMAGO_TEST_TMP/reliability-<date>.log.
# IMAGO_CAMPAIGN_SEED=N replays the random moments of a run (each scenario prints its
# seed as `CAMPAIGN-SEED`). IMAGO_CAMPAIGN_PROFILE=dev uses the debug build instead of
# the release build (quicker to build while working on it). Exit status: 0 when every
# scenario ran with 0 failures and 0 lost, 1 otherwise.
set -eu

runs=${1:-50}
case $runs in
'' | *[!0-9]*)
	echo "usage: $0 [RUNS]" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "$0: run as root: the campaign runs as root, imago-sub and imago-nosub and mounts small file systems" >&2
	exit 2
fi
cd "$(dirname "$0")/.."
export IMAGO_TEST_TMP="${IMAGO_TEST_TMP:-/var/tmp/imago-test}"
mkdir -p "$IMAGO_TEST_TMP"
log="$IMAGO_TEST_TMP/reliability-$(date -u +%Y%m%dT%H%M%SZ).log"

case ${IMAGO_CAMPAIGN_PROFILE:-release} in
release) profile=--release ;;
dev) profile= ;;
*)
	echo "$0: IMAGO_CAMPAIGN_PROFILE is release or dev" >&2
	exit 2
	;;
esac
echo "building the binaries and the integration tests (${IMAGO_CAMPAIGN_PROFILE:-release}) ..." >&2
# shellcheck disable=SC2086 # empty for the dev profile
cargo build --workspace $profile --bins
# shellcheck disable=SC2086
cargo test $profile -p imago-it --test it --no-run

# The campaign modules present in this checkout.
filters=""
for f in tests/it/reliability*.rs tests/it/registry_faults*.rs tests/it/limits*.rs; do
	[ -e "$f" ] || continue
	m=$(basename "$f" .rs)
	case $m in *_support) continue ;; esac
	filters="$filters $m::"
done
echo "campaign: IMAGO_CAMPAIGN_RUNS=$runs over$filters; log: $log" >&2

status=0
# One test at a time: the scenarios measure durations and race processes of their own.
# shellcheck disable=SC2086 # the filters are words
IMAGO_CAMPAIGN_RUNS=$runs cargo test $profile -p imago-it --test it -- \
	--nocapture --test-threads 1 $filters >"$log" 2>&1 || status=1

# -o: a line may follow libtest's `test NAME ... ` on the same line.
grep -o 'CAMPAIGN scenario=[^ ]* runs=[0-9]* failures=[0-9]* lost=[0-9]*' "$log" | awk '
BEGIN { printf "%-40s %6s %9s %10s\n", "scenario", "runs", "failures", "data lost" }
{
	for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	printf "%-40s %6d %9d %10d\n", v["scenario"], v["runs"], v["failures"], v["lost"]
	r += v["runs"]; f += v["failures"]; l += v["lost"]; n++
}
END {
	printf "%-40s %6d %9d %10d\n", "total (" n " scenarios)", r, f, l
	if (n == 0) exit 1
}' || status=1
grep -E '^(test result|failures:|    [a-z_]+::)' "$log" >&2 || true
[ $status = 0 ] || echo "$0: something failed; see $log" >&2
exit $status
