#!/bin/sh
# Every program as a newcomer first meets it: --version prints the project's
# one version, --help prints the usage and the one exit-code table (exit 0
# both), and an unknown option is a usage error (64).
# Usage: test_cli.sh VERSION PROGRAM...
set -u
. "$(dirname "$0")/lib.sh"
version=${1:?usage: test_cli.sh VERSION PROGRAM...}
shift

for prog in "$@"; do
    name=$(basename "$prog")
    run_status 0 "$name --version" "$prog" --version
    [ "$(cat "$tmp/out")" = "$name $version" ] ||
        fail "$name --version: '$(cat "$tmp/out")', expected '$name $version'"
    run_status 0 "$name --help" "$prog" --help
    expect_out "$name --help" "usage: $name"
    expect_out "$name --help" "exit status:"
    for code in 0 1 64 65 66 69 70 71 73 74 77 78; do
        grep -Eq "^ +$code  [a-z]" "$tmp/out" || fail "$name --help: no exit status $code"
    done
    run_status 64 "$name --no-such-option" "$prog" --no-such-option
done

# The subcommands' own help.
for prog in "$@"; do
    case $(basename "$prog") in
    sharehub-agent) cmds="run submit inbox outbox" ;;
    sharehub-audit) cmds="verify log subject report explain serve" ;;
    *) cmds="" ;;
    esac
    for cmd in $cmds; do
        run_status 0 "$(basename "$prog") $cmd --help" "$prog" "$cmd" --help
        expect_out "$(basename "$prog") $cmd --help" "usage: $(basename "$prog") $cmd"
    done
done
finish
