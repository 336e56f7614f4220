#!/usr/bin/env bash
# `make demo`: sharehub's main job, the way a newcomer runs it. One simulated
# quarter of the West Midlands partnership's sharing in about a minute: a
# broker and one agent process per organisation, each organisation's profile
# originating and answering events at the region's real volumes. Then a clean
# stop, the audit chain verified, and the board report.
#
# All state lives under BUILD/demo/: keys/ (generated once, never committed:
# keys/broker is the broker's key directory, keys/agents/ORG the directory
# `sharehub-keygen --org` makes for each organisation's agent) and state/
# (made afresh on every run, so running it twice works).
#
# SEED picks the quarter (default 2026). For tests: DEMO_DIR puts keys/ and
# state/ elsewhere, and SPEEDUP runs the same scenario on a faster clock (a
# copy of it with only `speedup:` changed; what the profiles originate does
# not depend on the clock's speed).
set -euo pipefail
build=${1:-build}
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
config=examples/west-midlands
scenario=$config/scenario-quarter.yaml
seed=${SEED:-2026}
demo="${DEMO_DIR:-$build/demo}"
keys="$demo/keys"
state="$demo/state"
bin="$build"

pids=()
broker_pid=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '%s\n' "$*"; }

say "== sharehub demo: one quarter of the West Midlands partnership"

# -- keys: the broker's set, and one directory per organisation's agent ------
# (its key pair, the broker's public keys, hub.yaml, orgs.yaml); the broker's
# key directory receives each organisation's public key only.
mkdir -p "$keys/agents"
"$bin/protocol/sharehub-keygen" --broker --dir "$keys/broker" >/dev/null
orgs=$(sed -n 's/^ *- *{id: *\([a-z0-9.-]*\),.*/\1/p' "$config/orgs.yaml")
for org in $orgs; do
    [[ -d "$keys/agents/$org" ]] ||
        "$bin/protocol/sharehub-keygen" --org "$org" --config "$config" --keys "$keys/broker" \
            --out "$keys/agents/$org" >/dev/null
done
say "-- keys: the broker's in $keys/broker, each organisation's agent's in $keys/agents/"

# -- the broker ---------------------------------------------------------------
# The simulation runs a day in under a second, so the broker's deadline clock
# (limits.deadline_hour_ms) runs at the same pace: a copy of the example's
# configuration with that one limit added.
rm -rf "$state"
mkdir -p "$state/agents"
if [[ -n "${SPEEDUP:-}" ]]; then
    sed "s/^speedup: *[0-9.]*/speedup: $SPEEDUP/" "$scenario" >"$state/scenario.yaml"
    scenario="$state/scenario.yaml"
fi
cp -r "$config" "$state/config"
speedup=$(sed -n 's/^speedup: *\([0-9]*\).*/\1/p' "$scenario")
printf '  deadline_hour_ms: %d   # one simulated hour\n' $((3600000 / speedup)) \
    >>"$state/config/hub.yaml"
config="$state/config"
"$bin/broker/sharehub-broker" --check --config "$config" --keys "$keys/broker" \
    --db "$state/broker.db"
"$bin/broker/sharehub-broker" --config "$config" --keys "$keys/broker" --db "$state/broker.db" \
    --endpoint 'tcp://127.0.0.1:*' --ready-file "$state/ready" --log-level warn \
    2>"$state/broker.log" &
broker_pid=$!
for _ in $(seq 1 200); do
    [[ -s "$state/ready" ]] && break
    kill -0 "$broker_pid" 2>/dev/null || { say "broker failed to start:"; cat "$state/broker.log"; exit 1; }
    sleep 0.05
done
endpoint=$(cat "$state/ready")
say "-- broker listening on $endpoint (log: $state/broker.log)"

# -- one agent per organisation -----------------------------------------------
for org in $orgs; do
    "$bin/agents/sharehub-agent" --log-level warn run --org "$org" --config "$keys/agents/$org" \
        --db "$state/agents/$org.db" --broker "$endpoint" \
        --scenario "$scenario" --seed "$seed" --until-done \
        2>"$state/agents/$org.log" &
    pids+=($!)
done
days=$(sed -n 's/^days: *\([0-9]*\).*/\1/p' "$scenario")
say "-- ${#pids[@]} agents running the scenario: $days simulated days at ${speedup}x"

count() { sqlite3 -readonly "$state/broker.db" "PRAGMA busy_timeout=2000; $1" 2>/dev/null | tail -n 1 || echo 0; }
# The audit table holds ids of interned names (docs/internals.md).
name() { printf "(SELECT id FROM names WHERE text = '%s')" "$1"; }
start=$(date +%s)
deadline=$((start + days * 86400 / speedup + 120))
while :; do
    running=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
    now=$(date +%s)
    day=$(( (now - start) * speedup / 86400 ))
    (( day > days )) && day=$days
    allowed=$(count "SELECT count(*) FROM audit WHERE action=$(name decide) AND decision=$(name allow)")
    denied=$(count "SELECT count(*) FROM audit WHERE action=$(name decide) AND decision=$(name deny)")
    acked=$(count "SELECT count(*) FROM audit WHERE action=$(name ack)")
    printf '   day %2d/%d  shares allowed %6s  denied %5s  acknowledged %6s  agents running %2d\n' \
        "$day" "$days" "$allowed" "$denied" "$acked" "$running"
    (( running == 0 )) && break
    if (( now > deadline )); then
        say "-- the scenario overran its time; stopping the remaining agents"
        break
    fi
    sleep 5
done

# -- stop cleanly: agents, then the broker (it commits and signs a checkpoint)
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
pids=()
kill -TERM "$broker_pid"
wait "$broker_pid" || { say "broker did not stop cleanly; see $state/broker.log"; exit 1; }
broker_pid=""
(( failed == 0 )) || say "-- $failed agents did not exit cleanly (logs in $state/agents/)"
say "-- stopped in $(( $(date +%s) - start )) s"

# -- verify the audit chain, then the board report -----------------------------
say
"$bin/broker/sharehub-audit" verify --db "$state/broker.db" --key "$keys/broker/checkpoint.pub"
say
if "$bin/broker/sharehub-audit" report --help >/dev/null 2>&1; then
    "$bin/broker/sharehub-audit" report --db "$state/broker.db" --orgs "$config/orgs.yaml"
else
    say "(the board report comes with sharehub-audit report)"
fi

cat <<EOF

Everything is in $state/: broker.db (audit log, outbox) and agents/<org>.db
(each organisation's inbox and outbox). Try:
  $bin/broker/sharehub-audit log --db $state/broker.db --recipient marac-coventry --limit 20
  $bin/broker/sharehub-audit report --db $state/broker.db --orgs $config/orgs.yaml --csv-dir DIR
  $bin/broker/sharehub-audit serve --db $state/broker.db --orgs $config/orgs.yaml   # then open http://127.0.0.1:8080/
  $bin/agents/sharehub-agent inbox --org marac-coventry --db $state/agents/marac-coventry.db
EOF
