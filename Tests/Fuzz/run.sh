#!/usr/bin/env bash
# Builds the libFuzzer targets (debug, with AddressSanitizer: bounds and memory errors stop the
# run) and fuzzes each parser for SECONDS seconds from the seed corpus in Tests/Fuzz/corpus.
# New interesting inputs go to a scratch folder, crashes to $FUZZ_OUT (default .build-fuzz/out).
#   Tests/Fuzz/run.sh 10      short run (make test)
#   Tests/Fuzz/run.sh 600     long run (make fuzz)
# Exits non-zero when a target finds a crash, leak, timeout or out-of-memory input.
set -euo pipefail
SECONDS_PER_TARGET=${1:-10}
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCRATCH="$ROOT/.build-fuzz"
OUT="${FUZZ_OUT:-$SCRATCH/out}"
mkdir -p "$OUT"
# --sanitize=fuzzer links libFuzzer but leaves the Swift code of the engine (a dependency package)
# without coverage counters, and libFuzzer then mutates blind; the counters are asked for
# explicitly, in the form this libFuzzer reads (inline 8-bit counters, not trace-pc-guard)
FLAGS=(-c debug --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
build() {
    swift build --package-path "$HERE" --scratch-path "$SCRATCH" "${FLAGS[@]}" > "$SCRATCH/build.log" 2>&1
}
# SwiftPM keeps the build plan of the engine (a path dependency here) when one of its source files
# is added, removed or renamed, and then fails ("missing inputs", or "cannot find 'NewType' in
# scope" for a type in an added file): on any failure, drop the plan and build once more
if ! build; then
    echo "fuzz build failed; planning again in case SwiftPM's cached plan of the engine is stale"
    rm -f "$SCRATCH/debug.yaml" "$SCRATCH/build.db"
    build || { grep -v "Cannot export local symbol" "$SCRATCH/build.log" | tail -20; exit 1; }
fi
grep -v "Cannot export local symbol" "$SCRATCH/build.log" | tail -1
BIN="$(swift build --package-path "$HERE" --scratch-path "$SCRATCH" "${FLAGS[@]}" --show-bin-path)"
status=0
total=0
for target in PNG Safetensors JSON; do
    corpus="$HERE/corpus/$(echo "$target" | tr 'A-Z' 'a-z')"
    work="$SCRATCH/corpus-$target"
    mkdir -p "$work"
    log="$OUT/Fuzz$target.log"
    # -malloc_limit_mb: a single allocation beyond it is a finding (a hostile header must not get one)
    if ! "$BIN/Fuzz$target" "$work" "$corpus" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=512 -max_len=65536 -artifact_prefix="$OUT/Fuzz$target-" -print_final_stats=1 > "$log" 2>&1; then
        status=1
        echo "Fuzz$target FOUND A PROBLEM (see $log):"
        grep -E "ERROR|==[0-9]+==|Fatal|artifact" "$log" | head -20
    fi
    # a run without coverage feedback is no fuzzing: fail rather than report its executions
    if ! grep -q "INITED cov: [1-9]" "$log"; then
        status=1
        echo "Fuzz$target ran without coverage counters (see $log); rebuild from scratch: rm -rf $SCRATCH"
    fi
    runs=$(grep -E "^stat::number_of_executed_units" "$log" | awk '{print $2}')
    edges=$(grep -oE "DONE +cov: [0-9]+" "$log" | awk '{print $3}')
    total=$((total + ${runs:-0}))
    echo "Fuzz$target: ${runs:-?} executions in ${SECONDS_PER_TARGET}s, ${edges:-?} edges covered, $(ls "$work" | wc -l) corpus entries"
done
echo "fuzzing: $total executions in all"
exit $status
