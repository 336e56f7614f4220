#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests that run the store on
# PostgreSQL: initdb and pg_ctl into DIR, listening on a unix socket in DIR
# only (no TCP port, so parallel runs never collide), as an unprivileged user
# when run as root (the server refuses to run as root). Its URI is written to
# DIR/uri; `stop` stops it and removes DIR.
#
#   tests/pg_cluster.sh start DIR [fsync]   # exit 77: no server installed (skip)
#   tests/pg_cluster.sh stop DIR
#
# fsync is off unless asked for: a test cluster's durability is not what the
# tests check (the broker's commits survive its own kill -9 either way, the
# server staying up), and the benchmark asks for it to measure real commits.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR [fsync]" >&2; exit 64; }

bindir=""
for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && bindir=$d
done

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

stop_cluster() {
    if [[ -n "$bindir" && -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "$cmd" in
start)
    if [[ -z "$bindir" ]]; then
        echo "SKIP: no PostgreSQL server (initdb, pg_ctl under /usr/lib/postgresql/*/bin):" \
             "install Debian's postgresql (scripts/setup-deps.sh does) to run the" \
             "PostgreSQL store tests" >&2
        exit 77
    fi
    stop_cluster
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown nobody "$dir"
    chmod 700 "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fsync=off
    [[ "${3:-}" == "fsync" ]] && fsync=on
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -c listen_addresses= -c fsync=$fsync -c max_connections=200" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bindir/createdb" -h "$dir" -U postgres shub
    echo "postgresql:///shub?host=$dir&user=postgres" >"$dir/uri"
    echo "postgresql cluster ready: $(cat "$dir/uri")"
    ;;
stop)
    stop_cluster
    echo "postgresql cluster stopped"
    ;;
*)
    echo "usage: $0 start|stop DIR [fsync]" >&2
    exit 64
    ;;
esac
