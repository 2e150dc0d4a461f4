# Sourced by the integration tests (bash). Provides:
#   die MSG...          fail the test with one line on stderr
#   need_env VAR...     fail (never skip) when one of the RW_* variables is missing
#   $T                  a private temporary directory, removed when the test exits
#   on_exit CMD         runs CMD at exit (before $T is removed); don't set an EXIT trap yourself
#   db_fresh NAME       (re)creates database relaywatch_NAME and exports MYCNF, an option file
#                       for it ($T/my.cnf, mode 600)
#   db_migrated NAME    db_fresh NAME, then `relaywatch-ingest migrate` there; dies when it fails
#   db_query SQL        runs SQL there, prints rows tab-separated without headers
#   dump_views DIR      writes event_hourly.tsv, relay_hourly.tsv, denied_hourly.tsv, totals.tsv
#                       into DIR in the format of relaywatch-gen --expect
#   merge_expect OUT DIR...  sums several --expect directories into OUT (none: an empty
#                       database's)
#   same_dir WANT GOT   compares two such directories, prints a diff and fails when they differ
#   quiet_but_malformed FILE  fails when FILE (a command's output) holds anything but the
#                       reports of malformed lines, which a clean run is allowed to print
#   db_snapshot FILE    writes the whole content of the four tables (for "nothing changed")
#   at_once WHAT OUT1 OUT2 ARGS1... -- ARGS2...
#                       `relaywatch-ingest ARGS1` (stdout and stderr in OUT1) and `... ARGS2` (in
#                       OUT2) started at the same moment; dies unless both exit 0
#   wait_stopped PID WHAT [OUT]  returns once PID (a program run with RELAYWATCH_PAUSE) has
#                       stopped itself with SIGSTOP; dies (showing OUT, its output) if it ends
#                       first or has not stopped within 120 s
#   kill_db_connection  KILL CONNECTION of the one other session on the test's database (the
#                       ingester's)
#   free_port           a TCP port on 127.0.0.1 that nobody listens on right now (chosen by
#                       the kernel; scripts/lib/servers.sh's servers__free_port for the tests)
#   $INGEST $SHIP $GEN  the programs under test; ingest/ship/gen run them
# The test runs under `set -euo pipefail`.
set -euo pipefail

die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

need_env() {
	local v
	for v in "$@"; do
		if [[ -z ${!v:-} ]]; then
			die "environment variable $v is not set: run the suite through scripts/test"
		fi
	done
}

need_env RW_BUILD RW_SRC

# servers__free_port and servers__alive: the tests' servers are started the way scripts/test starts
# the shared ones. (Sourcing only defines functions.)
# shellcheck source=../scripts/lib/servers.sh
. "$RW_SRC/scripts/lib/servers.sh"

INGEST=$RW_BUILD/ingester/relaywatch-ingest
SHIP=$RW_BUILD/shipper/relaywatch-ship
GEN=$RW_BUILD/tests/relaywatch-gen

ingest() {
	"$INGEST" "$@"
}

ship() {
	"$SHIP" "$@"
}

gen() {
	"$GEN" "$@"
}

# kill_child PID [SIGNAL]: sends SIGNAL (KILL) to PID only while it is still a child of this
# shell. A background program that has ended and been reaped gives its number back to the
# system, and with pid_max at 32768 the suite's other tests soon reuse it.
kill_child() {
	local stat ppid
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	read -r _ ppid _ <<<"${stat##*) }"
	[[ $ppid == "$$" ]] && kill -s "${2:-KILL}" "$1" 2>/dev/null
}

free_port() {
	servers__free_port
}

at_once() {
	local what=$1 out1=$2 out2=$3 args1=() rc1=0 rc2=0 p1 p2
	shift 3
	while [[ $1 != -- ]]; do
		args1+=("$1")
		shift
	done
	shift
	ingest "${args1[@]}" >"$out1" 2>&1 &
	p1=$!
	ingest "$@" >"$out2" 2>&1 &
	p2=$!
	wait "$p1" || rc1=$?
	wait "$p2" || rc2=$?
	[[ $rc1 == 0 && $rc2 == 0 ]] || {
		cat "$out1" "$out2" >&2
		die "$what: exit $rc1 and $rc2, not 0 and 0"
	}
}

wait_stopped() {
	local pid=$1 what=$2 out=${3:-/dev/null} i st
	for ((i = 0; i < 1200; i++)); do
		# (A child of this shell that ended stays a zombie, Z, until it is waited for.)
		st=$(cat "/proc/$pid/stat" 2>/dev/null) || st=") X"
		read -r st _ <<<"${st##*) }"
		[[ $st == T ]] && return 0
		[[ $st != [ZX] ]] || { cat "$out" >&2; die "$what ended before its pause"; }
		sleep 0.1
	done
	cat "$out" >&2
	die "$what did not stop at its pause"
}

T=$(mktemp -d "${TMPDIR:-/tmp}/rw-it.XXXXXX")
lib_cleanups=()
# on_exit CMD: runs CMD (a string for eval) when the test exits, last added first; for processes a
# test started itself (kill them by PID) and servers it stopped (start them again).
on_exit() {
	lib_cleanups+=("$1")
}
lib_exit() {
	local i
	for ((i = ${#lib_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${lib_cleanups[i]}" || true
	done
	rm -rf "$T"
}
trap lib_exit EXIT

db_fresh() {
	local name=$1
	need_env RW_MYCNF
	[[ $name =~ ^[A-Za-z0-9_]+$ ]] || die "db_fresh: bad name '$name'"
	DB_NAME=relaywatch_$name
	mariadb --defaults-file="$RW_MYCNF" -e \
		"DROP DATABASE IF EXISTS \`$DB_NAME\`; CREATE DATABASE \`$DB_NAME\`" ||
		die "cannot create database $DB_NAME"
	(
		umask 077
		sed -e "s/^database[[:space:]]*=.*/database=$DB_NAME/" "$RW_MYCNF" >"$T/my.cnf"
	)
	chmod 600 "$T/my.cnf"
	grep -q "^database=$DB_NAME\$" "$T/my.cnf" || die "db_fresh: no database= line in $RW_MYCNF"
	export MYCNF=$T/my.cnf DB_NAME
}

db_migrated() {
	db_fresh "$1"
	ingest migrate --defaults-file="$MYCNF" || die "migrate failed"
}

db_query() {
	mariadb --defaults-file="${MYCNF:?db_fresh first}" -N -B -e "$1"
}

# The views in the row format of relaywatch-gen's expectation files: columns in schema order,
# tab-separated, n last, rows in LC_ALL=C order.
dump_views() {
	local dir=$1
	mkdir -p "$dir"
	db_query "SELECT hour_utc, host, service, event, reason, n FROM event_hourly" |
		LC_ALL=C sort >"$dir/event_hourly.tsv"
	db_query "SELECT hour_utc, host, service, auth_user, sender, remote_ip, rcpt_domain, n
		FROM relay_hourly" | LC_ALL=C sort >"$dir/relay_hourly.tsv"
	db_query "SELECT hour_utc, host, service, remote_ip, sender, rcpt_domain, n
		FROM denied_hourly" | LC_ALL=C sort >"$dir/denied_hourly.tsv"
	db_query "SELECT 'lines', COALESCE(SUM(line_count), 0) FROM chunks
		UNION ALL SELECT 'events', COALESCE(SUM(event_count), 0) FROM chunks
		UNION ALL SELECT 'malformed', COALESCE(SUM(malformed_count), 0) FROM chunks" \
		>"$dir/totals.tsv"
}

# Several generator outputs as one: rows with the same key add up. No directory at all gives
# what dump_views finds in an empty database: no rows, and totals of 0.
merge_expect() {
	local out=$1 f
	shift
	mkdir -p "$out"
	for f in event_hourly.tsv relay_hourly.tsv denied_hourly.tsv; do
		local inputs=()
		local d
		for d in "$@"; do
			inputs+=("$d/$f")
		done
		# (</dev/null: with no input file, awk would read stdin.)
		awk -F'\t' -v OFS='\t' '
			{ n = $NF; NF--; k = $0; if (!(k in sum)) order[++c] = k; sum[k] += n }
			END {
				for (i = 1; i <= c; i++)
					printf "%s\t%.0f\n", order[i], sum[order[i]]
			}' "${inputs[@]}" </dev/null | LC_ALL=C sort >"$out/$f"
	done
	local inputs=()
	for d in "$@"; do
		inputs+=("$d/totals.tsv")
	done
	# The three totals of dump_views come first, in its order, each 0 until a directory adds.
	awk -F'\t' -v OFS='\t' '
		BEGIN {
			c = split("lines events malformed", order, " ")
			for (i = 1; i <= c; i++) sum[order[i]] = 0
		}
		{ if (!($1 in sum)) order[++c] = $1; sum[$1] += $2 }
		END { for (i = 1; i <= c; i++) printf "%s\t%.0f\n", order[i], sum[order[i]] }' \
		"${inputs[@]}" </dev/null >"$out/totals.tsv"
}

same_dir() {
	local want=$1 got=$2 f bad=0
	for f in event_hourly.tsv relay_hourly.tsv denied_hourly.tsv totals.tsv; do
		if ! cmp -s "$want/$f" "$got/$f"; then
			echo "$(basename "$0"): $f differs from the generator's counts" \
				"($(wc -l <"$want/$f") rows expected," \
				"$(wc -l <"$got/$f") found):" >&2
			diff "$want/$f" "$got/$f" | head -n 20 >&2 || true
			bad=1
		fi
	done
	return $bad
}

quiet_but_malformed() {
	if grep -v 'malformed' "$1" >"$1.other"; then
		cat "$1.other" >&2
		die "unexpected output from a run that succeeded"
	fi
}

# Everything the ingester writes, in a stable order (ingested_at excluded: it is the clock).
db_snapshot() {
	{
		db_query "SELECT chunk_id, host, source, first_utc, last_utc, line_count,
			event_count, malformed_count, bytes FROM chunks ORDER BY chunk_id"
		echo "--"
		dump_views "$T/snapshot.$$"
		cat "$T/snapshot.$$"/*.tsv
	} >"$1"
	rm -rf "$T/snapshot.$$"
}

kill_db_connection() {
	local conn
	conn=$(db_query "SELECT id FROM information_schema.processlist
		WHERE db = '$DB_NAME' AND id <> CONNECTION_ID()")
	[[ $conn =~ ^[0-9]+$ ]] || die "cannot find the ingester's connection: '$conn'"
	db_query "KILL CONNECTION $conn"
}
