#!/bin/sh
# sharehub-audit from the outside, on the query tests' fixture (twenty rows,
# a checkpoint after row 18; see tests/unit/test_query.c): every subcommand's
# --help, the sysexits codes for bad arguments and bad files, log / subject /
# report / explain output in each format, and verify naming the first bad row
# of each kind of tampering, done with the sqlite3 shell as an insider would.
# Usage: test_audit_cli.sh PATH/TO/sharehub-audit PATH/TO/test_query
set -u
audit=${1:?usage: test_audit_cli.sh PATH/TO/sharehub-audit PATH/TO/test_query}
maker=${2:?usage: test_audit_cli.sh PATH/TO/sharehub-audit PATH/TO/test_query}
. "$(dirname "$0")/lib.sh"

# run WANT_STATUS WHAT ARGS...: runs sharehub-audit, output in $tmp/out, $tmp/err.
run() {
    want=$1
    what=$2
    shift 2
    run_status "$want" "$what" "$audit" "$@"
}

"$maker" --make-db "$tmp" || { echo "FAIL: cannot build the fixture" >&2; exit 1; }
db=$tmp/hub.db
E1=019ca6e8-ca80-7000-0000-000000000001

# ---- help and usage -------------------------------------------------------
run 0 "--help" --help
expect_out "--help" "usage: sharehub-audit COMMAND"
for cmd in verify log subject report explain serve; do
    run 0 "$cmd --help" "$cmd" --help
    expect_out "$cmd --help" "usage: sharehub-audit $cmd"
done
run 64 "no command"
run 64 "unknown command" frobnicate
expect_err "unknown command" "unknown command 'frobnicate'"
run 64 "log without --db" log
expect_err "log without --db" "--db is required"
run 64 "log --decision maybe" log --db "$db" --decision maybe
expect_err "log --decision maybe" "--decision must be allow or deny, not 'maybe'"
run 64 "log --since garbage" log --db "$db" --since yesterday
expect_err "log --since garbage" "--since 'yesterday' is not RFC 3339 or YYYY-MM-DD"
run 64 "log --format xml" log --db "$db" --format xml
run 64 "log --limit 0" log --db "$db" --limit 0
run 64 "log --bogus" log --db "$db" --bogus
run 64 "explain bad id" explain not-an-id --db "$db"
run 64 "report --section nonsense" report --db "$db" --section nonsense
expect_err "report --section nonsense" "unknown section 'nonsense'"
run 64 "subject without key" subject wmp-person-1001 --db "$db"

# ---- bad files --------------------------------------------------------------
run 66 "missing database" log --db "$tmp/nope.db"
expect_err "missing database" "cannot open '$tmp/nope.db'"
run 66 "verify missing database" verify --db "$tmp/nope.db"
echo "hello, not a database" >"$tmp/text.db"
run 65 "text file" log --db "$tmp/text.db"
expect_err "text file" "is not a sharehub store"
sqlite3 "$tmp/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES(1);"
run 65 "another application's database" report --db "$tmp/other.db"
expect_err "another application's database" "tables of another application"
cp "$db" "$tmp/newer.db"
sqlite3 "$tmp/newer.db" "PRAGMA user_version = 99;"
run 65 "newer schema" log --db "$tmp/newer.db"
expect_err "newer schema" "newer than this sharehub understands"
run 65 "verify newer schema" verify --db "$tmp/newer.db"

# ---- log --------------------------------------------------------------------
run 0 "log table" log --db "$db" --limit 3
head -n 1 "$tmp/out" | grep -q '^seq  *at  *action  *event_id' || fail "log table: no header"
expect_out "log table" "(3 rows)"
expect_out "log table" "next page: --before 18"
[ "$(sed -n 2p "$tmp/out" | cut -c1-2)" = "20" ] || fail "log table: newest row is not 20"
run 0 "log second page" log --db "$db" --limit 3 --before 18
[ "$(sed -n 2p "$tmp/out" | cut -c1-2)" = "17" ] || fail "log second page: does not start at 17"
run 0 "log csv" log --db "$db" --org marac-dudley --format csv
[ "$(cut -d, -f1 "$tmp/out" | tr -d '\r' | tr '\n' ' ')" = "seq 18 12 11 6 5 " ] ||
    fail "log csv --org marac-dudley: rows $(cut -d, -f1 "$tmp/out" | tr -d '\r' | tr '\n' ' ')"
run 0 "log csv paged" log --db "$db" --decision deny --limit 2 --format csv
expect_err "log csv paged" "next page: --before 17"
run 0 "log json" log --db "$db" --format json --oldest --limit 50
[ "$(jq length "$tmp/out")" = "20" ] || fail "log json: not 20 objects"
[ "$(jq '.[0].seq' "$tmp/out")" = "1" ] || fail "log json --oldest: first seq not 1"
[ "$(jq -r '.[0].at' "$tmp/out")" = "2026-03-01T01:00:00.000Z" ] || fail "log json: time"
run 0 "log time window" log --db "$db" --since 2026-03-01T11:00:00Z \
    --until 2026-03-01T13:00:00+00:00 --format csv
[ "$(cut -d, -f1 "$tmp/out" | tr -d '\r' | tr '\n' ' ')" = "seq 18 17 16 " ] ||
    fail "log time window: rows $(cut -d, -f1 "$tmp/out" | tr -d '\r' | tr '\n' ' ')"
run 0 "log whole day" log --db "$db" --until 2026-03-01 --format json
[ "$(jq length "$tmp/out")" = "20" ] || fail "log --until DATE: the day is not included"

# ---- subject -----------------------------------------------------------------
run 0 "subject" subject wmp-person-1002 --db "$db" --key-dir "$tmp"
[ "$(head -n 1 "$tmp/out")" = "subject reference: wmp-person-1002 (4 rows)" ] ||
    fail "subject: header line is '$(head -n 1 "$tmp/out")'"
run 0 "subject csv" subject wmp-person-1002 --db "$db" --subject-key "$tmp/subject.key" \
    --format csv
[ "$(cut -d, -f1 "$tmp/out" | tr -d '\r' | tr '\n' ' ')" = "seq 4 9 16 17 " ] ||
    fail "subject csv: rows $(cut -d, -f1 "$tmp/out" | tr -d '\r' | tr '\n' ' ')"
grep -q wmp-person "$tmp/out" && fail "subject csv: the reference was printed back"
head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 64 >"$tmp/other.key"
echo >>"$tmp/other.key"
chmod 600 "$tmp/other.key"
run 65 "subject wrong key" subject wmp-person-1002 --db "$db" --subject-key "$tmp/other.key"
expect_err "subject wrong key" "subject key does not match"
run 66 "subject missing key" subject wmp-person-1002 --db "$db" --key-dir "$tmp/nodir"

# ---- report ------------------------------------------------------------------
# The fixture names organisations by id; an orgs.yaml gives them names.
cat >"$tmp/orgs.yaml" <<'EOF2'
areas: [coventry, birmingham-east]
orgs:
  - {id: marac-coventry, name: Coventry MARAC, kind: marac, areas: [coventry]}
  - {id: wmp, name: West Midlands Police, kind: police, areas: [all]}
EOF2
run 0 "report json" report --db "$db" --format json
[ "$(jq -r '.coverage' "$tmp/out")" = "Counted from the audit log as signed at $(jq -r '.coverage' "$tmp/out" | sed -n 's/.*signed at \([^ ]*\) .*/\1/p') (its first 18 records); 2 records written since are left for the next report." ] ||
    fail "report: coverage names the checkpoint's 18 records and the 2 left out"
[ "$(jq '[.sections[] | select(.section == "marac")][0].rows[] | select(.marac == "marac-coventry") | .received' \
    "$tmp/out")" = "3" ] || fail "report: MARAC referrals received"
run 0 "report text" report --db "$db" --orgs "$tmp/orgs.yaml"
expect_out "report text" "The period in numbers"
expect_out "report text" "so there are more"
expect_out "report text" "Coventry MARAC"
grep -q "upto_seq\|rows_left_out\|head_hash" "$tmp/out" && fail "report text: internal words"
awk 'length($0) > 92 { bad = 1 } END { exit bad }' "$tmp/out" || fail "report text: wider than a page"
run 0 "report csv section" report --db "$db" --section fields_withheld --format csv
[ "$(head -n 1 "$tmp/out" | tr -d '\r')" = "Agreement,Field withheld,Times" ] ||
    fail "report csv: header row is $(head -n 1 "$tmp/out")"
grep -q '^MARAC ISA,victim.gp,4' "$tmp/out" ||
    fail "report csv: victim.gp not the most withheld field"
run 64 "report csv without a section" report --db "$db" --format csv
expect_err "report csv without a section" "give --section NAME, or --csv-dir DIR"
mkdir -p "$tmp/csv"
run 0 "report csv dir" report --db "$db" --csv-dir "$tmp/csv" --orgs "$tmp/orgs.yaml"
for s in summary marac timeliness agreements orgs fields_withheld given_up waiting agreement_review; do
    [ -s "$tmp/csv/$s.csv" ] || fail "report csv dir: no $s.csv"
done
[ "$(head -n 1 "$tmp/csv/marac.csv" | tr -d '\r')" = "MARAC,Received,Accepted,Withdrawn,In,Out,On time,Median h,90% h" ] ||
    fail "report csv dir: marac header $(head -n 1 "$tmp/csv/marac.csv")"
grep -q '^Coventry MARAC,3,' "$tmp/csv/marac.csv" || fail "report csv dir: names from orgs.yaml"
printf 'areas: [x]\norgs: [{id: Bad Id, name: x, kind: police, areas: [x]}]\n' >"$tmp/bad-orgs.yaml"
run 65 "report bad orgs.yaml" report --db "$db" --orgs "$tmp/bad-orgs.yaml"
expect_err "report bad orgs.yaml" "bad-orgs.yaml:2:"

# ---- explain ------------------------------------------------------------------
run 0 "explain" explain "$E1" --db "$db"
expect_out "explain" "acknowledged_at:"
expect_out "explain" "2026-03-01T01:30:00.000Z"
expect_out "explain" "recipient-not-party"
run 1 "explain unknown" explain 019ca6e8-ca80-7000-0000-0000000000ff --db "$db"
expect_err "explain unknown" "no audit row for event 019ca6e8-ca80-7000-0000-0000000000ff"

# ---- verify and tampering -------------------------------------------------------
run 0 "verify" verify --db "$db" --key "$tmp/checkpoint.pub"
expect_out "verify" "ok: 20 rows, 1 checkpoints verified"

# tamper NAME SQL WANT: a copy edited with SQL must fail verify naming WANT.
tamper() {
    cp "$db" "$tmp/$1.db"
    sqlite3 "$tmp/$1.db" "$2" || fail "$1: sqlite3 could not tamper"
    run 1 "verify $1" verify --db "$tmp/$1.db" --key "$tmp/checkpoint.pub"
    expect_out "verify $1" "$3"
}
tamper edited "UPDATE audit SET at = at + 1 WHERE seq = 5" \
    "FAILED at row 5: edited: row 5 does not match its hash"
tamper name-edited "UPDATE names SET text = 'marac-elsewhere' WHERE text = 'marac-dudley'" \
    "FAILED at row 5: edited: row 5 does not match its hash"
tamper missing "DELETE FROM audit WHERE seq = 7" \
    "FAILED at row 7: missing: row 7 (row 8 follows row 6)"
tamper swapped "UPDATE audit SET seq = -1 WHERE seq = 10;
    UPDATE audit SET seq = 10 WHERE seq = 11; UPDATE audit SET seq = 11 WHERE seq = -1" \
    "FAILED at row 10: edited: row 10 does not match its hash"
tamper inserted "UPDATE audit SET seq = seq + 1000 WHERE seq >= 10;
    UPDATE audit SET seq = seq - 999 WHERE seq >= 1000;
    INSERT INTO audit SELECT 10, at, action, event_id, event_type, sender, recipient,
    decision, reason, explanation, agreement, flow, purpose, legal_basis, consent,
    override, area, occurred, reply_to, fields, fields_shared, fields_stripped, facts,
    payload_hash, subject_hash, case_hash, actor_hash, row_hash
    FROM audit WHERE seq = 9" \
    "FAILED at row 9: inserted: row 9 is not in the chain (row 10 was row 9, renumbered)"
tamper truncated "DELETE FROM audit WHERE seq > 15" \
    "FAILED at row 16: truncated after checkpoint 1"
tamper bad-signature "UPDATE checkpoints SET signature = zeroblob(64)" \
    "FAILED at row 18: bad signature: checkpoint 1 (rows up to 18) does not verify"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/stranger.pub"
echo >>"$tmp/stranger.pub"
run 1 "verify with another key" verify --db "$db" --key "$tmp/stranger.pub"
expect_out "verify with another key" \
    "FAILED at row 18: bad signature: checkpoint 1 is signed by another key"
finish
