#!/bin/sh
# sharehub-wire from the outside: an example SHARE is printed, survives a
# round trip through its raw bytes, and a truncated copy is refused with the
# exact field path and rule; the exit codes are the <sysexits.h> ones.
# Usage: test_wire.sh PATH/TO/sharehub-wire
set -u
wire=${1:?usage: test_wire.sh PATH/TO/sharehub-wire}
. "$(dirname "$0")/lib.sh"

# expect_status WANT GOT WHAT
expect_status() {
    [ "$2" -eq "$1" ] || fail "$3: exit status $2, expected $1"
}

# The example SHARE: a hex dump (offset, 16 bytes) and the event type.
"$wire" example share >"$tmp/share.txt" 2>"$tmp/err"
expect_status 0 $? "example share"
grep -Eq '^0000  8d a1 76 01 a4 74 79 70  65 a5 53 48 41 52 45 a2  ' "$tmp/share.txt" ||
    fail "example share: no hex dump line at offset 0000"
grep -q '"event": "marac.transfer"' "$tmp/share.txt" ||
    fail "example share: no marac.transfer in the readable form"

# Raw bytes decode back to the same readable form the example printed.
"$wire" example share --raw >"$tmp/share.bin"
expect_status 0 $? "example share --raw"
[ "$(wc -c <"$tmp/share.bin")" -eq 593 ] || fail "example share --raw: not 593 bytes"
"$wire" decode "$tmp/share.bin" >"$tmp/decoded.txt" 2>"$tmp/err"
expect_status 0 $? "decode of the raw example"
sed -n '/^{/,$p' "$tmp/share.txt" >"$tmp/readable.txt"
cmp -s "$tmp/readable.txt" "$tmp/decoded.txt" ||
    fail "decode of the raw example differs from the example's readable form"

# Cut inside the victim's name: refused, naming the field and the rule.
head -c 368 "$tmp/share.bin" >"$tmp/cut.bin"
"$wire" decode "$tmp/cut.bin" >"$tmp/out" 2>"$tmp/err"
expect_status 65 $? "decode of a truncated SHARE"
want='SHARE.payload.victim.name: truncated: 12 more bytes needed, 7 remain (malformed)'
[ "$(cat "$tmp/err")" = "$want" ] || fail "truncated SHARE: got '$(cat "$tmp/err")'"
[ ! -s "$tmp/out" ] || fail "truncated SHARE: printed something on stdout"

# The same bytes on stdin, as "-".
"$wire" decode - <"$tmp/cut.bin" >/dev/null 2>&1
expect_status 65 $? "decode - of a truncated SHARE"

# Usage and missing input.
"$wire" --help >"$tmp/out" 2>&1
expect_status 0 $? "--help"
grep -q '^usage: sharehub-wire' "$tmp/out" || fail "--help: no usage line"
"$wire" frobnicate >/dev/null 2>&1
expect_status 64 $? "unknown command"
"$wire" >/dev/null 2>&1
expect_status 64 $? "no command"
"$wire" example >/dev/null 2>&1
expect_status 64 $? "example without a name"
"$wire" decode "$tmp/no-such-file" >/dev/null 2>&1
expect_status 66 $? "decode of a missing file"
finish
