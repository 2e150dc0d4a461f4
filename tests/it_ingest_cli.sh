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

# cli_usage WANT LINE ARGS...: as cli_rc, and stderr is exactly one line, LINE (a grep -E
# pattern of the whole line): a usage error is said once, naming what is wrong.
cli_usage() {
	local want=$1 line=$2
	shift 2
	cli_rc "$want" "$@"
	[[ $(wc -l <"$T/err") == 1 ]] && grep -qxE -- "$line" "$T/err" ||
		{ cat "$T/err" >&2; die "$*: not the one line '$line'"; }
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
	cli_usage "$usage" "relaywatch-ingest: unknown option -x \(try --help\)" \
		"$c" -c "$missing" -x
	cli_usage "$usage" "relaywatch-ingest: option --config needs a value \(try --help\)" \
		"$c" --config
	# An option after --help is not read: the command has exited, saying nothing of -x.
	cli_rc 0 "$c" --help -x
	[[ ! -s $T/err ]] || { cat "$T/err" >&2; die "$c --help -x: -x was read"; }
done
# A bad value of a command's own option is a usage error too, said once.
cli_usage 2 "relaywatch-ingest: --top: expected a number from 1 to 10000" \
	report -c "$missing" --top 0
cli_usage 2 "relaywatch-ingest: --batch: expected a number from 1 to 1000000" \
	purge -c "$missing" --batch 0
cli_usage 2 "relaywatch-ingest: --jobs: expected a number from 1 to 64" \
	backfill -c "$missing" --jobs 0
# The config is read once the options are: the missing file is what stops the command now, said
# in one line that names it (a configuration error exits 2 as a usage error does).
cli_usage 2 "relaywatch-ingest: $missing: No such file or directory" run -c "$missing"
