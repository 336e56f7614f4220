#!/usr/bin/env bash
# Installs the Debian 12 packages sharehub needs, and only those that are
# missing, so a second run costs one dpkg query. Called by the Makefile before
# every build; safe to run by hand. `--fuzz` adds clang's libFuzzer runtime
# (make fuzz), `--bench` the peer brokers the benchmarks measure against and
# their client libraries (make bench); other arguments are package names.
set -euo pipefail

extra=()
for arg in "$@"; do
    case "$arg" in
    --fuzz) extra+=(clang libclang-rt-14-dev) ;;        # libFuzzer, ASan and UBSan for clang
    --bench) extra+=(nats-server libnats-dev            # NATS JetStream, a peer of bench_peers
                     mosquitto libmosquitto-dev) ;;     # MQTT QoS 1 with persistence, another
    *) extra+=("$arg") ;;
    esac
done

packages=(
    build-essential cmake pkg-config      # toolchain
    binutils                              # nm: unit.symbols checks every library's globals
    libzmq3-dev                           # ZeroMQ with CURVE (libsodium-backed on Debian)
    libmsgpack-dev                        # msgpack-c: the wire encoding
    libsqlite3-dev                        # the broker's and agents' stores
    libpq-dev                             # the broker's store on PostgreSQL (postgresql:// URIs)
    postgresql                            # a private server per test run (tests/pg_cluster.sh)
    libsodium-dev                         # BLAKE2b chain, Ed25519 checkpoints, sealed boxes
    libyaml-dev                           # YAML config, with line and column in every error
    libjansson-dev                        # JSON for `sharehub-agent submit` and report output
    libmicrohttpd-dev                     # the agent's local API, the broker's metrics, sharehub-audit serve
    libcmocka-dev                         # unit tests
    sqlite3                               # the demo's progress line; the audit CLI test tampers with a copy
    jq                                    # the audit CLI test reads its JSON output
    curl                                  # the metrics test scrapes the broker
    chromium                              # the audit pages' test loads them headless
    python3                               # the API's example client and the tests that run it
    groff-base                            # the install test renders the man pages
    systemd procps                        # systemd-analyze verifies the units; they reload with kill
    dpkg-dev file                         # make deb: CPack runs dpkg-shlibdeps on what file(1) finds
    ${extra[@]+"${extra[@]}"}
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
