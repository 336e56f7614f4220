#!/bin/sh
# What-if against the broker itself: a real broker and agents share a batch
# of referrals under the agreement in force; `sharehub-audit what-if` then
# re-decides them under a draft that narrows the referral flow's legal basis.
# The draft goes live and the same events are sent again (new ids, the same
# content): the shares the broker now denies that it allowed before must be
# exactly the ones what-if called newly denied, and nothing undecidable.
# Usage: test_whatif.sh FIXTURES sharehub-keygen sharehub-broker sharehub-agent
#                       sharehub-audit
set -u
. "$(dirname "$0")/lib.sh"
fixtures=${1:?usage: test_whatif.sh FIXTURES KEYGEN BROKER AGENT AUDIT}
keygen=${2:?} broker=${3:?} agent=${4:?} audit=${5:?}
command -v jq >/dev/null || skip "jq is not installed"
cfg=$tmp/etc
partnership "$fixtures" "$keygen" "$cfg" wmp marac-coventry idva-coventry


# Twelve referrals: three legal bases claimed, DASH scores either side of 14.
submit_batch() {
    i=0
    for basis in uk-gdpr-6-1-e dpa-2018-sch1-para18 uk-gdpr-6-1-e; do
        for dash in 16 9 20 14; do
            i=$((i + 1))
            cat >"$tmp/ev.json" <<JSON
{"event": "marac.referral", "occurred": "$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ)", "area": "coventry", "purpose": "marac-risk-management",
 "basis": "$basis", "consent": "given", "to": ["marac@coventry"], "subject": "S-$i",
 "payload": {"victim": {"name": "Victim $i"}, "risk": {"dash_score": $dash},
             "incident": {"summary": "incident $i"}, "referral": {"route": "police"}}}
JSON
            run_status 0 "submit $i" "$agent" submit --org wmp --config "$tmp/wmp" \
                --db "$tmp/wmp.db" "$tmp/ev.json"
        done
    done
    run_status 0 "wmp's agent sends the batch" "$agent" run --org wmp --config "$tmp/wmp" \
        --db "$tmp/wmp.db" --until-done --give-up-after 20
}

count_decisions() { # DECISION [SINCE]: decide rows of the log
    "$audit" log --db "$cfg/state/hub.db" --decision "$1" --limit 100000 --format json \
        ${2:+--since "$2"} | jq '[.[] | select(.action == "decide")] | length'
}

broker_up "$broker" "$cfg"
submit_batch
broker_down
allowed_before=$(count_decisions allow)
denied_before=$(count_decisions deny)
[ "$allowed_before" -eq 9 ] || fail "live: $allowed_before referrals allowed, expected 9"
[ "$denied_before" -eq 3 ] || fail "live: $denied_before referrals denied, expected 3"

# ---- what-if under the draft -------------------------------------------------
run_status 0 "what-if" "$audit" what-if --db "$cfg/state/hub.db" --config "$cfg" \
    --agreements "$fixtures/whatif/draft-basis" --format json
cp "$tmp/out" "$tmp/whatif.json"
total() { jq -r --arg k "$1" '.[] | select(.section == "whatif") | .[$k]' "$tmp/whatif.json"; }
newly_denied=$(total newly_denied)
[ "$(total decisions)" = 12 ] || fail "what-if: $(total decisions) decisions, expected 12"
[ "$(total undecidable)" = 0 ] || fail "what-if: $(total undecidable) undecidable, expected 0"
[ "$(total newly_allowed)" = 0 ] || fail "what-if: $(total newly_allowed) newly allowed"
[ "$newly_denied" = 6 ] || fail "what-if: $newly_denied newly denied, expected 6"
per_flow=$(jq '[.[] | select(.section == "flows" and .change == "newly-denied"
                and .agreement == "test-marac" and .flow == "referral"
                and .reason == "legal-basis-not-permitted") | .shares] | add' "$tmp/whatif.json")
[ "$per_flow" = "$newly_denied" ] || fail "what-if: per flow $per_flow, total $newly_denied"

run_status 0 "what-if, table" "$audit" what-if --db "$cfg/state/hub.db" --config "$cfg" \
    --agreements "$fixtures/whatif/draft-basis"
expect_out "what-if table" "newly-denied"
run_status 78 "what-if on a draft that does not load" "$audit" what-if \
    --db "$cfg/state/hub.db" --config "$cfg" --agreements "$fixtures/config/bad-condition/agreements"
expect_err "bad draft" "condition:"
run_status 64 "what-if without --agreements" "$audit" what-if --db "$cfg/state/hub.db"

# ---- the draft goes live; the same events again --------------------------------
cp "$fixtures/whatif/draft-basis/test-marac.yaml" "$cfg/agreements/test-marac.yaml"
replay_from=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
sleep 0.01
broker_up "$broker" "$cfg"
submit_batch
broker_down
allowed_replay=$(count_decisions allow "$replay_from")
denied_replay=$(count_decisions deny "$replay_from")
[ $((allowed_replay + denied_replay)) -eq 12 ] ||
    fail "replay: $allowed_replay allowed and $denied_replay denied, not 12 decisions"
[ $((denied_replay - denied_before)) -eq "$newly_denied" ] ||
    fail "replay: the broker now denies $denied_replay (before: $denied_before); what-if said $newly_denied more"
[ $((allowed_before - allowed_replay)) -eq "$newly_denied" ] ||
    fail "replay: allowed $allowed_before before, $allowed_replay now; what-if said $newly_denied fewer"
run_status 0 "verify" "$audit" verify --db "$cfg/state/hub.db" --key "$cfg/keys/checkpoint.pub"
finish
