#!/usr/bin/env bash
# Two stats servers on one Galera cluster (tests/lib_galera.sh: three MariaDB nodes on 127.0.0.1,
# started and stopped by this test), each with its own drop directory and its own
# `relaywatch-ingest run` against its own node. Exact totals are read from every node after each
# part:
#   1. `migrate` started on two nodes at the same moment, three times over a fresh database: both
#      succeed, every node has the tables of a migrate run alone, and this build's version.
#   2. The same chunks dropped on both stats servers and ingested at the same moment on two nodes:
#      each counts once (the ledger row's certification conflict is replayed as a deadlock and
#      ends as "already ingested").
#   2b. Certification conflicts forced three times: node 1's run paused at COMMIT, between two
#      streamed batches, and right after its ledger row, while node 2's run commits the same
#      chunk; the cluster's wsrep_local_cert_failures + wsrep_local_bf_aborts rise, node 1 meets
#      1213, its replay finds the chunk already ingested.
#   3. A node killed with SIGKILL mid-ingest: its ingester replays, then exits 3 with its claim
#      kept, while the other stats server goes on; the node restarts, catches up by IST, and the
#      next run there finishes the claim. Nothing lost, nothing doubled.
#   4. A node cut off from the cluster mid-ingest (gmcast.isolate: no primary component, error
#      1047): the same as a lost server, exit 3 with the claim kept, then done after it rejoins.
#   5. A mail server whose ship.conf lists both stats servers: the first one's sshd down before a
#      run, then killed in the middle of one; both stats servers ingest at the same moment.
#   6. `purge` under a write-set row limit (wsrep_max_ws_rows) cuts its batches to it, and the old
#      hours are gone from every node.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
. "$(dirname "$0")/lib_galera.sh"

galera_start 3

# --- 1. migrate on two nodes at once ---
# The version this build creates, and the tables of a migrate run alone (on a plain schema).
want_version=$(sed -n 's/^#define SCHEMA_VERSION \([0-9]*\).*/\1/p' "$RW_SRC/ingester/schema.h")
[[ -n $want_version ]] || die "no SCHEMA_VERSION in ingester/schema.h"
tables() {
	galera_root "$1" "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME)
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'relaywatch'"
}
ingest migrate --defaults-file="$(galera_mycnf 1)" >"$T/mig1" 2>&1 ||
	{ cat "$T/mig1" >&2; die "migrate alone failed"; }
want_tables=$(tables 1)
[[ $want_tables == *chunks*schema_version* ]] || die "migrate alone made only: $want_tables"
for round in 1 2 3; do
	galera_root 1 "DROP DATABASE relaywatch; CREATE DATABASE relaywatch"
	# The other nodes apply that DDL a moment later: a read with wsrep_sync_wait (galera_root)
	# waits until they have, so that the second migrate does not meet the old database or none.
	galera_root 2 "SELECT 1" >/dev/null
	galera_root 3 "SELECT 1" >/dev/null
	at_once "migrate round $round on two nodes at once" "$T/mig1" "$T/mig2" \
		migrate --defaults-file="$(galera_mycnf 1)" -- \
		migrate --defaults-file="$(galera_mycnf 2)"
	for i in 1 2 3; do
		v=$(galera_root "$i" "SELECT version FROM relaywatch.schema_version WHERE id = 1")
		[[ $v == "$want_version" ]] ||
			die "migrate round $round: node $i has schema version '$v'," \
				"not $want_version"
		[[ $(tables "$i") == "$want_tables" ]] ||
			die "migrate round $round:" \
				"node $i has the tables $(tables "$i"), not $want_tables"
	done
	tally galera_faults 1
done

# The totals of every node against the generator's counts (fault_lib's exact, node by node).
galera_exact() {
	local i
	for i in 1 2 3; do
		exact "$1" "$2, node $i" galera_dump "$i"
	done
}

# run_status I DROP OUT: one `run` of the stats server on node I; prints its exit status.
run_status() {
	local rc=0
	ingest run --verbose --defaults-file="$(galera_mycnf "$1")" --incoming "$2" >"$3" 2>&1 ||
		rc=$?
	echo "$rc"
}

# kept_claim PID OUT WHAT: the background `run` PID (its output in OUT), whose node failed under
# it, exits 3 and says its claimed chunk stays in work/ for the next run.
kept_claim() {
	local rc=0
	wait "$1" || rc=$?
	[[ $rc == 3 ]] || { cat "$2" >&2; die "$3: exit $rc, not 3"; }
	grep -q 'stays in work/ for the next run' "$2" || {
		cat "$2" >&2
		die "$3 did not keep its claim"
	}
}

# chunks_of TAG HOST LINES SEED: a generated log cut into 400-line chunks; their --expect
# directory is $T/e-TAG, the pieces $T/split-TAG/p*.
chunks_of() {
	local tag=$1 host=$2 lines=$3 seed=$4
	gen --lines "$lines" --seed "$seed" --host "$host" --service smtp --malformed 3 \
		--out "$T/log-$tag" --expect "$T/e-$tag"
	mkdir -p "$T/split-$tag"
	split -l 400 -d -a 4 "$T/log-$tag" "$T/split-$tag/p"
}

# drop TAG DIR...: the chunks of TAG into each DIR, under the same names.
drop() {
	local tag=$1 dir args=() p
	shift
	for p in "$T/split-$tag"/p*; do
		args+=("$tag-$(basename "$p")=$p")
	done
	for dir in "$@"; do
		make_chunks "$dir" "${tag%%-*}" smtp syslog "${args[@]}"
	done
}

drained() {
	local dir
	for dir in "$@"; do
		[[ $(count_files "$dir" '*.manifest') == 0 ]] ||
			die "$dir: chunks left in incoming/"
		[[ $(count_files "$dir/work" '*') == 0 ]] || die "$dir: chunks left in work/"
		[[ $(count_files "$dir/quarantine" '*') == 0 ]] ||
			die "$dir: something was quarantined"
	done
}

ledger() {
	galera_root "$1" "SELECT COUNT(*) FROM relaywatch.chunks"
}

# --- 2. the same chunks on both stats servers, ingested at the same moment on two nodes ---
d1=$T/stats1/incoming d2=$T/stats2/incoming
mkdir -p "$d1" "$d2"
chunks_of mx1-a mx1 16000 31
chunks_of mx2-a mx2 16000 32
drop mx1-a "$d1" "$d2"
drop mx2-a "$d2" "$d1"
nchunks=$(($(ls "$T/split-mx1-a" | wc -l) + $(ls "$T/split-mx2-a" | wc -l)))
at_once "the same chunks on two nodes at once" "$T/run1" "$T/run2" \
	run --verbose --defaults-file="$(galera_mycnf 1)" --incoming "$d1" -- \
	run --verbose --defaults-file="$(galera_mycnf 2)" --incoming "$d2"
drained "$d1" "$d2"
merge_expect "$T/want" "$T/e-mx1-a" "$T/e-mx2-a"
galera_exact "$T/want" "the same chunks on two nodes at once"
for i in 1 2 3; do
	[[ $(ledger "$i") == "$nchunks" ]] ||
		die "node $i: $(ledger "$i") ledger rows, not $nchunks"
done
dups=$(cat "$T/run1" "$T/run2" | grep -c ': already ingested' || true)
[[ $dups == "$nchunks" ]] || die "$dups chunks were found already ingested, not $nchunks"
# (A conflict met by a streamed batch says "(error 1213) while writing ahead, replaying"; both
# runs exited 0, so each 1213 was replayed. conflict_at counts them alike.)
conflicts=$(cat "$T/run1" "$T/run2" | grep -c '(error 1213)' || true)
echo "same chunks on two nodes: $nchunks chunks twice, each counted once;" \
	"$conflicts certification conflicts replayed"
tally galera_faults 1
tally galera_conflicts "$conflicts"

# --- 2b. certification conflicts, forced on the same rows ---
# Part 2 may race without one. Here node 1's run stops (RELAYWATCH_PAUSE) with its chunk's
# transaction open while node 2's run commits the same chunk: node 2's write set aborts node 1's
# transaction (a BF abort, or a certification failure if it was certifying already). The next
# statement node 1 sends fails with 1213; the chunk is replayed and found already ingested.
conflict_counters() { # the sum over the nodes of both counters of a lost conflict
	local i sum=0 n
	for i in 1 2 3; do
		n=$(galera_root "$i" "SELECT SUM(VARIABLE_VALUE)
			FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME
			IN ('WSREP_LOCAL_CERT_FAILURES', 'WSREP_LOCAL_BF_ABORTS')")
		sum=$((sum + n))
	done
	echo "$sum"
}
# conflict_at POINT WHAT EXPECT...: one new chunk waits in both drop directories; node 1's run
# stops at POINT, node 2's run commits the chunk, node 1's goes on; then every node holds the
# counts of EXPECT... (the --expect directories of all chunks so far).
conflict_at() {
	local point=$1 what=$2 counters after rc p1 i
	shift 2
	nchunks=$((nchunks + 1))
	counters=$(conflict_counters)
	RELAYWATCH_PAUSE=$point:1 "$INGEST" run --verbose --defaults-file="$(galera_mycnf 1)" \
		--incoming "$d1" >"$T/run1" 2>&1 &
	p1=$!
	on_exit "kill_child $p1 CONT"
	wait_stopped "$p1" "node 1's run ($what)" "$T/run1"
	rc=$(run_status 2 "$d2" "$T/run2")
	[[ $rc == 0 ]] || { cat "$T/run2" >&2; die "$what: node 2's run: exit $rc, not 0"; }
	grep -q ': 1 ingested' "$T/run2" ||
		{ cat "$T/run2" >&2; die "$what: node 2 ingested nothing"; }
	kill -CONT "$p1"
	rc=0
	wait "$p1" || rc=$?
	expect_status 0 "$rc" "$T/run1" "$what: node 1's run, whose transaction lost the conflict"
	grep -q '(error 1213)' "$T/run1" || {
		cat "$T/run1" >&2
		die "$what: node 1's transaction did not fail with a conflict (1213)"
	}
	grep -q ': already ingested' "$T/run1" ||
		{ cat "$T/run1" >&2; die "$what: node 1 counted the chunk too"; }
	after=$(conflict_counters)
	((after > counters)) ||
		die "$what: wsrep_local_cert_failures + wsrep_local_bf_aborts stayed at $counters"
	drained "$d1" "$d2"
	merge_expect "$T/want" "$@"
	galera_exact "$T/want" "$what"
	for i in 1 2 3; do
		[[ $(ledger "$i") == "$nchunks" ]] ||
			die "$what: node $i: $(ledger "$i") ledger rows, not $nchunks"
	done
	echo "$what: the cluster's conflict counters went from $counters to $after"
	tally galera_faults 1
	tally galera_conflicts "$(grep -c '(error 1213)' "$T/run1")"
}
# At COMMIT: the ledger row and all rows of a small chunk are in the aborted transaction.
chunks_of mx6-h mx6 300 37
drop mx6-h "$d1" "$d2"
so_far=("$T/e-mx1-a" "$T/e-mx2-a" "$T/e-mx6-h")
conflict_at db-before-commit "a conflict at COMMIT" "${so_far[@]}"
# Between two streamed batches of a large chunk (several 2 MB scan blocks, each finishing hours):
# the aborted transaction holds the first batch, and the next batch must not commit on its own.
gen --lines 100000 --seed 38 --host mx7 --service smtp --malformed 3 --out "$T/log-mx7-s" \
	--expect "$T/e-mx7-s"
make_chunk "$d1" mx7-s "$T/log-mx7-s" mx7 smtp
make_chunk "$d2" mx7-s "$T/log-mx7-s" mx7 smtp
so_far+=("$T/e-mx7-s")
conflict_at db-stream-batch "a conflict between streamed batches" "${so_far[@]}"
grep -Eq '[1-9][0-9]* batches written while scanning' "$T/run2" ||
	{ cat "$T/run2" >&2; die "node 2 streamed no batch of the large chunk"; }
# Right after its ledger row, in the first chunk of node 1's run (the first rows a connection
# sends): the aborted transaction holds only the ledger row, and the rows must not commit alone.
chunks_of mx8-l mx8 300 39
drop mx8-l "$d1" "$d2"
so_far+=("$T/e-mx8-l")
conflict_at db-after-ledger "a conflict after the ledger row" "${so_far[@]}"

# --- 3. a node killed with SIGKILL mid-ingest, restarted (IST) ---
chunks_of mx3-b mx3 24000 33
chunks_of mx4-b mx4 8000 34
drop mx3-b "$d2"
drop mx4-b "$d1"
nchunks=$((nchunks + $(ls "$T/split-mx3-b" | wc -l) + $(ls "$T/split-mx4-b" | wc -l)))
before=$(ledger 1)
ingest run --verbose --defaults-file="$(galera_mycnf 2)" --incoming "$d2" >"$T/run2" 2>&1 &
p2=$!
# Mid-ingest: some of the new chunks are in the ledger, and some still wait in incoming/.
mid_ingest() {
	(($(ledger 1) > before + 2)) && (($(count_files "$d2" '*.manifest') > 5))
}
wait_for "node 2 to be mid-ingest" mid_ingest
galera_kill 2
tally galera_faults 1
# The other stats server goes on with two nodes of three.
rc=$(run_status 1 "$d1" "$T/run1")
[[ $rc == 0 ]] || { cat "$T/run1" >&2; die "node 1 with node 2 dead: exit $rc, not 0"; }
kept_claim "$p2" "$T/run2" "the run on the killed node"
galera_restart 2
[[ $(galera_transfer 2) == IST ]] ||
	die "node 2 caught up by $(galera_transfer 2), not IST (see its log)"
rc=$(run_status 2 "$d2" "$T/run2b")
[[ $rc == 0 ]] || { cat "$T/run2b" >&2; die "the run after node 2 rejoined: exit $rc, not 0"; }
drained "$d1" "$d2"
merge_expect "$T/want" "${so_far[@]}" "$T/e-mx3-b" "$T/e-mx4-b"
galera_exact "$T/want" "a node killed mid-ingest and restarted by IST"
for i in 1 2 3; do
	[[ $(ledger "$i") == "$nchunks" ]] ||
		die "node $i: $(ledger "$i") ledger rows, not $nchunks"
done

# --- 4. a node cut off from the cluster mid-ingest (error 1047) ---
chunks_of mx5-c mx5 24000 35
drop mx5-c "$d2"
nchunks=$((nchunks + $(ls "$T/split-mx5-c" | wc -l)))
before=$(ledger 1)
ingest run --verbose --defaults-file="$(galera_mycnf 2)" --incoming "$d2" >"$T/run2" 2>&1 &
p2=$!
wait_for "node 2 to be mid-ingest" mid_ingest
galera_root 2 "SET GLOBAL wsrep_provider_options = 'gmcast.isolate = 1'"
tally galera_faults 1
kept_claim "$p2" "$T/run2" "the run on the isolated node"
# 1047 once it is out; a write caught as it leaves may fail with 1180 "Not connected to Primary
# Component" first.
grep -q '(error 1047)\|Primary Component' "$T/run2" || {
	cat "$T/run2" >&2
	die "the run never met the node outside the cluster"
}
mariadb --defaults-file="$GALERA/n2/root.cnf" -e \
	"SET GLOBAL wsrep_provider_options = 'gmcast.isolate = 0'"
wait_for "node 2 to rejoin" galera_ready 2
rc=$(run_status 2 "$d2" "$T/run2b")
[[ $rc == 0 ]] || { cat "$T/run2b" >&2; die "the run after node 2 came back: exit $rc, not 0"; }
drained "$d1" "$d2"
merge_expect "$T/want" "${so_far[@]}" "$T/e-mx3-b" "$T/e-mx4-b" "$T/e-mx5-c"
galera_exact "$T/want" "a node cut off from the cluster mid-ingest"
for i in 1 2 3; do
	[[ $(ledger "$i") == "$nchunks" ]] ||
		die "node $i: $(ledger "$i") ledger rows, not $nchunks"
done

# --- 5. a mail server that ships to both stats servers, failing over ---
# Stats server A drains its sshd's drop directory into node 1, B into node 3. A is down before the
# first run (B takes it); A is killed in the middle of the next run (the rest goes to B in the same
# run). Both ingest at the same moment after each run.
drop_sshd_prepare a
drop_sshd_prepare b
ina=${DROP_ROOT[a]}/incoming inb=${DROP_ROOT[b]}/incoming
SHIP_HOSTS="127.0.0.1:${DROP_PORT[a]} 127.0.0.1:${DROP_PORT[b]}" \
	ship_conf "$T/ship.conf" "known_hosts=$DROP_KNOWN_HOSTS" remote_dir=incoming \
	max_chunk=64k parallel=1 connect_timeout=5 <<<"source = $LOGS/maillog syslog"
gen --lines 12000 --seed 36 --host mail1 --service smtp --malformed 2 --out "$T/log-ship" \
	--expect "$T/e-ship"
# grow N: the log grows to the first N lines of the generated one, as a logger writes it.
have=0
grow() {
	head -n "$1" "$T/log-ship" | tail -n "+$((have + 1))" >>"$LOGS/maillog"
	have=$1
}
# both_ingest: A and B drain their drop directories at the same moment.
both_ingest() {
	at_once "$1: the stats servers' runs" "$T/runa" "$T/runb" \
		run --defaults-file="$(galera_mycnf 1)" --incoming "$ina" -- \
		run --defaults-file="$(galera_mycnf 3)" --incoming "$inb"
	drained "$ina" "$inb"
}

drop_sshd_start b
grow 4000
ship_rc 0 --config "$T/ship.conf" --verbose
grep -q "cannot connect to 127.0.0.1 port ${DROP_PORT[a]}" "$T/err" || {
	cat "$T/err" >&2
	die "the first stats server was down, and the shipper did not say so"
}
(($(count_files "$inb" '*.manifest') > 0 && $(count_files "$ina" '*.manifest') == 0)) ||
	die "with A down, the run did not go to B"
tally galera_faults 1
both_ingest "A down before the run"

drop_sshd_start a
grow 12000
ship_fails_over a b --config "$T/ship.conf"
(($(count_files "$ina" '*.manifest') > 0)) || die "A got nothing before it died"
tally galera_faults 1
both_ingest "A killed mid-run"
drop_sshd_start a
ship_ok --config "$T/ship.conf"
both_ingest "after A came back"
merge_expect "$T/want" "${so_far[@]}" "$T/e-mx3-b" "$T/e-mx4-b" "$T/e-mx5-c" "$T/e-ship"
galera_exact "$T/want" "a mail server failing over between the stats servers"
echo "failover: $(count_files "${DROP_ROOT[a]}/incoming/archive" '*.manifest') chunks through A," \
	"$(count_files "${DROP_ROOT[b]}/incoming/archive" '*.manifest') through B"

# --- 6. purge within the cluster's write-set limit ---
# A DELETE of more rows than wsrep_max_ws_rows fails whole; purge cuts its batches to the limit.
# (The generated logs are of 2014: all older than 400 days.)
rows=$(galera_root 3 "SELECT (SELECT COUNT(*) FROM relaywatch.event_hourly) +
	(SELECT COUNT(*) FROM relaywatch.relay_hourly) +
	(SELECT COUNT(*) FROM relaywatch.denied_hourly)")
(( rows > 500 )) || die "only $rows aggregate rows to purge"
kept=$(ledger 1)
galera_root 1 "SET GLOBAL wsrep_max_ws_rows = 200"
on_exit 'galera_root 1 "SET GLOBAL wsrep_max_ws_rows = 0" 2>/dev/null'
# The limit is real: one DELETE of more rows fails whole.
if galera_root 1 "DELETE FROM relaywatch.relay_hourly LIMIT 500" 2>"$T/limit"; then
	die "a DELETE of 500 rows passed wsrep_max_ws_rows = 200"
fi
grep -q 'wsrep_max_ws_rows\|1180' "$T/limit" || { cat "$T/limit" >&2; die "unexpected error"; }
rc=0
ingest purge --verbose --older-than 400d --defaults-file="$(galera_mycnf 1)" >"$T/purge" 2>&1 ||
	rc=$?
[[ $rc == 0 ]] || { cat "$T/purge" >&2; die "purge under wsrep_max_ws_rows = 200: exit $rc"; }
grep -q 'batches of 200 rows' "$T/purge" || { cat "$T/purge" >&2; die "purge kept its batch size"; }
galera_root 1 "SET GLOBAL wsrep_max_ws_rows = 0"
# The ledger rows stay: their chunks were ingested today.
for i in 1 2 3; do
	left=$(galera_root "$i" "SELECT (SELECT COUNT(*) FROM relaywatch.event_hourly) +
		(SELECT COUNT(*) FROM relaywatch.relay_hourly) +
		(SELECT COUNT(*) FROM relaywatch.denied_hourly)")
	[[ $left == 0 ]] || die "node $i: $left aggregate rows left after purge"
	[[ $(ledger "$i") == "$kept" ]] || die "node $i: purge deleted ledger rows of today"
done
echo "purge: $rows aggregate rows in batches of 200, gone from every node"
tally galera_faults 1
exit 0
