#!/bin/sh
# An agreement ten days from its expiry, then past it, with real processes:
# `sharehub-broker --check` warns and fails with --strict; the running broker
# tells the agreement's owner once (an event from the hub, in the owner's
# inbox; a restart sends no second one); once the date has passed, a share
# under it is denied as expired, and the board report shows it expired.
# Usage: test_expiry.sh FIXTURES sharehub-keygen sharehub-broker sharehub-agent
#                       sharehub-audit
set -u
. "$(dirname "$0")/lib.sh"
fixtures=${1:?usage: test_expiry.sh FIXTURES KEYGEN BROKER AGENT AUDIT}
keygen=${2:?} broker=${3:?} agent=${4:?} audit=${5:?}
command -v jq >/dev/null || skip "jq is not installed"
cfg=$tmp/etc
ag=$cfg/agreements/test-marac.yaml
partnership "$fixtures" "$keygen" "$cfg" wmp marac-coventry idva-coventry
db=$cfg/state/hub.db

# valid_until in ten days (the agreement's owner is marac-coventry).
until=$(date -u -d '+10 days' +%Y-%m-%d)
sed -i "s/^valid_until: .*/valid_until: $until/" "$ag"


# ---- --check ------------------------------------------------------------------
run_status 0 "--check ten days before expiry" "$broker" --check --config "$cfg"
expect_err "--check" "warning: agreement 'test-marac' v2 ($ag) expires at the end of $until, in 10 days"
run_status 78 "--check --strict ten days before expiry" "$broker" --check --strict --config "$cfg"
expect_err "--check --strict" "1 agreement date is due (--strict)"
run_status 0 "--check with a 5-day notice period" "$broker" --check --strict --notice-days 5 \
    --config "$cfg"
refute_err "--notice-days 5" "warning"
run_status 64 "--strict without --check" "$broker" --strict --config "$cfg"

# ---- the owner is told, once -------------------------------------------------
broker_up "$broker" "$cfg"
run_status 0 "the owner's agent" "$agent" run --org marac-coventry --config "$tmp/marac-coventry" \
    --db "$tmp/marac.db" --until-done --give-up-after 20
broker_down
grep -q "expires at the end of $until, in 10 days" "$tmp/broker.log" ||
    fail "the broker did not log the coming expiry: $(cat "$tmp/broker.log")"
grep -q "notice event=.* type=agreement.expiring to=marac-coventry agreement=test-marac v2" \
    "$tmp/broker.log" || fail "the broker did not log the notice: $(cat "$tmp/broker.log")"
run_status 0 "the owner's inbox" "$agent" inbox --org marac-coventry --db "$tmp/marac.db" \
    --format json
notice=$(jq -cs '[.[] | select(.event == "agreement.expiring")]' "$tmp/out")
[ "$(echo "$notice" | jq length)" = 1 ] || fail "the owner's inbox: $(cat "$tmp/out")"
[ "$(echo "$notice" | jq -r '.[0].from')" = hub ] || fail "the notice is not from the hub: $notice"
[ "$(echo "$notice" | jq -r '.[0].payload.valid_until')" = "$until" ] ||
    fail "the notice does not name the date: $notice"
[ "$(echo "$notice" | jq -r '.[0].payload.days_left')" = 10 ] ||
    fail "the notice does not count the days: $notice"

broker_up "$broker" "$cfg" # a restart: the notice is not sent again
broker_down
notices=$("$audit" log --db "$db" --limit 1000 --format json |
    jq '[.[] | select(.action == "notice" and .recipient == "marac-coventry"
         and .sender == "hub" and .decision == "sent" and .agreement == "test-marac")] | length')
[ "$notices" = 1 ] || fail "$notices notices in the audit log, expected 1"
run_status 0 "explain the notice" "$audit" explain "$(echo "$notice" | jq -r '.[0].id')" --db "$db"
expect_out "explain the notice" "agreement.expiring"

# ---- past expiry ---------------------------------------------------------------
past=$(date -u -d '-1 day' +%Y-%m-%d)
sed -i -e "s/^valid_until: .*/valid_until: $past/" -e "s/^valid_from: .*/valid_from: 2024-01-01/" "$ag"
run_status 0 "--check after expiry" "$broker" --check --config "$cfg"
expect_err "--check after expiry" "expired at the end of $past, 1 day ago"
broker_up "$broker" "$cfg"
cat >"$tmp/ev.json" <<JSON
{"event": "marac.referral", "occurred": "$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ)",
 "area": "coventry", "purpose": "marac-risk-management", "basis": "uk-gdpr-6-1-e",
 "consent": "given", "to": ["marac@coventry"], "payload": {"risk": {"dash_score": 18}}}
JSON
run_status 0 "submit after expiry" "$agent" submit --org wmp --config "$tmp/wmp" \
    --db "$tmp/wmp.db" "$tmp/ev.json"
run_status 0 "wmp's agent after expiry" "$agent" run --org wmp --config "$tmp/wmp" \
    --db "$tmp/wmp.db" --until-done --give-up-after 20
broker_down
run_status 0 "log of the denial" "$audit" log --db "$db" --decision deny --format json
[ "$(jq '[.[] | select(.reason == "outside-validity" and (.explanation | test("it has expired")))] | length' "$tmp/out")" = 1 ] ||
    fail "no share denied as expired: $(cat "$tmp/out")"
run_status 0 "report" "$audit" report --db "$db" --section agreement_review --format json
[ "$(jq -r '.sections[] | select(.section == "agreement_review") | .rows[]
            | select(.agreement == "Test MARAC information sharing agreement") | .problem' \
        "$tmp/out")" = expired ] ||
    fail "the report does not show the agreement expired: $(cat "$tmp/out")"
run_status 0 "verify" "$audit" verify --db "$db" --key "$cfg/keys/checkpoint.pub"
finish
