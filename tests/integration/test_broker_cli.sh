#!/bin/sh
# sharehub-broker --check from the outside: every file the broker will open
# is checked, a missing one is named with what it is for (66), a bad one is a
# configuration error (78), a database that is not sharehub's is bad data
# (65); the broker itself refuses to start on the same grounds with the same
# codes, and an endpoint already taken is "unavailable" (69).
# Usage: test_broker_cli.sh FIXTURES sharehub-broker sharehub-keygen
set -u
. "$(dirname "$0")/lib.sh"
fixtures=${1:?usage: test_broker_cli.sh FIXTURES BROKER KEYGEN}
broker=${2:?usage: test_broker_cli.sh FIXTURES BROKER KEYGEN}
keygen=${3:?usage: test_broker_cli.sh FIXTURES BROKER KEYGEN}
cfg=$tmp/cfg

# ---- the configuration directory and its files ----------------------------
run_status 66 "--check, no such directory" "$broker" --check --config "$tmp/none"
expect_err "no such directory" "cannot open '$tmp/none' (the configuration directory; give --config DIR)"

# Without --config, the compiled-in default (shown by --help) is used.
default=$("$broker" --help | sed -n 's/.*--config DIR .*(default \(.*\)).*/\1/p')
[ -n "$default" ] || fail "--help does not show the default configuration directory"
if [ ! -e "$default" ]; then
    run_status 66 "--check, default directory" "$broker" --check
    expect_err "default directory" "cannot open '$default' (the configuration directory; give --config DIR)"
fi

mkdir -p "$cfg/agreements"
run_status 66 "--check, no orgs.yaml" "$broker" --check --config "$cfg"
expect_err "no orgs.yaml" "cannot open '$cfg/orgs.yaml' (the partnership's areas and organisations)"
cp "$fixtures/config/minimal/orgs.yaml" "$cfg/"
cp "$fixtures/config/minimal/agreements/mini.yaml" "$cfg/agreements/"
cat >"$cfg/hub.yaml" <<YAML
endpoint: "tcp://127.0.0.1:*"
database: state/hub.db
key_dir: keys
YAML

# ---- the broker's keys ------------------------------------------------------
run_status 66 "--check, no keys" "$broker" --check --config "$cfg"
expect_err "no keys" "cannot open '$cfg/keys/broker.pub' (the broker's public CURVE key)"
expect_err "no keys" "\`sharehub-keygen --broker --dir $cfg/keys\` writes the broker's keys"
"$keygen" --broker --dir "$cfg/keys" >/dev/null || fail "keygen --broker"
rm "$cfg/keys/broker.key"
run_status 66 "--check, no broker.key" "$broker" --check --config "$cfg"
expect_err "no broker.key" "cannot open '$cfg/keys/broker.key' (the broker's secret CURVE key)"
run_status 66 "start, no broker.key" "$broker" --config "$cfg"
expect_err "start, no broker.key" "error: cannot open '$cfg/keys/broker.key'"
rm "$cfg/keys/broker.pub"
"$keygen" --broker --dir "$cfg/keys" >/dev/null || fail "keygen --broker, again"

# checkpoint.pub must be the public half of checkpoint.key: agents and
# auditors verify with it.
cp "$cfg/keys/checkpoint.pub" "$tmp/checkpoint.pub"
"$keygen" --broker --dir "$tmp/other" >/dev/null
cp "$tmp/other/checkpoint.pub" "$cfg/keys/checkpoint.pub"
run_status 78 "--check, checkpoint.pub of another key" "$broker" --check --config "$cfg"
expect_err "checkpoint mismatch" "'$cfg/keys/checkpoint.pub' is not the public half of '$cfg/keys/checkpoint.key'"
cp "$tmp/checkpoint.pub" "$cfg/keys/checkpoint.pub"

# ---- the database -------------------------------------------------------------
run_status 66 "--check, no directory for the database" "$broker" --check --config "$cfg"
expect_err "no database directory" "cannot open '$cfg/state' (where the database is to be created)"
mkdir "$cfg/state"
run_status 0 "--check, all there" "$broker" --check --config "$cfg"
expect_out "--check" "$cfg: ok (3 organisations, 1 agreements; keys in $cfg/keys; database $cfg/state/hub.db)"
sqlite3 "$tmp/other.db" "CREATE TABLE t(x);" || fail "sqlite3"
run_status 65 "--check, a database that is not sharehub's" "$broker" --check --config "$cfg" --db "$tmp/other.db"

# An organisation's secret key does not belong beside the broker's.
"$keygen" --dir "$cfg/keys" wmp >/dev/null
run_status 0 "--check, an organisation's secret in the key directory" "$broker" --check --config "$cfg"
expect_err "org secret" "warning: '$cfg/keys/wmp.key' is wmp's secret key; it belongs on that organisation's agent host only"
rm "$cfg/keys/wmp.key" "$cfg/keys/wmp.pub"

# ---- hub.yaml with a typo: one error, about the typo --------------------------
cp "$cfg/hub.yaml" "$tmp/hub.yaml"
sed -i 's/^key_dir:/key_dri:/' "$cfg/hub.yaml"
mkdir -p "$tmp/keyless"
cp "$cfg/hub.yaml" "$cfg/orgs.yaml" "$tmp/keyless/"
cp -r "$cfg/agreements" "$tmp/keyless/"
sed -i 's/^ *public_key:.*//' "$tmp/keyless/orgs.yaml"
run_status 78 "--check, key_dir misspelt" "$broker" --check --config "$tmp/keyless"
expect_err "key_dir misspelt" "hub.yaml:3:1: unknown key 'key_dri'"
refute_err "key_dir misspelt" "(null)"
cp "$tmp/hub.yaml" "$cfg/hub.yaml"

# ---- starting: the same checks, then an endpoint already taken ---------------
run_status 64 "an unexpected argument" "$broker" --config "$cfg" extra
"$broker" --config "$cfg" --ready-file "$tmp/ready" 2>"$tmp/first.log" &
first=$!
if wait_for "$tmp/ready"; then
    endpoint=$(cat "$tmp/ready")
    run_status 69 "start on an endpoint in use" "$broker" --config "$cfg" --db "$tmp/second.db" \
        --endpoint "$endpoint"
    expect_err "endpoint in use" "cannot bind '$endpoint'"
else
    fail "the broker did not start: $(cat "$tmp/first.log")"
fi
kill -TERM "$first"
wait "$first" || fail "the broker did not stop cleanly"
finish
