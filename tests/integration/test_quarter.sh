#!/usr/bin/env bash
# The demo against the region's real quarter (issue 18): for each of three
# seeds, `scripts/demo.sh` (the real broker, one agent per organisation of
# examples/west-midlands, the audit chain verified) and then the board
# report's MARAC section, read with `sharehub-audit report`. Each MARAC's
# referrals received must be within 12 % of the table in docs/events.md (the
# Police and Crime Commissioner's West Midlands MARAC figures for April-June
# 2019) and its withdrawn share within 3 points; the region's total within
# 5 %.
#
# The demo runs on a clock SPEEDUP times faster than the scenario's (default
# three times: a quarter in about 20 s) so that three quarters fit in a test
# run. That changes nothing the table is about: what each profile originates
# is a function of the scenario and the seed, not of the clock (profile.c),
# and a MARAC withdraws by a running tally, not by the time a referral comes.
#
# Usage: test_quarter.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
root=$1
build=$2
speedup=${SHUB_QUARTER_SPEEDUP:-393120}
tmp=$(mktemp -d /tmp/shub-quarter-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# marac received withdrawn
table='marac-bham-east 189 22
marac-bham-west 271 14
marac-coventry 120 16
marac-dudley 143 7
marac-sandwell 161 7
marac-solihull 64 5
marac-walsall 136 10
marac-wolverhampton 231 26'

failed=0
for seed in 2026 7 31337; do
    log="$tmp/demo-$seed.log"
    if ! DEMO_DIR="$tmp/demo" SEED=$seed SPEEDUP=$speedup "$root/scripts/demo.sh" "$build" \
        >"$log" 2>&1; then
        echo "seed $seed: the demo failed:"
        tail -n 40 "$log"
        exit 1
    fi
    if ! grep -q '^ok: ' "$log" || grep -q 'did not exit cleanly\|overran' "$log"; then
        echo "seed $seed: the demo did not finish cleanly:"
        grep -n 'ok:\|did not\|overran\|verify' "$log" || true
        exit 1
    fi
    "$build/broker/sharehub-audit" report --db "$tmp/demo/state/broker.db" --section marac \
        --format csv >"$tmp/marac-$seed.csv"
    # Columns by name: the report may gain or lose columns around these.
    if ! awk -F, -v seed="$seed" -v table="$table" '
        BEGIN {
            n = split(table, lines, "\n")
            for (i = 1; i <= n; i++) {
                split(lines[i], f, " ")
                want[f[1]] = f[2]; wd[f[1]] = f[3]; order[i] = f[1]
                total_want += f[2]
            }
        }
        NR == 1 {
            # the report names its columns for people (MARAC, Received, ...)
            for (i = 1; i <= NF; i++) col[tolower($i)] = i
            if (!("marac" in col) || !("received" in col) || !("withdrawn" in col)) {
                print "the marac section has no marac, received or withdrawn column"
                exit 2
            }
            next
        }
        $col["marac"] in want {
            m = $col["marac"]; got[m] = $col["received"] + 0; gotw[m] = $col["withdrawn"] + 0
        }
        END {
            bad = 0
            for (i = 1; i <= n; i++) {
                m = order[i]; r = got[m] + 0
                share = r ? 100 * gotw[m] / r : 0; wshare = 100 * wd[m] / want[m]
                ok = r >= want[m] * 0.88 && r <= want[m] * 1.12 &&
                     share >= wshare - 3 && share <= wshare + 3
                printf "seed %-5s %-20s received %3d (table %3d, %+5.1f %%)  withdrawn %2d = %4.1f %% (table %4.1f %%)%s\n",
                       seed, m, r, want[m], r ? 100 * (r - want[m]) / want[m] : -100,
                       gotw[m], share, wshare, ok ? "" : "  <- outside the bounds"
                bad += !ok
                total += r
            }
            tok = total >= total_want * 0.95 && total <= total_want * 1.05
            printf "seed %-5s region received %d (table %d, %+.1f %%)%s\n", seed, total,
                   total_want, 100 * (total - total_want) / total_want,
                   tok ? "" : "  <- outside the bounds"
            exit bad || !tok
        }' "$tmp/marac-$seed.csv"; then
        failed=1
    fi
done
if ((failed)); then
    echo "FAIL: the demo's MARAC figures stray from the board's table"
    exit 1
fi
echo "ok: three quarters within the table's bounds"
