#!/usr/bin/env bash
# relaywatch-ingest's option parsing, which every subcommand shares (cmd_getopt): --help and
# --version exit 0 before any config or database is looked at, a usage error (an unknown option,
# a missing value, a bad value of a command's own option) exits 2 with one line naming it, or 3
# (UNKNOWN) for check, the monitoring plugin. No server is needed: nothing gets that far.
. "$(dirname "$0")/lib.sh"

# cli_rc WANT ARGS...: runs relaywatch-ingest ARGS (stdout in $T/out, stderr in $T/err) and dies
# unless it exits WANT.
cli_rc() {
	local want=$1 rc=0
	shift
	ingest "$@" >"$T/out" 2>"$T/err" || rc=$?
	[[ $rc == "$want" ]] || { cat "$T/out" "$T/err" >&2; die "$*: exit $rc, want $want"; }
}

# A config that cannot be read: only a command that went past its options would notice it.
missing=$T/no-such.conf
for c in migrate backfill run report purge check; do
	usage=2
	[[ $c == check ]] && usage=3
	cli_rc 0 "$c" -c "$missing" --help
	grep -q "^usage: relaywatch-ingest $c " "$T/out" || die "$c --help: no usage line"
	cli_rc 0 "$c" -c "$missing" -V
	grep -qx "relaywatch-ingest [0-9.]*" "$T/out" || die "$c --version: $(cat "$T/out")"
	cli_rc "$usage" "$c" -c "$missing" -x
	grep -qx "relaywatch-ingest: unknown option -x (try --help)" "$T/err" ||
		{ cat "$T/err" >&2; die "$c -x: the line does not name -x"; }
	cli_rc "$usage" "$c" --config
	grep -qx "relaywatch-ingest: option --config needs a value (try --help)" "$T/err" ||
		{ cat "$T/err" >&2; die "$c --config: unclear line"; }
	# An option after --help is not read: the command has exited.
	cli_rc 0 "$c" --help -x
done
# A bad value of a command's own option is a usage error too, said once.
cli_rc 2 report -c "$missing" --top 0
cli_rc 2 purge -c "$missing" --batch 0
cli_rc 2 backfill -c "$missing" --jobs 0
[[ $(wc -l <"$T/err") == 1 ]] || { cat "$T/err" >&2; die "--jobs 0: not one line"; }
grep -q -- "--jobs" "$T/err" || { cat "$T/err" >&2; die "--jobs 0: the line does not name it"; }
# The config is read once the options are: the missing file is what stops the command now.
cli_rc 2 run -c "$missing"
grep -q "$missing" "$T/err" || { cat "$T/err" >&2; die "run -c $missing: the file is not named"; }
