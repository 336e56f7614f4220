#!/usr/bin/env bash
# `make demo`: sharehub's main job, run the way a newcomer runs it. Until the
# partnership demo lands it shows what exists: the wire protocol, encoded and
# decoded, and a broker checking a configuration.
set -euo pipefail
build=${1:-build}
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

echo "== sharehub demo"
if [[ -x "$build/protocol/sharehub-wire" ]]; then
    echo "-- an example SHARE (a MARAC transfer), as it travels on the wire:"
    "$build/protocol/sharehub-wire" example share
    echo "-- and the broker's RECEIPT for it:"
    "$build/protocol/sharehub-wire" example receipt
fi
if [[ -x "$build/broker/sharehub-broker" && -d examples/west-midlands ]]; then
    echo "-- checking the West Midlands partnership configuration:"
    "$build/broker/sharehub-broker" --check --config examples/west-midlands
fi
echo
echo "still to come: agents per organisation, the quarter scenario and the"
echo "board report (see the open issues)."
