#!/usr/bin/env bash
# `make deb`: builds the Debian package into BUILD (default build-deb/):
# a build of its own, configured for Debian's layout (cmake/package.cmake),
# then CPack's DEB generator. Prints the package's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build=${1:-$root/build-deb}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# Debian's hardening flags (fortify, stack protector, full RELRO and
# immediate binding), as dpkg-buildflags gives them to every package.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)"
LDFLAGS="$(dpkg-buildflags --get LDFLAGS)"
export CFLAGS LDFLAGS
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
    -DSHUB_SYSTEMD_UNIT_DIR=/lib/systemd/system -DSHUB_MAN_GZIP=ON -DSHUB_PACKAGE=ON \
    >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
# Only what the package holds: the benchmarks are not in it.
cmake --build "$build" -j"$jobs" --target sharehub-broker sharehub-agent sharehub-audit \
    sharehub-keygen sharehub-wire man changelog >/dev/null
(cd "$build" && cpack -G DEB >cpack.log 2>&1) || { cat "$build/cpack.log" >&2; exit 1; }
ls "$build"/sharehub_*.deb
