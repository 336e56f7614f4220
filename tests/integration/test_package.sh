#!/bin/sh
# `make deb` as a packager meets it: scripts/make-deb.sh builds the package in
# a build of its own; the package holds the programs in /usr/bin, compressed
# man pages, the units in /lib/systemd/system naming /usr/bin and
# /etc/sharehub, the example /etc/sharehub as conffiles, the copyright file,
# and maintainer scripts that make the sharehub user and the broker's keys
# and enable nothing. Then its programs run from the unpacked tree, and the
# broker starts on its example configuration. It is never installed here.
# Usage: test_package.sh SOURCE_DIR VERSION
set -u
. "$(dirname "$0")/lib.sh"
src=${1:?usage: test_package.sh SOURCE_DIR VERSION}
version=${2:?usage: test_package.sh SOURCE_DIR VERSION}
command -v dpkg-deb >/dev/null || { fail "dpkg-deb is not installed"; finish; }

JOBS=${JOBS:-2} "$src/scripts/make-deb.sh" "$tmp/build" >"$tmp/make-deb.log" 2>&1 ||
    { cat "$tmp/make-deb.log" >&2; fail "make-deb.sh failed"; finish; }
deb=$(tail -n 1 "$tmp/make-deb.log")
arch=$(dpkg --print-architecture)
[ "$(basename "$deb")" = "sharehub_${version}_$arch.deb" ] || fail "package named '$deb'"

# ---- the control archive ----------------------------------------------------------
dpkg-deb -f "$deb" Package Version Section Depends >"$tmp/fields"
grep -qx "Package: sharehub" "$tmp/fields" || fail "control: Package"
grep -qx "Version: $version" "$tmp/fields" || fail "control: Version"
for dep in adduser procps libzmq5 libsodium23 libsqlite3-0 libpq5 libyaml-0-2 libjansson4; do
    grep -q "^Depends:.*\b$dep\b" "$tmp/fields" || fail "control: Depends has no $dep"
done
mkdir "$tmp/control"
dpkg-deb -e "$deb" "$tmp/control"
printf '/etc/sharehub/hub.yaml\n/etc/sharehub/orgs.yaml\n/etc/sharehub/agreements/README\n' |
    cmp -s - "$tmp/control/conffiles" || fail "conffiles: $(cat "$tmp/control/conffiles")"
for script in postinst prerm postrm; do
    [ -x "$tmp/control/$script" ] || fail "no executable $script"
    sh -n "$tmp/control/$script" || fail "$script: not valid sh"
done
grep -q "adduser --system --group" "$tmp/control/postinst" || fail "postinst makes no system user"
grep -q "sharehub-keygen --broker" "$tmp/control/postinst" || fail "postinst makes no broker keys"
if grep -Eq "systemctl (enable|start)|deb-systemd-helper enable" "$tmp/control/postinst"; then
    fail "postinst enables or starts a unit"
fi

# ---- the data archive ---------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||' | grep -v '/$' | sort >"$tmp/files"
for f in usr/bin/sharehub-broker usr/bin/sharehub-agent usr/bin/sharehub-audit \
    usr/bin/sharehub-keygen usr/bin/sharehub-wire \
    usr/share/man/man1/sharehub-broker.1.gz usr/share/man/man1/sharehub-agent.1.gz \
    usr/share/man/man5/sharehub-hub.yaml.5.gz usr/share/man/man5/sharehub-orgs.yaml.5.gz \
    usr/share/man/man5/sharehub-agreement.5.gz usr/share/man/man7/sharehub.7.gz \
    usr/share/man/man7/sharehub-deploy.7.gz usr/share/man/man7/sharehub-postgresql.7.gz \
    lib/systemd/system/sharehub-broker.service lib/systemd/system/sharehub-agent@.service \
    etc/sharehub/hub.yaml etc/sharehub/orgs.yaml etc/sharehub/agreements/README \
    usr/share/doc/sharehub/copyright usr/share/doc/sharehub/changelog.gz; do
    grep -qx "$f" "$tmp/files" || fail "the package has no /$f"
done
grep -Eq '^(usr/local|usr/etc|var)/' "$tmp/files" && fail "files outside Debian's layout: $(grep -E '^(usr/local|usr/etc|var)/' "$tmp/files")"
grep -Eq '^usr/share/man/.*[^z]$' "$tmp/files" && fail "man pages not compressed"

root=$tmp/root
dpkg-deb -x "$deb" "$root"
grep -qx 'ExecStart=/usr/bin/sharehub-broker --config /etc/sharehub' \
    "$root/lib/systemd/system/sharehub-broker.service" || fail "broker unit: ExecStart"
grep -q '^ExecStart=/usr/bin/sharehub-agent run --org %i --config /etc/sharehub/agents/%i --db /var/lib/sharehub/agents/%i.db' \
    "$root/lib/systemd/system/sharehub-agent@.service" || fail "agent unit: ExecStart"
grep -qx 'database: /var/lib/sharehub/sharehub.db' "$root/etc/sharehub/hub.yaml" ||
    fail "hub.yaml: database"

# ---- its programs, from the unpacked tree ----------------------------------------
for p in sharehub-broker sharehub-agent sharehub-audit sharehub-keygen sharehub-wire; do
    run_status 0 "$p --version" "$root/usr/bin/$p" --version
    expect_out "$p --version" "$p $version"
done
run_status 0 "the packaged broker's default configuration" "$root/usr/bin/sharehub-broker" --help
expect_out "--help" "(default /etc/sharehub)"
"$root/usr/bin/sharehub-keygen" --broker --dir "$tmp/keys" >/dev/null || fail "keygen --broker"
broker_starts "the packaged broker on its example configuration" \
    "$root/usr/bin/sharehub-broker" --config "$root/etc/sharehub" --keys "$tmp/keys" \
    --db "$tmp/hub.db"
finish
