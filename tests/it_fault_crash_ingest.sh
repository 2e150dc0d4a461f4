#!/usr/bin/env bash
# The ingester killed with SIGKILL at every pass of every crash point (RELAYWATCH_CRASH=NAME:N,
# common/crashpoint.c), in `backfill` and in `run`, then at random moments: after each kill the
# database holds exactly the chunks its ledger lists (no partial chunk), and a rerun ends with
# every view equal to the generator's counts, every chunk archived, nothing left in work/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
db_migrated fault_crash_ingest

# Four logs, each its own chunk with its own expectation (so that any subset of them can be
# checked), in all three formats; g1 spans two 2 MB scan blocks.
declare -A expect_of # chunk id (SHA-256 of the plain bytes) -> expectation directory
names=(g1 g2 g3 g4)
gen --lines 18000 --seed 601 --format syslog --host mx1 --service smtp,smtp-mx --malformed 9 \
	--out "$T/g1" --expect "$T/e-g1"
gen --lines 4000 --seed 602 --format labelled --host mx1 --service smtp --out "$T/g2" \
	--expect "$T/e-g2"
gen --lines 5000 --seed 603 --format multilog --host mx2 --service smtp-mx --incident \
	--out "$T/g3" --expect "$T/e-g3"
gen --lines 4000 --seed 604 --format syslog --host mx3 --service submission --malformed 5 \
	--start 1391000000 --out "$T/g4" --expect "$T/e-g4"
for n in "${names[@]}"; do
	expect_of[$(sha256sum <"$T/$n" | cut -d' ' -f1)]=$T/e-$n
done
merge_expect "$T/want" "$T"/e-g?
gzip -n -c "$T/g2" >"$T/g2.gz"
backfill_files=("$T/g1" "$T/g2.gz" "$T/g3" "$T/g4")

# The drop directory the way the shipper leaves it, kept aside and copied for every try.
mkdir -p "$T/drop"
for n in "${names[@]}"; do
	kind=syslog host=mx1 service=smtp
	case $n in
	g3) kind=multilog host=mx2 service=smtp-mx ;;
	esac
	make_chunk "$T/drop" "$n" "$T/$n" "$host" "$service" "$kind"
done

reset_db() {
	db_query "DELETE FROM chunks; TRUNCATE event_hourly; TRUNCATE relay_hourly;
		TRUNCATE denied_hourly"
}

crashes=0

# try_backfill POINT N: 0 when the run was killed there, 1 when it ran to its end (the point
# has fewer than N passes).
try_backfill() {
	local point=$1 n=$2 rc=0
	reset_db
	RELAYWATCH_CRASH=$point:$n ingest backfill --defaults-file="$MYCNF" --host mx2 \
		--service smtp-mx "${backfill_files[@]}" >"$T/out" 2>&1 || rc=$?
	if [[ $rc == 0 ]]; then
		exact "$T/want" "backfill that passed $point fewer than $n times"
		return 1
	fi
	expect_status 137 "$rc" "$T/out" "backfill with RELAYWATCH_CRASH=$point:$n"
	crashes=$((crashes + 1))
	ledger_consistent "backfill killed at $point:$n"
	rc=0
	ingest backfill --defaults-file="$MYCNF" --host mx2 --service smtp-mx \
		"${backfill_files[@]}" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "backfill after a kill at $point:$n"
	exact "$T/want" "backfill killed at $point:$n, then run again"
	return 0
}

# Every crash point of the ingester, found in its source, so that a new one is covered too;
# backfill passes those outside run's drain, run all of them; check --new's check-* points are
# it_check_new's and it_check_alert_command's.
mapfile -t points < <(grep -rhoE 'crashpoint\("[a-z0-9-]+"\)' "$RW_SRC/ingester" |
	sed -E 's/crashpoint\("(.*)"\)/\1/' | LC_ALL=C sort -u)
((${#points[@]} >= 6)) || die "found only ${#points[@]} crash points in ingester/"
for point in "${points[@]}"; do
	[[ $point != run-* && $point != check-* ]] || continue
	n=1
	while try_backfill "$point" "$n"; do
		n=$((n + 1))
	done
	((n > 1)) || die "backfill never passed the crash point $point"
done

# `run`: the claim survives the kill in work/ and the next run takes it over.
fresh_drop() {
	rm -rf "$T/in"
	cp -a "$T/drop" "$T/in"
}

drained() { # WHAT: every chunk counted and archived, nothing claimed or quarantined
	exact "$T/want" "$1"
	[[ $(count_files "$T/in" '*.manifest') == 0 ]] ||
		die "$1: chunks left in the drop directory"
	[[ $(count_files "$T/in/work" '*') == 0 ]] || die "$1: work/ is not empty"
	[[ $(count_files "$T/in/quarantine" '*') == 0 ]] || die "$1: something was quarantined"
	[[ $(count_files "$T/in/archive" '*.manifest') == 4 &&
		$(count_files "$T/in/archive" '*.gz') == 4 ]] ||
		die "$1: not every chunk was archived"
}

try_run() { # POINT N [POINT2:N2 for the rerun]
	local point=$1 n=$2 again=${3:-} rc=0
	reset_db
	fresh_drop
	RELAYWATCH_CRASH=$point:$n ingest run --defaults-file="$MYCNF" --incoming "$T/in" \
		>"$T/out" 2>&1 || rc=$?
	if [[ $rc == 0 ]]; then
		drained "run that passed $point fewer than $n times"
		return 1
	fi
	expect_status 137 "$rc" "$T/out" "run with RELAYWATCH_CRASH=$point:$n"
	crashes=$((crashes + 1))
	ledger_consistent "run killed at $point:$n"
	if [[ -n $again ]]; then
		# Killed again while taking over the first claim: the callers pick points that the
		# takeover is sure to pass, so anything but the kill is a failure.
		rc=0
		RELAYWATCH_CRASH=$again ingest run --defaults-file="$MYCNF" --incoming "$T/in" \
			>"$T/out" 2>&1 || rc=$?
		expect_status 137 "$rc" "$T/out" \
			"takeover with RELAYWATCH_CRASH=$again after a kill at $point:$n"
		crashes=$((crashes + 1))
		ledger_consistent "run killed at $point:$n, then at $again"
	fi
	rc=0
	ingest run --defaults-file="$MYCNF" --incoming "$T/in" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "run after a kill at $point:$n${again:+ and $again}"
	drained "run killed at $point:$n${again:+ and $again}, then run again"
	return 0
}

for point in "${points[@]}"; do
	[[ $point != check-* ]] || continue
	n=1
	while try_run "$point" "$n"; do
		n=$((n + 1))
	done
	((n > 1)) || die "run never passed the crash point $point"
done
# Two kills in a row: the takeover of a stale claim is itself killed. The first kill leaves one
# chunk claimed in work/, which the next run drains before anything else; the second point is
# one that its takeover passes for certain: db-before-commit:3 leaves the third chunk uncommitted,
# so the takeover ingests it again (db-before-commit:1); run-after-commit:2 leaves the second one
# committed but not archived, and the takeover, told it is a duplicate, passes run-after-commit:1
# before it archives it; scan-block:2 kills a run in the middle of a scan, before its commit, so
# the takeover commits that chunk (db-after-commit:1).
try_run db-before-commit 3 db-before-commit:1 || die "no crash at db-before-commit:3"
try_run run-after-commit 2 run-after-commit:1 || die "no crash at run-after-commit:2"
try_run scan-block 2 db-after-commit:1 || die "no crash at scan-block:2"
tally crash_points "$crashes"

# Random moments: SIGKILL after a random delay within the time an uninterrupted run takes here
# (measured first; the delays are seeded, where they land depends on the machine), twice per try
# (the second kill may hit the takeover of the first one's claim), then a clean run.
reset_db
fresh_drop
t0=${EPOCHREALTIME/./}
ingest run --defaults-file="$MYCNF" --incoming "$T/in" >"$T/out" 2>&1 ||
	die "an uninterrupted run failed"
span_us=$((${EPOCHREALTIME/./} - t0))
drained "an uninterrupted run"
RANDOM=4242
kills=0
for try in 1 2 3 4; do
	reset_db
	fresh_drop
	for kill in 1 2; do
		# The program itself, not the shell function: $! must be its PID.
		"$INGEST" run --defaults-file="$MYCNF" --incoming "$T/in" >"$T/out" 2>&1 &
		pid=$!
		on_exit "kill_child $pid"
		delay_us=$(((RANDOM * 32768 + RANDOM) % span_us))
		sleep "$((delay_us / 1000000)).$(printf '%06d' $((delay_us % 1000000)))"
		kill_child "$pid" || true
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		if [[ $rc == 137 ]]; then
			kills=$((kills + 1))
			ledger_consistent "run killed after $delay_us us (try $try, kill $kill)"
		else
			expect_status 0 "$rc" "$T/out" "run not killed after $delay_us us"
		fi
	done
	rc=0
	ingest run --defaults-file="$MYCNF" --incoming "$T/in" >"$T/out" 2>&1 || rc=$?
	if [[ $rc == 1 ]] && grep -q "died while reading this chunk twice" "$T/out"; then
		# Both kills landed while one chunk was read (the second in its takeover):
		# quarantined by design, so that a chunk that kills every reader cannot stop
		# ingestion (issue 10). Put back, as an admin would, it is counted once like the
		# others.
		requeue "$T/in"
		rc=0
		ingest run --defaults-file="$MYCNF" --incoming "$T/in" >"$T/out" 2>&1 || rc=$?
	fi
	expect_status 0 "$rc" "$T/out" "run after random kills (try $try)"
	drained "run after random kills (try $try)"
done
((kills > 0)) || die "no random kill landed inside a run"
tally random_kills "$kills"
exit 0
