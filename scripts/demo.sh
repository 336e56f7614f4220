#!/usr/bin/env bash
# `make demo`: sharehub's main job, run the way a newcomer runs it. All state
# lives under BUILD/demo/ (keys are generated there, never committed). Until
# the partnership scenario lands it shows what exists: the wire protocol,
# encoded and decoded, and the broker checking the West Midlands
# configuration with freshly generated keys.
set -euo pipefail
build=${1:-build}
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
config=examples/west-midlands
demo="$build/demo"
keys="$demo/keys"

echo "== sharehub demo"
echo "-- an example SHARE (a MARAC transfer), as it travels on the wire:"
"$build/protocol/sharehub-wire" example share
echo "-- and the broker's RECEIPT for it:"
"$build/protocol/sharehub-wire" example receipt

mkdir -p "$keys"
"$build/protocol/sharehub-keygen" --broker --dir "$keys" >/dev/null
# One keypair per organisation in orgs.yaml, made only where missing.
for org in $(sed -n 's/^ *- *{id: *\([a-z0-9.-]*\),.*/\1/p' "$config/orgs.yaml"); do
    [[ -f "$keys/$org.key" ]] || "$build/protocol/sharehub-keygen" --dir "$keys" "$org" >/dev/null
done
echo "-- keys for $(ls "$keys"/*.pub | wc -l) parties in $keys"
echo "-- checking the West Midlands partnership configuration:"
"$build/broker/sharehub-broker" --check --config "$config" --keys "$keys"
echo
echo "still to come: one agent per organisation running the quarter scenario,"
echo "and the board report (see the open issues)."
