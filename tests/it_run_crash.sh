#!/usr/bin/env bash
# `relaywatch-ingest run` killed with SIGKILL at every crash point of the drain (and a few random
# moments): the next run takes the stale claim over and every chunk ends up counted exactly once
# and archived. The points, in the order a chunk passes them:
#   run-claim         manifest renamed into work/, NAME.gz still in the drop directory
#   scan-block        in the middle of decompressing and counting
#   db-stream-batch   rows of the hours read so far sent inside the open transaction, while
#                     the rest is still being read (a batch's first chunk is big enough)
#   db-before-commit  every row sent, transaction open
#   db-after-commit   committed, nothing moved yet
#   run-after-commit  the same, one level up
#   run-archive       NAME.gz archived, the manifest still claimed in work/
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
need_env RW_MYCNF
db_migrated run_crash

in=$T/incoming
mkdir -p "$in"
expects=()
chunks=0
batch=0
crashes=0

# new_batch [LINES]: three chunks (two hosts, one multilog) that no earlier batch had; the first
# has LINES lines (3000).
new_batch() {
	batch=$((batch + 1))
	gen --lines "${1:-3000}" --seed "$((700 + batch))" --host mx1 --out "$T/a$batch" \
		--expect "$T/ea$batch"
	gen --lines 2000 --seed "$((800 + batch))" --host mx2 --format labelled --out "$T/b$batch" \
		--expect "$T/eb$batch"
	gen --lines 1000 --seed "$((900 + batch))" --host mx3 --service smtp-mx --format multilog \
		--out "$T/c$batch" --expect "$T/ec$batch"
	expects+=("$T/ea$batch" "$T/eb$batch" "$T/ec$batch")
	make_chunk "$in" "b$batch-1" "$T/a$batch" mx1 smtp
	make_chunk "$in" "b$batch-2" "$T/b$batch" mx2 smtp
	make_chunk "$in" "b$batch-3" "$T/c$batch" mx3 smtp-mx multilog
	chunks=$((chunks + 3))
}

# check_clean: a run without faults finishes everything and leaves nothing behind.
check_clean() {
	local rc=0
	ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
	[[ $rc == 0 ]] || { cat "$T/out" >&2; die "$1: the run after the crash: exit status $rc"; }
	[[ $(count_files "$in" '*.manifest') == 0 && $(count_files "$in" '*.gz') == 0 ]] ||
		die "$1: chunks left in the drop directory"
	[[ $(count_files "$in/work" '*') == 0 ]] || die "$1: chunks left in work/"
	[[ $(count_files "$in/quarantine" '*') == 0 ]] || die "$1: something was quarantined"
}

for point in run-claim:1 run-claim:3 scan-block:1 scan-block:2 db-stream-batch:1 \
	db-before-commit:1 db-before-commit:3 db-after-commit:1 db-after-commit:2 \
	run-after-commit:1 run-after-commit:3 run-archive:1 run-archive:2; do
	if [[ $point == db-stream-* ]]; then
		new_batch 40000 # 5 MB over three hours: its first hour goes while the rest is read
	else
		new_batch
	fi
	rc=0
	RELAYWATCH_CRASH=$point ingest run --defaults-file="$MYCNF" --incoming "$in" \
		>"$T/out" 2>&1 || rc=$?
	[[ $rc == 137 ]] || { cat "$T/out" >&2; die "$point: exit status $rc, not 137 (SIGKILL)"; }
	crashes=$((crashes + 1))
	# Crash twice in a row at the same point on the claims it left behind, then recover.
	if [[ $point == *:1 ]]; then
		rc=0
		RELAYWATCH_CRASH=$point ingest run --defaults-file="$MYCNF" --incoming "$in" \
			>"$T/out" 2>&1 || rc=$?
		[[ $rc == 137 ]] ||
			{ cat "$T/out" >&2; die "$point again: exit status $rc, not 137"; }
		crashes=$((crashes + 1))
	fi
	if [[ $point == scan-block:1 || $point == db-stream-batch:1 ]]; then
		# Killed twice while reading one chunk, the second time in the takeover: the next
		# run quarantines it rather than die on it forever (issue 10); put back, it counts
		# once.
		rc=0
		ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
		[[ $rc == 1 ]] ||
			{ cat "$T/out" >&2; die "$point, third run: exit status $rc, not 1"; }
		grep -q "died while reading this chunk twice" "$in"/quarantine/*.why ||
			die "$point: the chunk read by two killed runs was not quarantined for it"
		requeue "$in"
	fi
	check_clean "$point"
done

# Kills at moments nobody chose. A run may finish before its kill: that is no crash, and it must
# have succeeded (how many land depends on the machine's speed, so none is required).
for i in 1 2 3 4 5 6; do
	new_batch
	# The program itself, not the shell function: $! must be its PID.
	"$INGEST" run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 &
	pid=$!
	sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
	kill_child "$pid" || true
	rc=0
	{ wait "$pid"; } 2>/dev/null || rc=$?
	if [[ $rc == 137 ]]; then
		crashes=$((crashes + 1))
	elif [[ $rc != 0 ]]; then
		cat "$T/out" >&2
		die "random kill $i: the run exited $rc (neither killed nor successful)"
	fi
	check_clean "random kill $i"
done

merge_expect "$T/want" "${expects[@]}"
dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "after $crashes crashes the counts are not exact"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == "$chunks" ]] ||
	die "expected $chunks ledger rows, found $(db_query "SELECT COUNT(*) FROM chunks")"
[[ $(count_files "$in/archive" '*.manifest') == "$chunks" &&
	$(count_files "$in/archive" '*.gz') == "$chunks" ]] || die "not every chunk was archived"
echo "it_run_crash: $crashes crashes, $chunks chunks, 0 lost, 0 counted twice"
exit 0
