#!/usr/bin/env bash
# test_symbols: every global a sharehub library defines carries the shub_
# prefix, so linking sharehub into a case system's own program can never
# clash with that program's names (a `rng_next` or `parse_date` of its own).
# Runs nm over every libshub_*.a below BUILD_DIR and names each offender.
# File-local helpers are `static` and never show here.
set -euo pipefail
build=${1:?usage: test_symbols.sh BUILD_DIR}
# (tests/symbols-fixture holds a library that fails on purpose: it is
# checked on its own, as unit.symbols_catch.)
mapfile -t libs < <(find "$build" -name 'libshub_*.a' -not -path "$build/*/symbols-fixture/*" |
                    sort)
if [[ ${#libs[@]} -eq 0 ]]; then
    echo "test_symbols: no libshub_*.a below $build" >&2
    exit 1
fi
bad=0
for lib in "${libs[@]}"; do
    while read -r type name; do
        # AddressSanitizer marks each global with "__odr_asan.<global>":
        # judge the global it marks.
        [[ ${name#__odr_asan.} == shub_* ]] && continue
        echo "$(basename "$lib"): global '$name' (nm type $type) lacks the shub_ prefix" >&2
        bad=1
    done < <(nm -g --defined-only "$lib" | awk 'NF == 3 { print $2, $3 }')
done
[[ $bad -eq 0 ]] && echo "test_symbols: ${#libs[@]} libraries, every global prefixed shub_"
exit $bad
