#!/usr/bin/env bash
# MariaDB failing under `relaywatch-ingest run`, on a private server of this test (stopping or
# locking the shared one would disturb the other tests): stopped; killed and restarted while the
# ingester is inside its transaction; stopped for good mid-transaction; read-only; a lock held
# past the lock wait timeout; a deadlock (error 1213). Each time: a clear error line and a
# non-zero exit (or, where a replay can succeed, a clean success), no partial rows, the chunk kept
# for the next run, and after the fault the counts are exact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
. "$(dirname "$0")/fault_lib.sh"

# The faults below make the ingester replay the rows it streamed ahead: those notices are not
# problems here.
replays_expected

fault_mariadb_start "$T/srv"
ingest migrate --defaults-file="$MYCNF" || die "migrate failed"

# The ingester's account must not be able to write through read_only: no SUPER, no READ_ONLY
# ADMIN, no global ALL (servers.sh grants ALL on relaywatch%.* only). MariaDB spells a global
# ALL "GRANT ALL PRIVILEGES ON *.* TO ...": the privileges come before the ON.
db_query "SHOW GRANTS" >"$T/grants"
if grep -qi -e 'SUPER' -e 'READ_ONLY ADMIN' -e 'READ ONLY ADMIN' \
	-e 'GRANT ALL PRIVILEGES ON \*\.\*' "$T/grants"; then
	cat "$T/grants" >&2
	die "the ingester's MariaDB account has global privileges"
fi

in=$T/in
mkdir -p "$in"
faults=0
seed=700
expects=()

# add_chunk NAME: a new generated chunk in the drop directory (not yet expected to be counted).
add_chunk() {
	seed=$((seed + 1))
	gen --lines 6000 --seed "$seed" --host mx1 --service smtp,smtp-mx --malformed 3 \
		--out "$T/$1" --expect "$T/e-$1"
	make_chunk "$in" "$1" "$T/$1" mx1 smtp
}

# counted NAME...: these chunks are now expected in the database.
counted() {
	local n
	for n in "$@"; do
		expects+=("$T/e-$n")
	done
	merge_expect "$T/want" "${expects[@]}"
}

run_rc() { # OUT [OPTIONS]: runs the ingester over the drop directory, prints its exit status
	local out=$1 rc=0
	shift
	ingest run --defaults-file="$MYCNF" --incoming "$in" "$@" >"$out" 2>&1 || rc=$?
	echo "$rc"
}

# After a failed run: nothing of the chunk in the database (the views hold exactly the chunks
# counted before), the chunk still waiting (in incoming/ or claimed in work/), nothing archived
# or quarantined.
kept() { # NAME WHAT
	exact "$T/want" "$2: the database"
	[[ -e $in/$1.manifest || -e $in/work/$1.manifest ]] || die "$2: the chunk $1 is gone"
	[[ ! -e $in/archive/$1.manifest && ! -e $in/quarantine/$1.manifest ]] ||
		die "$2: the chunk $1 was archived or quarantined"
}

# A --verbose run's output without its info lines of the chunk kept in work/ and of the summary,
# for one_problem (which leaves out the retries and replays itself, through problem_lines).
verbose_problems() { # OUT
	grep -v -e 'stays in work/' -e ': [0-9]* ingested, ' "$1" || true
}

# The next run, with the server healthy again, counts the chunk exactly once.
clean_retry() { # WHAT
	local rc
	rc=$(run_rc "$T/out")
	expect_status 0 "$rc" "$T/out" "$1: the next run"
	[[ -z $(problem_lines "$T/out") ]] ||
		{ cat "$T/out" >&2; die "$1: the next run was not silent"; }
	exact "$T/want" "$1: after the next run"
	[[ $(count_files "$in/work" '*') == 0 ]] || die "$1: work/ is not empty"
	[[ $(count_files "$in/quarantine" '*') == 0 ]] || die "$1: something was quarantined"
}

add_chunk base
rc=$(run_rc "$T/out")
expect_status 0 "$rc" "$T/out" "the first run"
counted base
exact "$T/want" "the first run"

# --- a row lock held by another session, through a root client fed from a FIFO ---
locker_pid=
locker_start() { # SQL run inside the locker's open transaction
	mkfifo "$T/locker.fifo"
	mariadb --defaults-file="$ROOTCNF" -N -B relaywatch <"$T/locker.fifo" \
		>"$T/locker.out" 2>&1 &
	locker_pid=$!
	on_exit "kill_child $locker_pid TERM"
	exec 7>"$T/locker.fifo"
	echo "START TRANSACTION; $1" >&7
	wait_for "the locking session to hold its locks" locker_holds
}
# InnoDB refreshes information_schema.INNODB_TRX only when nobody has read it for 100 ms: a poll
# every 50 ms would read the same old snapshot for ever. Every read here waits 150 ms first.
innodb_trx() { # SELECT-LIST WHERE...
	sleep 0.15
	root_query "SELECT $1 FROM information_schema.INNODB_TRX${2:+ WHERE $2}"
}
locker_holds() {
	[[ $(innodb_trx 'COUNT(*)' "trx_rows_locked > 0 AND trx_state = 'RUNNING'") -ge 1 ]]
}
locker_send() {
	echo "$1" >&7
}
locker_stop() { # [kill]: the server is gone, the client need not say goodbye
	exec 7>&-
	if [[ ${1:-} == kill ]]; then
		kill_child "$locker_pid" TERM || true
	fi
	wait "$locker_pid" 2>/dev/null || true
	locker_pid=
	rm -f "$T/locker.fifo"
}
# When a wait gives up: what the ingester said and what the server was doing.
wait_for_diagnose() {
	echo "--- the ingester's output so far"
	cat "$T/out"
	echo "--- the ingester's state"
	[[ -n ${pid:-} ]] && grep -e '^State' -e '^Threads' "/proc/$pid/status"
	[[ -n ${pid:-} ]] && for t in /proc/"$pid"/task/*; do echo "$t: $(cat "$t/wchan")"; done
	echo "--- transactions"
	innodb_trx "trx_id, trx_state, trx_mysql_thread_id, trx_rows_locked, trx_query"
	echo "--- sessions"
	root_query "SELECT ID, USER, DB, COMMAND, TIME, STATE, INFO
		FROM information_schema.PROCESSLIST"
	echo "--- the server's log"
	tail -n 30 "$T/srv/mariadbd.log"
}
ingester_waits() {
	[[ $(innodb_trx 'COUNT(*)' "trx_state = 'LOCK WAIT'") -ge 1 ]]
}
# Every table has rows after the first run, so a lock on all of denied_hourly (the table the
# ingester writes last) stops it inside its transaction, ledger row and two tables written.
lock_denied="SELECT COUNT(*) FROM denied_hourly FOR UPDATE;"

# 1. Stopped before the run: exit 3, one line, nothing moved.
add_chunk stopped
fault_mariadb stop
rc=$(run_rc "$T/out")
expect_status 3 "$rc" "$T/out" "run with MariaDB stopped"
one_problem "$T/out" "run with MariaDB stopped"
grep -q "database" "$T/out" || die "run with MariaDB stopped: the error does not say 'database'"
rc=0
ingest backfill --defaults-file="$MYCNF" "$T/stopped" >"$T/out.backfill" 2>&1 || rc=$?
expect_status 3 "$rc" "$T/out.backfill" "backfill with MariaDB stopped"
one_problem "$T/out.backfill" "backfill with MariaDB stopped"
fault_mariadb start || die "MariaDB did not start again"
faults=$((faults + 1))
kept stopped "MariaDB stopped"
counted stopped
clean_retry "MariaDB stopped"

# 2. Killed (SIGKILL) while the ingester waits inside its transaction, started again at once:
# the ingester reconnects and replays the whole transaction (exit 0), or, if the restart took
# longer than its bounded replays, gives up with exit 3 and nothing written; either way the
# counts end exact.
server_dies_mid_transaction() { # HOW (stop|kill) RESTART (yes|no) NAME
	local how=$1 restart=$2 name=$3 pid rc=0 down
	add_chunk "$name"
	locker_start "$lock_denied"
	"$INGEST" run --verbose --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 &
	pid=$!
	on_exit "kill_child $pid"
	wait_for "the ingester to wait for the lock" ingester_waits
	down=$SECONDS
	fault_mariadb "$how"
	locker_stop kill
	if [[ $restart == yes ]]; then
		fault_mariadb start || die "MariaDB did not start again"
	fi
	down=$((SECONDS - down))
	wait "$pid" || rc=$?
	faults=$((faults + 1))
	# (A replay that begins where the rows streamed during the scan failed says "replaying".)
	grep -q -e 'retrying' -e 'replaying' "$T/out" ||
		{ cat "$T/out" >&2; die "$name: no replay was tried"; }
	if [[ $restart == no ]]; then
		expect_status 3 "$rc" "$T/out" "$name: run while MariaDB went away for good"
		verbose_problems "$T/out" >"$T/problems"
		fault_mariadb start || die "MariaDB did not start again"
		kept "$name" "$name"
		counted "$name"
		clean_retry "$name"
		return
	fi
	# The replays wait 15.5 s at the least (0.5 + 1 + 2 + 4 + 8 s, plus jitter): a server back
	# within 10 s must be met by one of them. Only a slower restart may end the run with 3.
	if [[ $rc == 3 && $down -ge 10 ]]; then
		echo "note: $name: the restart took $down s, outlasting the replays;" \
			"the next run counts the chunk"
		kept "$name" "$name"
		counted "$name"
		clean_retry "$name"
		return
	fi
	expect_status 0 "$rc" "$T/out" "$name: run across a MariaDB restart"
	counted "$name"
	exact "$T/want" "$name: replayed after the restart"
	[[ -e $in/archive/$name.manifest ]] || die "$name: not archived"
}
server_dies_mid_transaction kill yes killed
server_dies_mid_transaction stop yes restarted
server_dies_mid_transaction kill no gone
# The one error line of "gone" names the server's error and its code (the replays are info lines,
# shown here because of --verbose: their "(error N), retrying" does not count).
one_problem "$T/problems" "run while MariaDB went away for good"
problem_lines "$T/problems" | grep -Eq '^relaywatch-ingest: database: .* \(error [0-9]+\)$' ||
	{ cat "$T/problems" >&2; die "gone: no error line naming the server's error"; }

# 2b. The server ends the ingester's connection (KILL CONNECTION, as an admin or a watchdog
# would) while it waits inside its transaction: reconnect, replay, exit 0.
add_chunk conn-killed
locker_start "$lock_denied"
"$INGEST" run --verbose --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 &
pid=$!
on_exit "kill_child $pid"
wait_for "the ingester to wait for the lock" ingester_waits
root_query "KILL CONNECTION $(innodb_trx trx_mysql_thread_id "trx_state = 'LOCK WAIT' LIMIT 1")"
wait_for "the ingester to see its connection killed" grep -q -e 'retrying' -e 'replaying' "$T/out"
locker_send "ROLLBACK;"
locker_stop
rc=0
wait "$pid" || rc=$?
faults=$((faults + 1))
expect_status 0 "$rc" "$T/out" "run whose connection the server killed"
counted conn-killed
exact "$T/want" "connection killed: replayed"
[[ -e $in/archive/conn-killed.manifest ]] || die "conn-killed: not archived"

# 3. Read-only server: the ingester's account cannot write; exit 3, a line that says so.
add_chunk readonly
root_query "SET GLOBAL read_only = 1"
rc=$(run_rc "$T/out")
root_query "SET GLOBAL read_only = 0"
faults=$((faults + 1))
expect_status 3 "$rc" "$T/out" "run against a read-only server"
one_problem "$T/out" "run against a read-only server"
grep -q 'read-only\|read_only\|1290' "$T/out" ||
	{ cat "$T/out" >&2; die "read-only: unclear error"; }
kept readonly "read-only server"
counted readonly
clean_retry "read-only server"

# 4. Lock wait timeout (1 s here): a session holds the rows longer than all of the replays.
add_chunk lockwait
root_query "SET GLOBAL innodb_lock_wait_timeout = 1"
locker_start "$lock_denied"
rc=$(run_rc "$T/out" --verbose)
locker_stop
root_query "SET GLOBAL innodb_lock_wait_timeout = 50"
faults=$((faults + 1))
expect_status 3 "$rc" "$T/out" "run against a lock held too long"
grep -q 'error 1205' "$T/out" || { cat "$T/out" >&2; die "lock wait: no error 1205 in the log"; }
verbose_problems "$T/out" >"$T/out.problems"
one_problem "$T/out.problems" "run against a lock held too long"
kept lockwait "lock wait timeout"
counted lockwait
clean_retry "lock wait timeout"

# 5. Deadlock: the locker holds denied_hourly, the ingester (inside its transaction, holding its
# event_hourly rows) waits for it, then the locker asks for event_hourly. The locker has changed
# many more rows, so InnoDB rolls the ingester back (error 1213); the ingester replays the whole
# transaction, waits again, and gets through once the locker commits.
add_chunk deadlock
root_query "CREATE TABLE IF NOT EXISTS relaywatch.ballast (id INT PRIMARY KEY) ENGINE=InnoDB"
locker_start "INSERT INTO ballast SELECT seq FROM seq_1_to_20000; $lock_denied"
"$INGEST" run --verbose --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 &
pid=$!
on_exit "kill_child $pid"
wait_for "the ingester to wait for the lock" ingester_waits
locker_send "SELECT COUNT(*) FROM event_hourly FOR UPDATE;"
deadlock_seen() {
	grep -q 'error 1213' "$T/out" || grep -q 'Deadlock' "$T/locker.out"
}
wait_for "InnoDB to resolve the deadlock" deadlock_seen
locker_send "ROLLBACK;"
locker_stop
rc=0
wait "$pid" || rc=$?
faults=$((faults + 1))
expect_status 0 "$rc" "$T/out" "run that was chosen as the deadlock victim"
counted deadlock
exact "$T/want" "deadlock: after the replay"
[[ -e $in/archive/deadlock.manifest ]] || die "deadlock: not archived"
if grep -q 'Deadlock' "$T/locker.out"; then
	die "the locker, not the ingester, was chosen as the deadlock victim"
fi
grep -q 'error 1213' "$T/out" || { cat "$T/out" >&2; die "deadlock: no error 1213 in the log"; }

tally server_faults "$faults"
exit 0
