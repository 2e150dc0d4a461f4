#!/usr/bin/env bash
# The database writes that overlap the scan (overlap.c): rows streamed while the file is still
# being read count exactly once when the stream succeeds, when its connection is killed in the
# middle (the ingest replays the whole chunk), when the ingester is killed in the middle (nothing
# stays), and when the same file comes again (the streamed rows are rolled back).
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF
db_migrated backfill_overlap

# ~40 hours of log: the scan finishes many hours while it reads, so the writer has work.
gen --lines 400000 --seed 301 --format syslog --host mx1 --service smtp --malformed 3 \
	--out "$T/maillog" --expect "$T/want"

# The log through a pipe (feed_halves PIPE): its second half is written only once $T/go exists,
# so that a backfill stopped at its first streamed batch still has hours to hand to the writer
# when it goes on, however fast its scan is.
feed_halves() {
	rm -f "$T/go" "$1"
	mkfifo "$1"
	local half
	half=$(($(wc -l <"$T/maillog") / 2))
	{
		head -n "$half" "$T/maillog"
		until [[ -e $T/go ]]; do sleep 0.1; done
		tail -n +"$((half + 1))" "$T/maillog"
	} >"$1" &
	on_exit "kill_child $! KILL"
}

# rows_in_db: the rows of the ledger and the three aggregate tables, all together.
rows_in_db() {
	db_query "SELECT (SELECT COUNT(*) FROM chunks) + (SELECT COUNT(*) FROM relay_hourly)
		+ (SELECT COUNT(*) FROM event_hourly) + (SELECT COUNT(*) FROM denied_hourly)"
}

# 1. Stopped just after the writer sent its first batch; the connection is killed meanwhile.
feed_halves "$T/pipe"
RELAYWATCH_PAUSE=db-stream-batch:1 "$INGEST" backfill --defaults-file="$MYCNF" --verbose \
	"$T/pipe" >"$T/out" 2>&1 &
pid=$!
on_exit "kill_child $pid KILL"
wait_stopped "$pid" "the backfill paused after its first streamed batch" "$T/out"
# Its transaction holds rows already: nobody else sees them, ledger row or counts.
[[ $(rows_in_db) == 0 ]] || die "rows of the streamed batch visible before the commit"
kill_db_connection
touch "$T/go"
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
((rc == 0)) || { cat "$T/out" >&2; die "backfill whose stream lost its connection exited $rc"; }
grep -q 'while writing ahead, replaying' "$T/out" || { cat "$T/out" >&2; die "no replay said"; }
dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "counts after a replay of a killed stream"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 1 ]] || die "expected one ledger row"

# 2. The same file again: streamed, found in the ledger at the end, rolled back.
ingest backfill --defaults-file="$MYCNF" --verbose "$T/maillog" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; die "the second backfill failed"; }
grep -q 'already ingested' "$T/out" || { cat "$T/out" >&2; die "no 'already ingested'"; }
grep -Eq '[1-9][0-9]* batches written while scanning, rolled back' "$T/out" || {
	cat "$T/out" >&2
	die "the second backfill wrote nothing ahead (its rollback is untested)"
}
dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "counts after the same file again"

# 3. Killed (SIGKILL) after its second streamed batch: nothing of it stays; the next one counts.
# Held at its first batch until the second half of the log comes, so that there is a second.
db_migrated backfill_overlap
feed_halves "$T/pipe"
RELAYWATCH_PAUSE=db-stream-batch:1 RELAYWATCH_CRASH=db-stream-batch:2 "$INGEST" backfill \
	--defaults-file="$MYCNF" "$T/pipe" >"$T/out" 2>&1 &
pid=$!
on_exit "kill_child $pid KILL"
wait_stopped "$pid" "the backfill paused at its first streamed batch" "$T/out"
touch "$T/go"
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
((rc == 137)) || { cat "$T/out" >&2; die "expected death by SIGKILL, got exit $rc"; }
[[ $(rows_in_db) == 0 ]] || die "rows of a killed backfill stayed"
ingest backfill --defaults-file="$MYCNF" --verbose "$T/maillog" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; die "backfill after the crash failed"; }
grep -Eq '[1-9][0-9]* batches written while scanning' "$T/out" ||
	{ cat "$T/out" >&2; die "nothing was written while scanning"; }
dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "counts after a crash in the middle of a stream"
