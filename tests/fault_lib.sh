# Sourced after lib.sh (and lib_drain.sh) by the fault-injection suite, tests/it_fault_*.sh. Every
# test of that suite proves the same promise under one kind of fault: each CHKUSER line counted
# exactly once, a clear error, nothing partial. Provides:
#
#   tally KEY N             adds N to the figure KEY of the Reliability table: prints
#                           "tally: KEY N" on stdout, which scripts/reliability sums over the
#                           suite's output. Keys: crash_points, random_kills, server_faults,
#                           hostile_inputs, file_faults, concurrent_writers (max, not summed),
#                           lines_checked, lines_lost, lines_double; and from the
#                           real-machinery tests (tests/it_machinery_*.sh) machinery_rotations,
#                           machinery_copytruncate_lost.
#   exact WANT [WHAT [DUMP...]]  dumps the views (with `DUMP... DIR`, dump_views by default),
#                           compares them with the --expect directory WANT
#                           (rows and totals), tallies the line counts checked, lost and
#                           double-counted (the n of every row of the three tables, and the
#                           malformed lines), and fails the test on any difference
#   expect_status WANT RC OUT WHAT   fails unless RC == WANT (shows OUT)
#   problem_lines OUT       the lines of OUT that are not reports of malformed lines or notices
#                           of a retry (the lines an admin reads as "problems"); after
#                           replays_expected, neither the notices of a replay of what was
#                           written ahead ("(error N) while writing ahead, replaying")
#   replays_expected        says that the test's faults make the ingester replay what it wrote
#                           ahead: from then on, problem_lines leaves out those notices
#   one_problem OUT WHAT    fails unless OUT holds exactly one problem line, "prog: ...", naming
#                           no unescaped control byte
#   wait_for WHAT CMD...    polls CMD (every 0.05 s, for at most 60 s) until it succeeds; a
#                           server or process that never gets there fails the test (a hang, not
#                           a time assertion), after wait_for_diagnose if the test defines it
#   db_idle                 true when no other connection uses the test's database (a killed
#                           client's server thread may still be finishing its statement or its
#                           COMMIT: check the database only after it is gone)
#   ledger_consistent WHAT  after a kill: the database holds exactly the chunks its ledger lists,
#                           each whole (the caller's associative array expect_of maps each
#                           chunk id, the SHA-256 of its plain bytes, to its --expect directory)
#   fault_mariadb_start DIR    a private MariaDB in DIR (for faults that would disturb the
#                           shared one); exports MYCNF=DIR/my.cnf (database relaywatch) and
#                           ROOTCNF; stopped when the test exits
#   fault_mariadb CMD       stop, kill (SIGKILL) or start again that private server (through
#                           servers.sh's servers_stop_mariadb etc.)
#   fault_sshd_start DIR    a private sshd in DIR; exports SSH_PORT, SSH_KEY, SSH_KNOWN_HOSTS,
#                           SSH_ROOT; stopped when the test exits
#   fault_sshd CMD          stop, kill or start again that sshd
#   root_query SQL          SQL as the private server's root

need_env RW_SRC

# Under the sanitizers (scripts/test builds with ASan+UBSan) a report must fail the program, so
# that the test sees it: ASan halts by default, UBSan only prints unless told.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# A signal from meson's timeout must still run the cleanups (private servers, processes).
trap 'exit 143' TERM
trap 'exit 130' INT

tally() {
	echo "tally: $1 $2"
}

# Line counts that the database holds fewer or more times than the generator wrote them, row by
# row in all three tables (n of event_hourly counts every well-formed CHKUSER line, n of
# relay_hourly its relaying lines, n of denied_hourly its rejected-relaying lines: such a line
# counts in two tables), and the malformed lines from the ledger totals.
fault__lost_double() { # WANT GOT -> "checked lost double"
	local args=() t
	# (Files are told apart by an assignment before each: an empty one has no first record.)
	for t in event_hourly relay_hourly denied_hourly; do
		args+=("t=$t" f=1 "$1/$t.tsv" f=2 "$2/$t.tsv")
	done
	awk -F'\t' '
		function key() { k = t; for (i = 1; i < NF; i++) k = k "\t" $i; return k }
		f == 1 { want[key()] += $NF; next }
		f == 2 { got[key()] += $NF; next }
		f == 3 && $1 == "malformed" { wm = $2; next }
		f == 4 && $1 == "malformed" { gm = $2; next }
		END {
			for (k in want) {
				checked += want[k]
				d = want[k] - got[k]
				if (d > 0) lost += d; else double -= d
			}
			for (k in got) if (!(k in want)) double += got[k]
			checked += wm
			if (wm > gm) lost += wm - gm; else double += gm - wm
			printf "%d %d %d\n", checked, lost, double
		}' "${args[@]}" f=3 "$1/totals.tsv" f=4 "$2/totals.tsv"
}

exact() {
	local want=$1 what=${2:-the views} got checked lost double
	shift $(($# < 2 ? $# : 2))
	got=$(mktemp -d "$T/got.XXXXXX")
	"${@:-dump_views}" "$got"
	read -r checked lost double < <(fault__lost_double "$want" "$got")
	tally lines_checked "$checked"
	tally lines_lost "$lost"
	tally lines_double "$double"
	if ! same_dir "$want" "$got"; then
		die "$what: not exactly once ($lost line counts lost, $double counted twice)"
	fi
	rm -rf "$got"
}

expect_status() {
	local want=$1 rc=$2 out=$3 what=$4
	if [[ $rc != "$want" ]]; then
		cat "$out" >&2
		die "$what: exit status $rc, not $want"
	fi
}

# The lines an admin reads as problems: all but the malformed-line samples (warnings about the
# data, not faults) and the info lines of a retry. A replay of the rows streamed ahead is left
# out only where the test expects one (replays_expected): elsewhere it would be a surprise.
FAULT_REPLAYS_EXPECTED=
replays_expected() {
	FAULT_REPLAYS_EXPECTED=1
}
problem_lines() {
	local replay=()
	if [[ -n $FAULT_REPLAYS_EXPECTED ]]; then
		replay=(-e ') while writing ahead, replaying$')
	fi
	grep -v -e ': malformed CHKUSER line ' -e ' more malformed CHKUSER lines$' \
		-e '), retrying$' -e ': reconnect failed: ' "${replay[@]}" "$1" || true
}

one_problem() {
	local out=$1 what=$2 n
	n=$(problem_lines "$out" | wc -l)
	if [[ $n != 1 ]]; then
		problem_lines "$out" >&2
		die "$what: $n problem lines, expected one"
	fi
	if ! problem_lines "$out" | grep -q '^relaywatch-[a-z]*: '; then
		cat "$out" >&2
		die "$what: the error line does not start with the program's name"
	fi
	# Printable ASCII and tabs only: a CR or any other control byte could forge a line.
	if LC_ALL=C grep -qP '[^\t\x20-\x7e]' "$out"; then
		die "$what: the error output holds unescaped control bytes"
	fi
	# For the test log: what the admin reads.
	echo "error line ($what): $(problem_lines "$out")"
}

wait_for() {
	local what=$1 deadline=$((SECONDS + 60))
	shift
	until "$@"; do
		if ((SECONDS >= deadline)); then
			# A test may define wait_for_diagnose to show what its servers and programs
			# were doing.
			if declare -F wait_for_diagnose >/dev/null; then
				wait_for_diagnose >&2 || true
			fi
			die "gave up waiting for $what"
		fi
		sleep 0.05
	done
}

db_idle() {
	[[ $(db_query "SELECT COUNT(*) FROM information_schema.PROCESSLIST
		WHERE DB = DATABASE() AND ID <> CONNECTION_ID()") == 0 ]]
}

ledger_consistent() {
	local ids=() id dirs=()
	# The server may still commit what the killed client sent: wait for its connection to end.
	wait_for "the killed ingester's connection to end" db_idle
	mapfile -t ids < <(db_query "SELECT chunk_id FROM chunks")
	for id in "${ids[@]}"; do
		[[ -n ${expect_of[$id]:-} ]] || die "$1: the ledger holds an unknown chunk $id"
		dirs+=("${expect_of[$id]}")
	done
	rm -rf "$T/partial"
	merge_expect "$T/partial" "${dirs[@]}" # (none: an empty ledger's views)
	exact "$T/partial" "$1 (${#ids[@]} chunks in the ledger)"
}

# --- private servers ---

fault__servers() { # DIR COMMAND...: a servers.sh function run against the servers in DIR
	local dir=$1
	shift
	(
		export RW_SERVERS_DIR=$dir
		# shellcheck source=../scripts/lib/servers.sh
		. "$RW_SRC/scripts/lib/servers.sh"
		"$@"
	)
}

fault_mariadb_start() {
	FAULT_DB_DIR=$1
	mkdir -p "$FAULT_DB_DIR"
	on_exit "fault__servers '$FAULT_DB_DIR' servers__stop_pid '$FAULT_DB_DIR/mariadbd.pid' KILL"
	fault__servers "$FAULT_DB_DIR" servers__mariadb_start ||
		die "cannot start a private MariaDB"
	export MYCNF=$FAULT_DB_DIR/my.cnf ROOTCNF=$FAULT_DB_DIR/root.cnf DB_NAME=relaywatch
}

fault_mariadb() {
	case $1 in
	start) fault__servers "${FAULT_DB_DIR:?}" servers_start_mariadb_again ;;
	*) fault__servers "${FAULT_DB_DIR:?}" "servers_$1_mariadb" ;;
	esac
}

root_query() {
	mariadb --defaults-file="${ROOTCNF:?}" -N -B -e "$1"
}

fault_sshd_start() {
	FAULT_SSH_DIR=$1
	mkdir -p "$FAULT_SSH_DIR"
	on_exit "fault__servers '$FAULT_SSH_DIR' servers__sshd_down KILL"
	fault__servers "$FAULT_SSH_DIR" servers__sshd_start || die "cannot start a private sshd"
	SSH_PORT=$(cat "$FAULT_SSH_DIR/sshd.port")
	SSH_KEY=$FAULT_SSH_DIR/ssh/id_ed25519
	SSH_KNOWN_HOSTS=$FAULT_SSH_DIR/ssh/known_hosts
	SSH_ROOT=$FAULT_SSH_DIR/sftp
	export SSH_PORT SSH_KEY SSH_KNOWN_HOSTS SSH_ROOT
}

fault_sshd() {
	case $1 in
	start) fault__servers "${FAULT_SSH_DIR:?}" servers_start_sshd_again ;;
	*) fault__servers "${FAULT_SSH_DIR:?}" "servers_$1_sshd" ;;
	esac
}
