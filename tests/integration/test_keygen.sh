#!/bin/sh
# Keys the way a partnership hands them out: sharehub-keygen --broker on the
# broker's host, then --org ID for each organisation, which makes the one
# directory that organisation's agent needs (0700, its secret 0600) and puts
# only ID.pub in the broker's key directory. Then the proof: a broker on that
# configuration, and agents run from nothing but their directories, welcomed,
# sharing one referral.
# Usage: test_keygen.sh FIXTURES sharehub-keygen sharehub-broker sharehub-agent
set -u
. "$(dirname "$0")/lib.sh"
fixtures=${1:?usage: test_keygen.sh FIXTURES KEYGEN BROKER AGENT}
keygen=${2:?usage: test_keygen.sh FIXTURES KEYGEN BROKER AGENT}
broker=${3:?usage: test_keygen.sh FIXTURES KEYGEN BROKER AGENT}
agent=${4:?usage: test_keygen.sh FIXTURES KEYGEN BROKER AGENT}
cfg=$tmp/etc

mode() { stat -c %a "$1"; }

# The partnership's configuration, with no key in orgs.yaml: each comes from
# key_dir/ID.pub.
mkdir -p "$cfg/agreements" "$tmp/state"
cp "$fixtures/broker/agreements/test-marac.yaml" "$cfg/agreements/"
sed '/public_key:/d' "$fixtures/config/minimal/orgs.yaml" >"$cfg/orgs.yaml"
cat >"$cfg/hub.yaml" <<YAML
endpoint: "ipc://$tmp/hub.ipc"
database: $tmp/state/hub.db
key_dir: keys
YAML

# ---- the broker's keys -------------------------------------------------------
mkdir "$cfg/keys"
run_status 66 "--org before the broker's keys" "$keygen" --org wmp --config "$cfg" --out "$tmp/early"
expect_err "--org before --broker" "cannot open '$cfg/keys/broker.pub' (the broker's public key; run sharehub-keygen --broker first)"
[ ! -e "$tmp/early" ] || fail "--org before --broker: made $tmp/early all the same"
run_status 0 "--broker" "$keygen" --broker --dir "$cfg/keys"

# ---- one directory per organisation ------------------------------------------
run_status 78 "--org of an organisation not in orgs.yaml" "$keygen" --org nobody --config "$cfg"
expect_err "--org nobody" "organisation 'nobody' is not in '$cfg/orgs.yaml'"
expect_err "--org nobody" "add nobody to orgs.yaml first"
run_status 64 "--org with --dir" "$keygen" --org wmp --dir "$tmp"

run_status 0 "--org wmp" "$keygen" --org wmp --config "$cfg" --out "$tmp/wmp"
expect_out "--org wmp" "$tmp/wmp/ (0700): wmp.key (0600) wmp.pub broker.pub checkpoint.pub hub.yaml orgs.yaml agent.env"
for f in wmp.key wmp.pub broker.pub checkpoint.pub hub.yaml orgs.yaml agent.env; do
    [ -f "$tmp/wmp/$f" ] || fail "--org wmp: no $f"
done
[ "$(mode "$tmp/wmp")" = 700 ] || fail "--org wmp: directory mode $(mode "$tmp/wmp"), not 700"
[ "$(mode "$tmp/wmp/wmp.key")" = 600 ] || fail "--org wmp: wmp.key mode $(mode "$tmp/wmp/wmp.key")"
cmp -s "$tmp/wmp/wmp.pub" "$cfg/keys/wmp.pub" || fail "--org wmp: the broker's wmp.pub differs"
cmp -s "$tmp/wmp/broker.pub" "$cfg/keys/broker.pub" || fail "--org wmp: broker.pub differs"
cmp -s "$tmp/wmp/checkpoint.pub" "$cfg/keys/checkpoint.pub" || fail "--org wmp: checkpoint.pub differs"
cmp -s "$tmp/wmp/orgs.yaml" "$cfg/orgs.yaml" || fail "--org wmp: orgs.yaml is not a copy"
grep -qF "endpoint: \"ipc://$tmp/hub.ipc\"" "$tmp/wmp/hub.yaml" || fail "--org wmp: hub.yaml has no endpoint"
grep -q '^SHAREHUB_AGENT_OPTS=$' "$tmp/wmp/agent.env" || fail "--org wmp: agent.env has no SHAREHUB_AGENT_OPTS"

run_status 73 "--org wmp again" "$keygen" --org wmp --config "$cfg" --out "$tmp/wmp2"
expect_err "--org wmp again" "'$cfg/keys/wmp.pub' exists: wmp has a key already; --force replaces it"
[ ! -e "$tmp/wmp2" ] || fail "--org wmp again: made $tmp/wmp2 all the same"
for org in marac-coventry idva-coventry; do
    run_status 0 "--org $org" "$keygen" --org "$org" --config "$cfg" --out "$tmp/$org"
done

# The broker's key directory holds its own secrets and public keys, nothing else.
secrets=$(cd "$cfg/keys" && ls ./*.key | tr '\n' ' ')
[ "$secrets" = "./broker.key ./checkpoint.key ./subject.key " ] ||
    fail "the broker's key directory holds other secrets: $secrets"
run_status 0 "--check on the keys keygen wrote" "$broker" --check --config "$cfg"
refute_err "--check" "warning"

# A wildcard is where the broker listens, not where agents find it.
sed -i "s|^endpoint:.*|endpoint: \"tcp://*:7400\"|" "$cfg/hub.yaml"
run_status 64 "--org with a wildcard endpoint" "$keygen" --org wmp --config "$cfg" --out "$tmp/x" --force
expect_err "wildcard" "hub.yaml's endpoint 'tcp://*:7400' is where the broker listens, not an address wmp can reach; give --endpoint tcp://HOST:PORT"
sed -i "s|^endpoint:.*|endpoint: \"ipc://$tmp/hub.ipc\"|" "$cfg/hub.yaml"

# ---- the proof: agents that have only their own directories -----------------
"$broker" --config "$cfg" --ready-file "$tmp/ready" 2>"$tmp/broker.log" &
broker_pid=$!
wait_for "$tmp/ready" || fail "the broker did not start: $(cat "$tmp/broker.log")"
cat >"$tmp/referral.json" <<JSON
{"event": "marac.referral", "occurred": "$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ)",
 "case": "WMP-1", "subject": "SUBJ-1", "area": "coventry",
 "purpose": "marac-risk-management", "basis": "uk-gdpr-6-1-e", "consent": "given",
 "to": ["marac@coventry"],
 "payload": {"victim": {"name": "Jane Example"}, "risk": {"dash_score": 16}}}
JSON
run_status 0 "submit from wmp's directory" "$agent" submit --org wmp --config "$tmp/wmp" \
    --db "$tmp/wmp.db" "$tmp/referral.json"
run_status 0 "wmp's agent, --until-done" "$agent" run --org wmp --config "$tmp/wmp" \
    --db "$tmp/wmp.db" --until-done --give-up-after 10
expect_err "wmp's agent" "welcomed org=wmp"
expect_err "wmp's agent" "receipt event="
run_status 0 "marac-coventry's agent, --until-done" "$agent" run --org marac-coventry \
    --config "$tmp/marac-coventry" --db "$tmp/marac.db" --until-done --give-up-after 10
expect_err "marac-coventry's agent" "received event="
run_status 0 "marac-coventry's inbox" "$agent" inbox --org marac-coventry --db "$tmp/marac.db"
expect_out "marac-coventry's inbox" "marac.referral"

# An agent directory without the broker's key: named, with what makes it.
rm "$tmp/idva-coventry/broker.pub"
run_status 66 "an agent without broker.pub" "$agent" run --org idva-coventry \
    --config "$tmp/idva-coventry" --db "$tmp/idva.db"
expect_err "no broker.pub" "cannot open '$tmp/idva-coventry/./broker.pub' (the broker's public key)"
expect_err "no broker.pub" "sharehub-keygen --org idva-coventry"

kill -TERM "$broker_pid"
wait "$broker_pid" || fail "the broker did not stop cleanly"
finish
