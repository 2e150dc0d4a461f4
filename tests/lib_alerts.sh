# Sourced after tests/lib.sh by the tests of check --new and alert_command (it_check_new.sh,
# it_check_alert_command.sh, it_check_latency.sh). Provides:
#   hour_clock          sets $now to the clock, at least 2 s into its hour (it waits for them),
#                       and $H to the start of that hour (UTC seconds); run when sourced
#   iso T               T as check prints an hour: 2024-03-10T13:00Z
#   lines ARGS...       CHKUSER lines of tests/chkuser_lines.py on stdout
#   feed ARGS...        writes `lines --host mx1 ARGS` into a new file and backfills it as mx1
#   new OUT             one `check --new` with $T/ingest.conf: output in OUT, stderr in OUT.err;
#                       prints its exit status
#   new_killed POINT OUT  one `check --new` killed (SIGKILL) the first time it passes the crash
#                       point POINT, its output in OUT; dies unless it was killed there
need_env RW_MYCNF RW_SRC

# A burst "in the current hour" needs some of it behind: in an hour's first 2 s this waits for
# them rather than have the burst spill into the hour before (CI met that at 05:00:00).
hour_clock() {
	now=$(date +%s)
	if ((now % 3600 < 2)); then
		sleep 2
		now=$(date +%s)
	fi
	H=$((now - now % 3600))
}
hour_clock

iso() {
	date -u -d "@$1" +%Y-%m-%dT%H:%MZ
}

lines() {
	python3 "$RW_SRC/tests/chkuser_lines.py" "$@"
}

feed_n=0
feed() {
	feed_n=$((feed_n + 1))
	lines --host mx1 "$@" >"$T/feed$feed_n.log"
	ingest backfill --defaults-file="$MYCNF" --host mx1 "$T/feed$feed_n.log" >"$T/out" 2>&1 ||
		{ cat "$T/out" >&2; die "backfill of feed$feed_n failed"; }
}

new() {
	local rc=0
	ingest check --new -c "$T/ingest.conf" --defaults-file="$MYCNF" >"$1" 2>"$1.err" || rc=$?
	echo "$rc"
}

new_killed() {
	local point=$1 out=$2 rc=0
	# (bash's own "Killed" notice for the expected kill goes to /dev/null, the run's to OUT.)
	{ RELAYWATCH_CRASH=$point:1 "$INGEST" check --new -c "$T/ingest.conf" \
		--defaults-file="$MYCNF" >"$out" 2>&1; } 2>/dev/null || rc=$?
	[[ $rc == 137 ]] || {
		cat "$out" >&2
		die "check --new with RELAYWATCH_CRASH=$point:1 exited $rc, want 137"
	}
}
