#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from its
# seed corpus under tests/fuzz/<target>/. Exits non-zero on the first crash,
# leak or sanitizer report; the failing input is left in tests/fuzz/ so it can
# be added to the corpus (and so to the ordinary test run).
set -euo pipefail
build=${1:?usage: run-fuzzers.sh BUILD_DIR SECONDS}
seconds=${2:-60}
root="$(cd "$(dirname "$0")/.." && pwd)"
shopt -s nullglob
targets=("$build"/tests/fuzz/fuzz_* "$build"/fuzz_*)
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz: no targets built in $build" >&2; exit 1; }
for bin in "${targets[@]}"; do
    [[ -x "$bin" && -f "$bin" ]] || continue
    name=$(basename "$bin")
    corpus="$root/tests/fuzz/${name#fuzz_}"
    work=$(mktemp -d)
    echo "fuzz: $name for ${seconds}s (seed corpus ${corpus#$root/})"
    "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$root/tests/fuzz/" "$work" "$corpus" 2>&1 | tail -n 15
    rm -rf "$work"
done
