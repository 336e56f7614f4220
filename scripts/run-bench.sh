#!/usr/bin/env bash
# Runs every benchmark in BUILD_DIR/bench, prints its figures, and ends with
# one `summary:` block: a line `summary:` and then `name=value` lines, one a
# figure, gathered from the `summary: name=value` lines each program prints
# (hidden from the figures above it), plus the ratios between programs. A
# script reads the last block alone:
#
#     make bench | sed -n '/^summary:$/h; /^summary:$/!H; ${x;p}' | tail -n +2
#
# BENCH_RUNS and BENCH_EVENTS, when set, are passed to the programs that take
# them (--runs, --events): `make bench BENCH_RUNS=5 BENCH_EVENTS=200000`.
#
# The names (stable; a figure a program could not measure is absent):
#   machine.cores, broker.synchronous_full, share.bytes, bench.events, bench.runs
#   <case>.events_per_s        throughput, median of runs; <case> is
#                              forwarder.1r, forwarder.3r, forwarder.1r_many (40
#                              senders), broker.1r, broker.3r, broker.1r_many,
#                              broker_pg.1r, broker_pg.3r (the broker on
#                              PostgreSQL: a private server with fsync on,
#                              started here with tests/pg_cluster.sh; absent
#                              where no server is installed)
#   <case>.cpu_us_per_event    the broker's (forwarder's) CPU time per event, us
#   <case>.clients_cpu_us_per_event  its senders' and recipients' together, us
#   budget.cpu_us_per_event_at_0_25  CPU time per event the cores allow at 0.25x
#                              the forwarder (broker and clients together), us
#   broker.1r.machine_cpu_us_per_event  what the broker and its clients take, us
#   <case>.written_bytes_per_event  bytes the broker wrote to the file system per
#                              event, WAL and checkpoints (the broker on SQLite
#                              only: on PostgreSQL the server writes)
#   ratio.broker_1r_to_forwarder_1r, ratio.broker_3r_to_forwarder_3r,
#   ratio.broker_3r_to_broker_1r, ratio.forwarder_many_to_few,
#   ratio.broker_many_to_few, ratio.broker_pg_1r_to_broker_1r,
#   ratio.broker_pg_3r_to_broker_3r
#   latency.at_<rate>.*, latency.at_half_max.*: offered_per_s, reached (0/1),
#                              achieved_per_s, receipt_p50_ms, receipt_p99_ms,
#                              receipt_p999_ms, deliver_p50_ms, deliver_p99_ms
#   closed.events_per_s, closed.receipt_p50_ms (...p99, p999, deliver_...),
#   fsync_loop.commits_per_s, ratio.closed_to_fsync_loop, echo_loop.round_trips_per_s,
#   closed_floor.events_per_s, ratio.closed_to_commit_and_round_trip
#   backlog.deliveries, backlog.rss_filled_mib, backlog.rss_peak_mib,
#   backlog.drain_events_per_s
#   jetstream.async.events_per_s, jetstream.sync.events_per_s,
#   mosquitto.qos1.events_per_s, mosquitto.qos1_sub.events_per_s
#   ratio.broker_1r_to_jetstream_async, ratio.broker_1r_to_mosquitto_qos1_sub
#                              (computed here, from the two programs' medians)
#   codec.ns_per_msg, codec.baseline_ns_per_msg, codec.ratio_to_msgpack
#   api.post.events_per_s, api.post.p50_ms, api.post.p99_ms  the agent's local API:
#                              POSTs by one keep-alive client, in a partnership;
#   api.post.alone.*           the same with no broker to reach;
#   api.store_insert.partnership.events_per_s, ratio.api_post_to_store_insert
#                              the store's insert into the sender's store, in the
#                              same partnership, and the POSTs' ratio to it;
#   api.store_insert.events_per_s, ratio.api_post_to_idle_store_insert,
#   ratio.api_post.alone_to_store_insert   the insert into an idle store, and the
#                              POSTs' ratios to it (bench_api)
#   audit.verify_rows_per_s    (read from bench_audit's `verify:` line until it
#                              prints summary lines itself; audit.append_us_at_0
#                              and audit.append_us_at_10m once it measures them)
set -euo pipefail
build=${1:-build}
figures=$(mktemp)
trap 'rm -f "$figures"' EXIT

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"

# The broker and its peers first and together, so that the ratios between
# them span as little drift in the machine's load as possible.
shopt -s nullglob
programs=()
for name in bench_broker bench_peers bench_codec bench_api bench_audit "$build"/bench/bench_*; do
    b="$build/bench/$(basename "$name")"
    [[ -x "$b" && -f "$b" && " ${programs[*]} " != *" $b "* ]] && programs+=("$b")
done

# A private PostgreSQL server, durable as a real one (fsync on), for the
# broker's cases on PostgreSQL beside SQLite in the same run.
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/shub-bench-pg-XXXXXX")
trap 'rm -f "$figures"; "$(dirname "$0")/../tests/pg_cluster.sh" stop "$pgdir" >/dev/null 2>&1 || true' EXIT
pg_uri=""
if "$(dirname "$0")/../tests/pg_cluster.sh" start "$pgdir" fsync >/dev/null; then
    pg_uri=$(cat "$pgdir/uri")
else
    echo "bench: no PostgreSQL server: the broker_pg cases are not run"
fi

failed=()
for b in "${programs[@]}"; do
    name=$(basename "$b")
    args=()
    if [[ $name == bench_broker || $name == bench_peers ]]; then
        [[ -n ${BENCH_RUNS:-} ]] && args+=(--runs "$BENCH_RUNS")
        [[ -n ${BENCH_EVENTS:-} ]] && args+=(--events "$BENCH_EVENTS")
    fi
    [[ $name == bench_broker && -n $pg_uri ]] && args+=(--pg "$pg_uri")
    echo "== $name"
    status=0
    "$b" "${args[@]}" | tee -a "$figures" | { grep -v '^summary: ' || true; } || status=$?
    [[ $status -eq 0 ]] || failed+=("$name (exit $status)")
done

summary=$(sed -n 's/^summary: //p' "$figures"
    awk '/^verify:/ { for (i = 2; i < NF; i++) if ($(i + 1) == "rows/s") print "audit.verify_rows_per_s=" $i }' \
        "$figures")
value() { sed -n "s/^$1=//p" <<<"$summary" | tail -n 1; }

# Ratios between programs, from the two programs' medians: a row each, as
# the programs print theirs, and a summary line. A target of 0 is shown only.
cross() { # what numerator denominator target name
    local a b
    a=$(value "$2")
    b=$(value "$3")
    if [[ -z $a || -z $b ]]; then
        printf '  %-48s %16s  (no %s)\n' "$1" "not measured" "${a:+$3}${a:-$2}"
        return
    fi
    local line
    line=$(awk -v what="$1" -v a="$a" -v b="$b" -v t="$4" 'BEGIN {
        if (b <= 0) exit
        r = a / b
        printf "%.3f  %-48s %16.3f  %-14s %s\n", r, what, r, (t > 0 ? ">= " t : ""),
               (t > 0 ? (r >= t ? "met" : "MISSED") : "")
    }')
    [[ -n $line ]] || return 0
    echo "  ${line#*  }"
    summary+=$'\n'"$5=${line%%  *}"
}
echo "== across programs"
cross "ratio broker 1 recipient / JetStream async" broker.1r.events_per_s \
    jetstream.async.events_per_s 0.8 ratio.broker_1r_to_jetstream_async
cross "ratio broker 1 recipient / mosquitto + sub" broker.1r.events_per_s \
    mosquitto.qos1_sub.events_per_s 0 ratio.broker_1r_to_mosquitto_qos1_sub

echo "summary:"
grep -v '^$' <<<"$summary"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "bench: failed: ${failed[*]}" >&2
    exit 1
fi
