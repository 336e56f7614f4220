#!/usr/bin/env bash
# sharehub-audit serve in a real browser, on a demo-like database: the West
# Midlands configuration run for two simulated weeks by a real broker and the
# agents of the police, the eight MARACs and the IDVA services (the other
# organisations stay offline, so some copies wait, as they do in life). One
# organisation's name and the MARAC agreement's title are rewritten to hold
# markup and script, so every page shows what escaping does to them.
#
# Debian's headless Chromium loads every page. The pages carry no script, so
# any console message at all is a failure: Chromium (with --enable-logging=
# stderr) writes every console message, a Content-Security-Policy violation
# or a failed resource included, as an INFO:CONSOLE line on stderr, which is
# simpler and as strict as asking the DevTools protocol for errors only.
# Screenshots land in SHOTS_DIR for people to look at.
#
# Then: the MARAC chart has eight bars whose numbers equal the report's CSV;
# the injected names are text (no <script> or <img> element, no handler
# attribute in the DOM); anything but GET and HEAD is refused with 405; the
# text report fits two printed pages (at most 132 lines of at most 92
# characters).
# Usage: test_serve.sh BUILD_DIR EXAMPLES_DIR SHOTS_DIR
set -u
build=${1:?usage: test_serve.sh BUILD_DIR EXAMPLES_DIR SHOTS_DIR}
examples=${2:?usage}
shots=${3:?usage}
. "$(dirname "$0")/lib.sh"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

command -v chromium >/dev/null || { echo "FAIL: chromium is not installed (scripts/setup-deps.sh installs it)" >&2; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is not installed" >&2; exit 1; }

audit=$build/broker/sharehub-audit
config=$tmp/config
cp -r "$examples" "$config"
mkdir -p "$shots" "$tmp/keys"

# -- the markup: an organisation's name and an agreement's title --------------
evil_name='Coventry MARAC <script>document.title="pwned"</script> "><img src=x onerror=alert(1)>'
evil_title='MARAC agreement <script>alert(2)</script> '"'"'single'"'"' "double" & <b>bold</b>'
sed -i "s|{id: marac-coventry, name: Coventry MARAC,|{id: marac-coventry, name: '${evil_name//\'/\'\'}',|" \
    "$config/orgs.yaml"
sed -i "s|^title: West Midlands MARAC information sharing agreement|title: '${evil_title//\'/\'\'}'|" \
    "$config/agreements/wm-marac.yaml"
grep -qF 'onerror' "$config/orgs.yaml" || fail "the test could not rename Coventry MARAC"
grep -qF 'alert(2)' "$config/agreements/wm-marac.yaml" || fail "the test could not retitle wm-marac"

# -- two simulated weeks ------------------------------------------------------
scenario=$tmp/scenario.yaml
sed -e 's/^days: .*/days: 14/' -e 's/^speedup: .*/speedup: 100800/' \
    "$examples/scenario-quarter.yaml" >"$scenario"
printf '  deadline_hour_ms: 36   # one simulated hour\n' >>"$config/hub.yaml"
"$build/protocol/sharehub-keygen" --broker --dir "$tmp/keys/broker" >/dev/null ||
    { echo "FAIL: keygen --broker" >&2; exit 1; }
orgs=$(sed -n 's/^ *- *{id: *\([a-z0-9.-]*\),.*/\1/p' "$config/orgs.yaml")
for org in $orgs; do
    "$build/protocol/sharehub-keygen" --org "$org" --config "$config" --keys "$tmp/keys/broker" \
        --out "$tmp/keys/$org" >/dev/null || fail "keygen --org $org"
done
db=$tmp/broker.db
"$build/broker/sharehub-broker" --config "$config" --keys "$tmp/keys/broker" --db "$db" \
    --endpoint 'tcp://127.0.0.1:*' --ready-file "$tmp/ready" --log-level warn \
    2>"$tmp/broker.log" &
broker=$!
pids+=("$broker")
for _ in $(seq 1 200); do [ -s "$tmp/ready" ] && break; sleep 0.05; done
[ -s "$tmp/ready" ] || { cat "$tmp/broker.log" >&2; echo "FAIL: broker did not start" >&2; exit 1; }
endpoint=$(cat "$tmp/ready")
agents=()
for org in $orgs; do
    case $org in wmp | marac-* | idva-* | bswa | bcwa) ;; *) continue ;; esac
    [ "$org" = marac-team ] || [ "$org" = marac-staffordshire ] && continue
    "$build/agents/sharehub-agent" --log-level warn run --org "$org" --config "$tmp/keys/$org" \
        --db "$tmp/$org.db" --broker "$endpoint" --scenario "$scenario" --seed 7 --until-done \
        2>"$tmp/$org.log" &
    agents+=($!)
done
pids+=("${agents[@]}")
for p in "${agents[@]}"; do wait "$p" || fail "an agent failed (logs in $tmp)"; done
kill -TERM "$broker"
wait "$broker" || fail "the broker did not stop cleanly"
pids=()

# -- the report: two printed pages, names from orgs.yaml ------------------------
run_status 0 "report" "$audit" report --db "$db" --orgs "$config/orgs.yaml"
cp "$tmp/out" "$shots/report.txt"
lines=$(wc -l <"$tmp/out")
[ "$lines" -le 132 ] || fail "report: $lines lines, more than two printed pages of 66"
awk 'length($0) > 92 { print "    " length($0) ": " $0; bad = 1 } END { exit bad }' "$tmp/out" >&2 ||
    fail "report: lines wider than 92 characters"
run_status 0 "report marac csv" "$audit" report --db "$db" --orgs "$config/orgs.yaml" \
    --section marac --format csv
tr -d '\r' <"$tmp/out" >"$tmp/marac.csv"

# -- the pages ------------------------------------------------------------------
"$audit" serve --db "$db" --orgs "$config/orgs.yaml" --key "$tmp/keys/broker/checkpoint.pub" \
    --listen 127.0.0.1:0 --ready-file "$tmp/serve.ready" 2>"$tmp/serve.log" &
serve=$!
pids+=("$serve")
for _ in $(seq 1 100); do [ -s "$tmp/serve.ready" ] && break; sleep 0.05; done
url=$(cat "$tmp/serve.ready")
[ -n "$url" ] || { cat "$tmp/serve.log" >&2; echo "FAIL: serve did not start" >&2; exit 1; }
event=$("$audit" log --db "$db" --event-type marac.referral --limit 1 --format json |
    sed -n 's/.*"event_id": "\([0-9a-f-]*\)".*/\1/p' | head -n 1)
[ -n "$event" ] || fail "no referral in the log"

# page NAME PATH: loads it in Chromium: its DOM in $tmp/NAME.html, a
# screenshot in $shots/NAME.png, and no console message.
page() {
    local name=$1 path=$2
    timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$tmp/chromium" --enable-logging=stderr --v=0 \
        --dump-dom "$url${path#/}" >"$tmp/$name.html" 2>"$tmp/$name.err" ||
        fail "$name: chromium could not load $path"
    if grep -q ':CONSOLE' "$tmp/$name.err"; then
        fail "$name: console messages on $path:"
        grep ':CONSOLE' "$tmp/$name.err" | sed 's/^/    /' >&2
    fi
    timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$tmp/chromium" --hide-scrollbars --window-size=1280,2000 \
        --screenshot="$shots/$name.png" "$url${path#/}" >/dev/null 2>&1 ||
        fail "$name: no screenshot"
    grep -q '</html>' "$tmp/$name.html" || fail "$name: no page in the DOM"
    # The markup is text: no element it could have made, no handler attribute
    # (Chromium writes every attribute as name="value", with " inside as &quot;).
    local tag='<[a-zA-Z][a-zA-Z0-9]*( [^ =>"]+="[^"]*")* on[a-zA-Z]+='
    if grep -Eiq "<script|<img|<b>bold|$tag" "$tmp/$name.html"; then
        fail "$name: injected markup became markup"
        grep -Eio ".{0,40}(<script|<img|<b>bold|$tag).{0,40}" "$tmp/$name.html" |
            sed 's/^/    /' >&2
    fi
}
page report /
page log /log
page log-coventry "/log?org=marac-coventry&limit=20"
page log-older "/log?before=50&limit=20"
page agreements /agreements
page verify /verify
page explain "/explain/$event"
page not-found "/no/such/page"

# -- what the pages say ----------------------------------------------------------
grep -qF 'Coventry MARAC &lt;script&gt;document.title="pwned"&lt;/script&gt; "&gt;&lt;img src=x onerror=alert(1)&gt;' "$tmp/report.html" ||
    fail "report: the organisation's name is not shown as text"
grep -qF 'MARAC agreement &lt;script&gt;alert(2)&lt;/script&gt;' "$tmp/agreements.html" ||
    fail "agreements: the agreement's title is not shown as text"
grep -q '<title>Information sharing: board report - sharehub</title>' "$tmp/report.html" ||
    fail "report: the document title changed (a script ran)"
grep -q 'id="status" class="ok">Intact' "$tmp/verify.html" || fail "verify: not intact"
grep -q '<h1>Not found</h1>' "$tmp/not-found.html" || fail "not-found: no error page"
grep -q "$event" "$tmp/explain.html" || fail "explain: the event is not named"

# The MARAC chart: eight bars, each equal to the report's Received. The DOM
# escapes &, < and > in attributes' text the way the page's source did.
sed -n '/<svg id="chart-marac"/,/<\/svg>/p' "$tmp/report.html" | sed 's/>/>\n/g' |
    sed -n 's/.*class="bar".*data-value="\([0-9]*\)" data-label="\([^"]*\)".*/\1|\2/p' \
        >"$tmp/bars"
sed -i -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&quot;/"/g' -e "s/&#39;/'/g" -e 's/&amp;/\&/g' \
    "$tmp/bars"
bars=$(wc -l <"$tmp/bars")
[ "$bars" -eq 8 ] || fail "MARAC chart: $bars bars, expected 8"
while IFS='|' read -r value label; do
    want=$(awk -F, -v n="$label" 'NR > 1 { name = $0; sub(/,[0-9-]*,[0-9-]*,[0-9-]*,[0-9-]*,[0-9-]*,[0-9-]*,[0-9.-]*,[0-9.-]*$/, "", name); gsub(/^"|"$/, "", name); gsub(/""/, "\"", name); if (name == n) print $0 }' "$tmp/marac.csv" |
        awk -F, '{ print $(NF - 7) }')
    [ "$want" = "$value" ] || fail "MARAC chart: '$label' drawn as $value, the report says '$want'"
done <"$tmp/bars"

# -- read-only --------------------------------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x=1 "$url")
[ "$code" = 405 ] || fail "POST: $code, expected 405"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${url}log")
[ "$code" = 405 ] || fail "DELETE: $code, expected 405"
code=$(curl -s -o /dev/null -w '%{http_code}' "${url}log?limit=0")
[ "$code" = 400 ] || fail "bad limit: $code, expected 400"
curl -s -D "$tmp/headers" -o /dev/null "$url" || fail "curl /"
grep -qi "^content-security-policy: default-src 'none'" "$tmp/headers" ||
    fail "no strict Content-Security-Policy"
grep -q 'GET /log 200' "$tmp/serve.log" || fail "serve: no log line per request"
finish
