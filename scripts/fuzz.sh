#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS each (default 600) and print one table:
# target, seconds, executions, crashes. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Not run by CI: CI runs the kept corpus as tests
# (tests/it/fuzz_corpus.rs).
#
# Env: FUZZ_JOBS (targets at once, default 1), FUZZ_TARGETS (space-separated subset),
# FUZZ_WORK (scratch for the growing corpus and logs, default
# ${IMAGO_TEST_TMP:-/var/tmp}/imago-fuzz), FUZZ_RSS_MB (default 2048).
# The kept corpus (fuzz/corpus/<target>/) is read, never written; a crash is saved in
# fuzz/artifacts/<target>/: minimise it, copy it into fuzz/corpus/<target>/, fix it.
set -euo pipefail
secs=${1:-600}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here/fuzz"
work=${FUZZ_WORK:-${IMAGO_TEST_TMP:-/var/tmp}/imago-fuzz}
jobs=${FUZZ_JOBS:-1}
rss=${FUZZ_RSS_MB:-2048}
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
mkdir -p "$work"
export IMAGO_FUZZ_TMP="$work/scratch"
mkdir -p "$IMAGO_FUZZ_TMP"
cargo +nightly fuzz build

run_one() {
    local t=$1
    mkdir -p "$work/corpus/$t" "artifacts/$t"
    local start=$SECONDS
    # A crash ends the run with a non-zero status: the table reports it.
    cargo +nightly fuzz run "$t" "$work/corpus/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb="$rss" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$work/$t.log" 2>&1 || true
    echo $((SECONDS - start)) >"$work/$t.secs"
}

running=0
for t in $targets; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

printf '%-18s %8s %12s %8s\n' target seconds executions crashes
for t in $targets; do
    log="$work/$t.log"
    execs=$(grep -oE 'number_of_executed_units: [0-9]+' "$log" | awk '{print $2}' | tail -1 || true)
    # Stopped by a crash: no final stats; the last status line has the count.
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | tail -1 || true)
    # libFuzzer's own time when it ran to the end, else the wall time of the run.
    ran=$(grep -oE '^Done [0-9]+ runs in [0-9]+' "$log" | awk '{print $5}' | tail -1 || true)
    [ -n "$ran" ] || ran=$(cat "$work/$t.secs" 2>/dev/null || true)
    crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
    printf '%-18s %8s %12s %8s\n' "$t" "${ran:-?}" "${execs:-?}" "$crashes"
done
