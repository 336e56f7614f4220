# What the shell tests share; sourced, never run. Each test gets a private
# temporary directory ($tmp, removed on exit), counts its failures instead of
# stopping at the first, and ends with `finish`, which prints them and exits
# 1 if there were any, or SKIP_CODE (77, ctest's SKIP_RETURN_CODE) if the test
# called `skip`.
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0
SKIP_CODE=77

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# skip WHY: says why the test cannot run here, and ends it as skipped.
skip() {
    echo "SKIP: $*"
    exit "$SKIP_CODE"
}

# run_status WANT_STATUS WHAT COMMAND...: runs it with stdout in $tmp/out and
# stderr in $tmp/err, and checks the exit status.
run_status() {
    want=$1
    what=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$what: exit status $got, expected $want"
        sed 's/^/    stderr: /' "$tmp/err" >&2
    fi
}

# expect_out / expect_err WHAT TEXT: the last run's output holds TEXT.
expect_out() {
    grep -qF -- "$2" "$tmp/out" || fail "$1: no '$2' in output"
}

expect_err() {
    grep -qF -- "$2" "$tmp/err" || fail "$1: no '$2' on stderr"
}

# refute_err WHAT TEXT: the last run's stderr does not hold TEXT.
refute_err() {
    if grep -qF -- "$2" "$tmp/err"; then
        fail "$1: '$2' on stderr"
        sed 's/^/    stderr: /' "$tmp/err" >&2
    fi
}

# wait_for FILE [TENTHS]: waits until FILE is not empty (default 10 s).
wait_for() {
    n=${2:-100}
    while [ "$n" -gt 0 ] && [ ! -s "$1" ]; do
        sleep 0.1
        n=$((n - 1))
    done
    [ -s "$1" ]
}

# broker_starts WHAT BROKER ARGS...: starts BROKER with ARGS on a free
# loopback port, waits until it listens, and stops it with TERM; a broker
# that does not start, or does not stop cleanly, is a failure.
broker_starts() {
    bs_what=$1
    bs_prog=$2
    shift 2
    rm -f "$tmp/ready"
    "$bs_prog" "$@" --endpoint 'tcp://127.0.0.1:*' --ready-file "$tmp/ready" \
        2>"$tmp/broker.log" &
    bs_pid=$!
    if wait_for "$tmp/ready"; then
        kill -TERM "$bs_pid"
        wait "$bs_pid" || fail "$bs_what: did not stop cleanly: $(cat "$tmp/broker.log")"
    else
        kill -TERM "$bs_pid" 2>/dev/null
        fail "$bs_what: did not start: $(cat "$tmp/broker.log")"
    fi
}

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures failure(s)" >&2
        exit 1
    fi
    echo "ok"
    exit 0
}

# partnership FIXTURES KEYGEN CFG ORG...: a broker's configuration in CFG on
# an ipc endpoint in $tmp (the minimal orgs, the broker's test agreement, the
# database CFG/state/hub.db), its keys, and for each ORG the directory its
# agent runs from, $tmp/ORG, as sharehub-keygen --org makes it.
partnership() {
    pf_fixtures=$1
    pf_keygen=$2
    pf_cfg=$3
    shift 3
    mkdir -p "$pf_cfg/agreements" "$pf_cfg/state"
    cp "$pf_fixtures/broker/agreements/test-marac.yaml" "$pf_cfg/agreements/"
    sed '/public_key:/d' "$pf_fixtures/config/minimal/orgs.yaml" >"$pf_cfg/orgs.yaml"
    cat >"$pf_cfg/hub.yaml" <<YAML
endpoint: "ipc://$tmp/hub.ipc"
database: state/hub.db
key_dir: keys
YAML
    "$pf_keygen" --broker --dir "$pf_cfg/keys" >/dev/null ||
        fail "sharehub-keygen --broker failed"
    for pf_org in "$@"; do
        "$pf_keygen" --org "$pf_org" --config "$pf_cfg" --out "$tmp/$pf_org" >/dev/null ||
            fail "sharehub-keygen --org $pf_org failed"
    done
}

# broker_up BROKER CFG: starts BROKER on CFG (logging to $tmp/broker.log) and
# waits until it listens; a broker that does not start ends the test.
# broker_down: stops it with TERM; a broker that does not stop cleanly fails.
broker_up() {
    rm -f "$tmp/ready"
    "$1" --config "$2" --ready-file "$tmp/ready" 2>>"$tmp/broker.log" &
    broker_pid=$!
    if ! wait_for "$tmp/ready"; then
        fail "the broker did not start: $(cat "$tmp/broker.log")"
        finish
    fi
}

broker_down() {
    kill -TERM "$broker_pid"
    wait "$broker_pid" || fail "the broker did not stop cleanly"
}
