#!/bin/sh
# Retention, end to end: the referral flow keeps payloads 30 days from the
# event's own time. wmp refers two victims to the Coventry MARAC, one whose
# incident is 40 days old (its retention has passed) and one of today. Once
# every process has done its work, the old referral's values are in no file
# of any agent or of the broker (the bytes of each database, WAL and shared
# memory file are searched), while today's are still in the MARAC's inbox
# (so the search finds what is there); the sender's outbox holds neither
# once both were acknowledged; the audit log verifies; and the old event
# sent again is still a duplicate.
# Usage: test_retention.sh FIXTURES sharehub-keygen sharehub-broker
#                          sharehub-agent sharehub-audit
set -u
. "$(dirname "$0")/lib.sh"
fixtures=${1:?usage: test_retention.sh FIXTURES KEYGEN BROKER AGENT AUDIT}
keygen=${2:?} broker=${3:?} agent=${4:?} audit=${5:?}
command -v jq >/dev/null || skip "jq is not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
cfg=$tmp/etc
partnership "$fixtures" "$keygen" "$cfg" wmp marac-coventry idva-coventry
sed -i 's/^    ack_within_hours: 24/    ack_within_hours: 24\n    retention_days: 30/' \
    "$cfg/agreements/test-marac.yaml"
grep -q "retention_days: 30" "$cfg/agreements/test-marac.yaml" || fail "no retention set"

OLD_ID=01890000-0000-7000-8000-00000000a001
referral() { # FILE ID OCCURRED NAME SUMMARY
    cat >"$1" <<JSON
{"id": "$2", "event": "marac.referral", "occurred": "$3", "area": "coventry",
 "purpose": "marac-risk-management", "basis": "uk-gdpr-6-1-e", "consent": "given",
 "case": "CASE-$4", "subject": "SUBJ-$4", "actor": "officer-$4", "to": ["marac@coventry"],
 "payload": {"victim": {"name": "$4", "dob": "1980-02-29"}, "risk": {"dash_score": 17},
             "incident": {"summary": "$5"}, "referral": {"route": "police"}}}
JSON
}
referral "$tmp/old.json" "$OLD_ID" "$(date -u -d '40 days ago' +%Y-%m-%dT%H:%M:%SZ)" \
    Oldvictim-Q7x3k "oldsummary-Zp41w"
referral "$tmp/new.json" 01890000-0000-7000-8000-00000000b002 \
    "$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ)" Newvictim-M2r8t "newsummary-Yb63q"

broker_up "$broker" "$cfg"
for ev in old new; do
    run_status 0 "submit $ev" "$agent" submit --org wmp --config "$tmp/wmp" --db "$tmp/wmp.db" \
        "$tmp/$ev.json"
done
run_status 0 "wmp sends" "$agent" run --org wmp --config "$tmp/wmp" --db "$tmp/wmp.db" \
    --until-done --give-up-after 20
run_status 0 "the MARAC receives" "$agent" run --org marac-coventry \
    --config "$tmp/marac-coventry" --db "$tmp/marac.db" --until-done --give-up-after 20
expect_err "the MARAC's agent" "retention: payloads dropped inbox=1 (past retention)"

# wmp hears that both were acknowledged; then nothing of them is needed.
n=0
while [ "$n" -lt 5 ]; do
    "$agent" run --org wmp --config "$tmp/wmp" --db "$tmp/wmp.db" --until-done \
        --give-up-after 20 2>>"$tmp/wmp.log"
    [ "$(sqlite3 "$tmp/wmp.db" 'SELECT count(*) FROM outbox WHERE dropped_at IS NULL')" = 0 ] &&
        break
    n=$((n + 1))
    sleep 0.5
done
[ "$(sqlite3 "$tmp/wmp.db" 'SELECT count(*) FROM outbox WHERE dropped_at IS NOT NULL
      AND length(share_hash) = 32')" = 2 ] ||
    fail "wmp's outbox still holds unminimised payloads: $(cat "$tmp/wmp.log")"

# The old event again, from another copy of wmp's agent: still a duplicate.
run_status 0 "submit the old event again" "$agent" submit --org wmp --config "$tmp/wmp" \
    --db "$tmp/wmp2.db" "$tmp/old.json"
run_status 0 "resend it" "$agent" run --org wmp --config "$tmp/wmp" --db "$tmp/wmp2.db" \
    --until-done --give-up-after 20
broker_down
grep -q "duplicate event=$OLD_ID from=wmp" "$tmp/broker.log" ||
    fail "the old event sent again was not a duplicate: $(cat "$tmp/broker.log")"
rm -f "$tmp/wmp2.db" "$tmp/wmp2.db-wal" "$tmp/wmp2.db-shm" "$tmp/old.json" "$tmp/out" \
    "$tmp/err" # wmp2 held it again, by design; the JSON and outputs are the test's own

# ---- the bytes ------------------------------------------------------------------
files=$(find "$tmp" -type f \( -name '*.db' -o -name '*.db-wal' -o -name '*.db-shm' \))
[ -n "$files" ] || fail "no database files found"
for f in $files; do
    for value in Oldvictim-Q7x3k oldsummary-Zp41w CASE-Oldvictim SUBJ-Oldvictim \
                 officer-Oldvictim; do
        if grep -q -a -F -- "$value" "$f"; then
            fail "'$value' (past its retention) is still in $f"
        fi
    done
done
grep -q -a -F Newvictim-M2r8t "$tmp/marac.db" "$tmp/marac.db-wal" 2>/dev/null ||
    fail "today's referral is not in the MARAC's store: the search proves nothing"
run_status 0 "the MARAC's inbox" "$agent" inbox --org marac-coventry --db "$tmp/marac.db" \
    --format json
[ "$(jq -cs --arg id "$OLD_ID" '.[] | select(.id == $id) | .payload' "$tmp/out")" = "{}" ] ||
    fail "the old referral's row is not kept without its values: $(cat "$tmp/out")"
[ "$(sqlite3 "$tmp/marac.db" "SELECT count(*) FROM inbox WHERE purged_at IS NOT NULL
      AND length(event_hash) = 32")" = 1 ] || fail "the purged row keeps no hash"
run_status 0 "verify" "$audit" verify --db "$cfg/state/hub.db" --key "$cfg/keys/checkpoint.pub"
finish
