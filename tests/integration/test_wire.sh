#!/bin/sh
# sharehub-wire from the outside: an example SHARE is printed, survives a
# round trip through its raw bytes, and a truncated copy is refused with the
# exact field path and rule; every other message type has an example that
# decodes back to what it printed; the exit codes are the <sysexits.h> ones.
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
grep -Eq '^0000  8e a1 76 02 a4 74 79 70  65 a5 53 48 41 52 45 a2  ' "$tmp/share.txt" ||
    fail "example share: no hex dump line at offset 0000"
grep -q '"event": "marac.transfer"' "$tmp/share.txt" ||
    fail "example share: no marac.transfer in the readable form"

# Raw bytes decode back to the same readable form the example printed.
"$wire" example share --raw >"$tmp/share.bin"
expect_status 0 $? "example share --raw"
[ "$(wc -c <"$tmp/share.bin")" -eq 616 ] || fail "example share --raw: not 616 bytes"
"$wire" decode "$tmp/share.bin" >"$tmp/decoded.txt" 2>"$tmp/err"
expect_status 0 $? "decode of the raw example"
sed -n '/^{/,$p' "$tmp/share.txt" >"$tmp/readable.txt"
cmp -s "$tmp/readable.txt" "$tmp/decoded.txt" ||
    fail "decode of the raw example differs from the example's readable form"

# Cut inside the victim's name: refused, naming the field and the rule.
head -c 391 "$tmp/share.bin" >"$tmp/cut.bin"
"$wire" decode "$tmp/cut.bin" >"$tmp/out" 2>"$tmp/err"
expect_status 65 $? "decode of a truncated SHARE"
want='SHARE.payload.victim.name: truncated: 12 more bytes needed, 7 remain (malformed)'
[ "$(cat "$tmp/err")" = "$want" ] || fail "truncated SHARE: got '$(cat "$tmp/err")'"
[ ! -s "$tmp/out" ] || fail "truncated SHARE: printed something on stdout"

# The same bytes on stdin, as "-".
"$wire" decode - <"$tmp/cut.bin" >/dev/null 2>&1
expect_status 65 $? "decode - of a truncated SHARE"

# Every example: version 2, and its raw bytes decode to the readable form it
# printed (DELIVER prints its opened event after it: compare up to that).
for name in hello welcome receipt deliver ack update confirm checkpoint witness \
    heartbeat error bye; do
    "$wire" example "$name" >"$tmp/ex.txt" 2>"$tmp/err"
    expect_status 0 $? "example $name"
    type=$(echo "$name" | tr a-z A-Z)
    grep -q "^$type, [0-9]* bytes:\$" "$tmp/ex.txt" || fail "example $name: no $type header"
    grep -q '^  "v": 2,$' "$tmp/ex.txt" || fail "example $name: not version 2"
    "$wire" example "$name" --raw >"$tmp/ex.bin"
    "$wire" decode "$tmp/ex.bin" >"$tmp/ex-decoded.txt" 2>"$tmp/err"
    expect_status 0 $? "decode of the raw $name example"
    awk 'f { print } /^$/ && !f { f = 1 } /^sealed, opened/ { exit }' "$tmp/ex.txt" |
        sed '/^$/,$d' >"$tmp/ex-readable.txt"
    [ -s "$tmp/ex-readable.txt" ] || fail "example $name: no readable form"
    cmp -s "$tmp/ex-readable.txt" "$tmp/ex-decoded.txt" ||
        fail "example $name: decode of its raw bytes differs from its readable form"
done
"$wire" example deliver | grep -q '^sealed, opened with marac-dudley' ||
    fail "example deliver: the sealed event is not opened"
"$wire" example witness | grep -q '"key": <' || fail "example witness: no key"

# A version 1 message is refused, naming the version.
printf '\202\241v\001\244type\243BYE' >"$tmp/v1.bin"
"$wire" decode "$tmp/v1.bin" >/dev/null 2>"$tmp/err"
expect_status 65 $? "decode of a version 1 message"
want='BYE.v: protocol version 1 not supported (this side speaks 2) (version)'
[ "$(cat "$tmp/err")" = "$want" ] || fail "version 1 BYE: got '$(cat "$tmp/err")'"

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
"$wire" example nosuch >/dev/null 2>&1
expect_status 64 $? "example with an unknown name"
"$wire" decode "$tmp/no-such-file" >/dev/null 2>&1
expect_status 66 $? "decode of a missing file"
finish
