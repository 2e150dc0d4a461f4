# Sourced after lib.sh, lib_ship.sh and fault_lib.sh by the real-machinery tests
# (tests/it_machinery_*.sh): the real log programs (logrotate, multilog, rsyslogd + logger) rotate
# what a producer (tests/producer.py) writes without a pause, while relaywatch-ship and
# `relaywatch-ingest run` run in loops. Provides:
#
#   $PRODUCER               tests/producer.py, run with python3
#   machinery_loops_start CONF
#                           starts the two loops in the background: relaywatch-ship --config
#                           CONF, after each run the count of successful runs in $T/ship-runs
#                           (the producers' --gate), and `relaywatch-ingest run` into $MYCNF from
#                           $DROP; a failed run is recorded in $T/failed
#   machinery_wait_progress FILE N
#                           waits until a producer's --progress FILE says N lines or more
#   machinery_rotate_at PROGRESS TOTAL R CMD...
#                           runs CMD R times, at the producer's progress k * TOTAL / (R + 1)
#                           lines (k = 1..R): rotations at fixed points of the writing, however
#                           fast the machine is; tallies each (machinery_rotations)
#   machinery_finish CONF   stops the loops, ships and drains once more (both must succeed
#                           silently), and checks that no run of the loops failed and that
#                           nothing is left in the drop directory, work/ or quarantine/
#   machinery_gate_bytes TOTAL_BYTES R
#                           a --gate-bytes for a producer of TOTAL_BYTES rotated R times: a
#                           quarter of the bytes between two rotations, so that at least two
#                           relaywatch-ship runs finish between any two rotations, and a rotated
#                           file is shipped before logrotate's `rotate N` (N >= 2) or multilog's
#                           `n` can delete it
need_env RW_MYCNF

PRODUCER=$RW_SRC/tests/producer.py

machinery__ship_loop() {
	local conf=$1 n=0 ok=0 rc
	while [[ ! -e $T/loops-stop ]]; do
		rc=0
		"$SHIP" --config "$conf" >"$T/ship-loop.out" 2>&1 || rc=$?
		n=$((n + 1))
		if [[ $rc != 0 || -s $T/ship-loop.out ]]; then
			echo "relaywatch-ship run $n: exit $rc: $(cat "$T/ship-loop.out")" >>"$T/failed"
		else
			# Only a run that shipped everything lets the producers go on.
			ok=$((ok + 1))
			echo "$ok" >"$T/ship-runs.tmp"
			mv "$T/ship-runs.tmp" "$T/ship-runs"
		fi
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
			echo "relaywatch-ingest run $n: exit $rc: $(cat "$T/run-loop.out")" >>"$T/failed"
		fi
		sleep 0.2
	done
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

machinery__progress_at_least() {
	local got
	got=$(cat "$1" 2>/dev/null) || return 1
	((got >= $2))
}

machinery_wait_progress() {
	wait_for "the producer to write $2 lines" machinery__progress_at_least "$1" "$2"
}

machinery_rotate_at() {
	local progress=$1 total=$2 r=$3 k
	shift 3
	for ((k = 1; k <= r; k++)); do
		machinery_wait_progress "$progress" $((k * total / (r + 1)))
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
	[[ $(find "$DROP" -maxdepth 1 -name '*.manifest' | wc -l) == 0 ]] || die "chunks left undrained"
	[[ $(find "$DROP/work" "$DROP/quarantine" -mindepth 1 2>/dev/null | wc -l) == 0 ]] ||
		die "chunks left in work/ or quarantine/"
}
