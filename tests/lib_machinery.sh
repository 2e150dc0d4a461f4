# Sourced after lib.sh, lib_ship.sh and fault_lib.sh by the real-machinery tests
# (tests/it_machinery_*.sh): the real log programs (logrotate, multilog, rsyslogd + logger) rotate
# what a producer (tests/producer.py) writes without a pause, while relaywatch-ship and
# `relaywatch-ingest run` run in loops. Provides:
#
#   $PRODUCER               tests/producer.py, run with python3
#   machinery_producer_args NAME GATE_BYTES
#                           prints the producer options of the producer NAME: --progress
#                           $T/progress.NAME, --gate $T/gate.NAME --gate-bytes GATE_BYTES
#   machinery_loops_start CONF
#                           starts the two loops in the background: relaywatch-ship --config
#                           CONF, and `relaywatch-ingest run` into $MYCNF from $DROP; a failed
#                           run (or one that printed anything) is recorded in $T/failed. Before
#                           each shipper run the loop notes how many bytes each producer had
#                           written; once the run has succeeded, that is the producer's gate.
#   machinery_wait_progress NAME N
#                           waits until the producer NAME has written N lines (fails when it
#                           wrote nothing for 60 s: a hang, not a slow machine)
#   machinery_rotate_at NAME TOTAL R CMD...
#                           runs CMD R times, when the producer NAME has written k * TOTAL /
#                           (R + 1) lines (k = 1..R): rotations at fixed points of the writing,
#                           however fast the machine is; tallies each (machinery_rotations)
#   machinery_finish CONF   stops the loops, ships and drains once more (both must succeed
#                           silently), and checks that no run of the loops failed and that
#                           nothing is left in the drop directory, work/ or quarantine/
#   machinery_gate_bytes TOTAL_BYTES R
#                           a --gate-bytes for a producer of TOTAL_BYTES rotated R times: a
#                           quarter of the bytes between two rotations. A file rotated at
#                           rotation k is complete then; until a shipper run that began after it
#                           succeeds, the producer writes at most a quarter of the way to
#                           rotation k + 1, so the file is shipped before logrotate's `rotate N`
#                           (N >= 2) deletes it.
need_env RW_MYCNF

PRODUCER=$RW_SRC/tests/producer.py

machinery__ship_loop() {
	local conf=$1 n=0 rc f name bytes
	local -A start
	while [[ ! -e $T/loops-stop ]]; do
		start=()
		for f in "$T"/progress.*; do
			[[ -e $f ]] || continue
			read -r _ bytes <"$f" || continue
			start[${f##*/progress.}]=$bytes
		done
		rc=0
		"$SHIP" --config "$conf" >"$T/ship-loop.out" 2>&1 || rc=$?
		n=$((n + 1))
		if [[ $rc != 0 || -s $T/ship-loop.out ]]; then
			echo "relaywatch-ship run $n: exit $rc: $(cat "$T/ship-loop.out")" \
				>>"$T/failed"
		else
			# What each producer had written when this run began is shipped, once it was
			# on disk by then (a pipe into multilog or logger holds 64 kB more: the
			# tests allow for it).
			for name in "${!start[@]}"; do
				echo "${start[$name]}" >"$T/gate.$name.tmp"
				mv "$T/gate.$name.tmp" "$T/gate.$name"
			done
		fi
		echo "$n" >"$T/ship-runs"
		sleep 0.05
	done
}

machinery__run_loop() {
	local n=0 rc
	while [[ ! -e $T/loops-stop ]]; do
		rc=0
		"$INGEST" run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/run-loop.out" 2>&1 ||
			rc=$?
		n=$((n + 1))
		if [[ $rc != 0 ]] || problem_lines "$T/run-loop.out" | grep -q .; then
			echo "relaywatch-ingest run $n: exit $rc: $(cat "$T/run-loop.out")" \
				>>"$T/failed"
		fi
		sleep 0.2
	done
}

machinery_producer_args() {
	echo "--progress $T/progress.$1 --gate $T/gate.$1 --gate-bytes $2"
}

machinery_loops_start() {
	echo 0 >"$T/ship-runs"
	rm -f "$T/loops-stop"
	machinery__ship_loop "$1" &
	MACHINERY_SHIP_PID=$!
	on_exit "kill_child $MACHINERY_SHIP_PID TERM"
	machinery__run_loop &
	MACHINERY_RUN_PID=$!
	on_exit "kill_child $MACHINERY_RUN_PID TERM"
}

machinery_gate_bytes() {
	echo $(($1 / ($2 + 1) / 4))
}

machinery_wait_progress() {
	local got last=-1 deadline=0
	while :; do
		{ read -r got _ <"$T/progress.$1"; } 2>/dev/null || got=0
		((got >= $2)) && return 0
		if ((got != last)); then
			last=$got
			deadline=$((SECONDS + 60))
		elif ((SECONDS >= deadline)); then
			wait_for_diagnose >&2 || true
			die "the producer $1 stopped at $got lines, before $2"
		fi
		sleep 0.05
	done
}

machinery_rotate_at() {
	local name=$1 total=$2 r=$3 k
	shift 3
	for ((k = 1; k <= r; k++)); do
		machinery_wait_progress "$name" $((k * total / (r + 1)))
		"$@" || die "rotation $k: $* failed"
		tally machinery_rotations 1
	done
}

# What the loops wrote when a wait gives up (wait_for calls it).
wait_for_diagnose() {
	echo "relaywatch-ship runs: $(cat "$T/ship-runs" 2>/dev/null)"
	cat "$T/failed" 2>/dev/null || true
}

machinery_finish() {
	local conf=$1 rc
	touch "$T/loops-stop"
	wait "$MACHINERY_SHIP_PID" || die "the relaywatch-ship loop failed"
	wait "$MACHINERY_RUN_PID" || die "the relaywatch-ingest run loop failed"
	echo "relaywatch-ship ran $(cat "$T/ship-runs") times in its loop"
	if [[ -s $T/failed ]]; then
		cat "$T/failed" >&2
		die "some runs of the loops failed"
	fi
	ship_ok --config "$conf"
	rc=0
	ingest run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "the final run"
	[[ $(find "$DROP" -maxdepth 1 -name '*.manifest' | wc -l) == 0 ]] ||
		die "chunks left undrained"
	[[ $(find "$DROP/work" "$DROP/quarantine" -mindepth 1 2>/dev/null | wc -l) == 0 ]] ||
		die "chunks left in work/ or quarantine/"
}
