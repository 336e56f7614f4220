#!/bin/sh
# What `cmake --install` gives an administrator: the five programs in bin/,
# man pages in share/man/man{1,5,7} that render without a warning and carry
# the exit-code table, the systemd units (verified by systemd-analyze where
# it is installed), and an example /etc/sharehub on which the installed
# broker passes --check and starts.
# Usage: test_install.sh CMAKE BUILD_DIR VERSION
set -u
. "$(dirname "$0")/lib.sh"
cmake=${1:?usage: test_install.sh CMAKE BUILD_DIR VERSION}
build=${2:?usage: test_install.sh CMAKE BUILD_DIR VERSION}
version=${3:?usage: test_install.sh CMAKE BUILD_DIR VERSION}
programs="sharehub-agent sharehub-audit sharehub-broker sharehub-keygen sharehub-wire"

# ---- the tree, under a prefix of our choosing ------------------------------
x=$tmp/prefix
"$cmake" --install "$build" --prefix "$x" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install --prefix failed"; finish; }
want="bin/sharehub-agent bin/sharehub-audit bin/sharehub-broker bin/sharehub-keygen
bin/sharehub-wire etc/sharehub/agreements/README etc/sharehub/hub.yaml
etc/sharehub/orgs.yaml lib/systemd/system/sharehub-agent@.service
lib/systemd/system/sharehub-broker.service share/doc/sharehub/LICENSE
share/doc/sharehub/README.md share/man/man1/sharehub-agent.1
share/man/man1/sharehub-audit.1 share/man/man1/sharehub-broker.1
share/man/man1/sharehub-keygen.1 share/man/man1/sharehub-wire.1
share/man/man5/sharehub-agreement.5 share/man/man5/sharehub-hub.yaml.5
share/man/man5/sharehub-orgs.yaml.5 share/man/man7/sharehub-deploy.7
share/man/man7/sharehub-postgresql.7
share/man/man7/sharehub.7"
(cd "$x" && find . -type f | sed 's|^\./||' | sort) >"$tmp/got"
echo "$want" | tr ' ' '\n' | sort >"$tmp/want"
diff "$tmp/want" "$tmp/got" >"$tmp/diff" ||
    { fail "the installed tree is not the expected one (< expected, > installed)"; cat "$tmp/diff" >&2; }

for p in $programs; do
    [ -x "$x/bin/$p" ] || { fail "$p is not installed executable"; continue; }
    run_status 0 "installed $p --version" "$x/bin/$p" --version
    [ "$(cat "$tmp/out")" = "$p $version" ] || fail "installed $p --version: $(cat "$tmp/out")"
done

# ---- the man pages --------------------------------------------------------------
if command -v groff >/dev/null; then
    for page in "$x"/share/man/man*/*; do
        name=$(basename "$page")
        groff -t -man -ww -z "$page" >"$tmp/groff" 2>&1
        [ -s "$tmp/groff" ] && { fail "$name: groff warns"; sed 's/^/    /' "$tmp/groff" >&2; }
        groff -t -man -Tascii -P-c -P-b -P-u "$page" >"$tmp/page" 2>/dev/null
        grep -q "^NAME" "$tmp/page" || fail "$name: no NAME section"
        case $name in
        *.1 | sharehub.7)
            grep -q "^EXIT STATUS" "$tmp/page" || fail "$name: no EXIT STATUS section"
            for code in 0 1 64 65 66 69 70 71 73 74 77 78; do
                grep -Eq "^ +$code +(EX_|-)" "$tmp/page" || fail "$name: exit status $code not listed"
            done
            ;;
        esac
    done
else
    fail "groff is not installed (scripts/setup-deps.sh installs groff-base)"
fi

# ---- the example configuration: checks, and the broker starts on it ---------
"$x/bin/sharehub-keygen" --broker --dir "$tmp/keys" >/dev/null || fail "keygen --broker"
mkdir "$tmp/state"
run_status 0 "--check on the example configuration" "$x/bin/sharehub-broker" --check \
    --config "$x/etc/sharehub" --keys "$tmp/keys" --db "$tmp/state/sharehub.db"
expect_out "--check on the example" "ok (1 organisations, 0 agreements"
broker_starts "the installed broker on the example configuration" "$x/bin/sharehub-broker" \
    --config "$x/etc/sharehub" --keys "$tmp/keys" --db "$tmp/state/sharehub.db"

# ---- the units, with systemd's own checker ----------------------------------
# Installed with DESTDIR, so that the programs are where the units say, under
# a root of our own; systemd-analyze then looks for them there.
d=$tmp/destdir
DESTDIR=$d "$cmake" --install "$build" >"$tmp/install.log" 2>&1 || fail "DESTDIR install failed"
units=$(find "$d" -name 'sharehub-*.service' | head -n 1)
units=$(dirname "$units")
bindir=$(sed -n 's|^ExecStart=\(.*\)/sharehub-broker .*|\1|p' "$units/sharehub-broker.service")
[ -x "$d$bindir/sharehub-broker" ] || fail "the broker's unit runs $bindir/sharehub-broker, not installed there"
mkdir "$tmp/units"
for unit in "$units"/*.service; do
    sed "s|$bindir/|$d$bindir/|g" "$unit" >"$tmp/units/$(basename "$unit")"
done
grep -q '^ExecReload=/bin/kill -HUP $MAINPID' "$tmp/units/sharehub-broker.service" ||
    fail "the broker's unit does not reload with SIGHUP"
for key in NoNewPrivileges=yes ProtectSystem=strict StateDirectory=sharehub User=sharehub; do
    for unit in "$tmp"/units/*.service; do
        grep -q "^$key" "$unit" || fail "$(basename "$unit"): no $key"
    done
done
if ! command -v systemd-analyze >/dev/null; then
    [ "$failures" -eq 0 ] || finish
    skip "systemd-analyze is not installed, so the units were not verified; everything else passed"
fi
(cd "$tmp/units" && systemd-analyze verify --man=no sharehub-broker.service \
    sharehub-agent@example-org.service) >"$tmp/verify" 2>&1 ||
    fail "systemd-analyze verify failed"
if [ -s "$tmp/verify" ]; then
    fail "systemd-analyze verify is not clean"
    sed 's/^/    /' "$tmp/verify" >&2
fi
finish
