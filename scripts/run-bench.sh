#!/usr/bin/env bash
# Runs every benchmark in BUILD_DIR/bench and prints its figures.
set -euo pipefail
build=${1:-build}
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"
shopt -s nullglob
for b in "$build"/bench/bench_*; do
    [[ -x "$b" && -f "$b" ]] || continue
    echo "== $(basename "$b")"
    "$b"
done
