#!/usr/bin/env bash
# `purge`: --dry-run counts exactly what a purge deletes and deletes nothing; a purge in small
# batches removes every aggregate row before its cutoff and nothing after it, and only the ledger
# rows whose data and ingestion are both older, reading them through the ledger's
# (ingested_at, last_utc) index, which `migrate` adds to a database of schema version 3; bad ages
# are refused.
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF RW_SRC
db_migrated report_purge

python3 "$RW_SRC/tests/it_check_plant.py" "$T" || die "the planting script failed"
for h in mx1 mx2 mx3; do
	ingest backfill --defaults-file="$MYCNF" --host "$h" "$T/$h.log" >"$T/out" 2>&1 ||
		{ cat "$T/out" >&2; die "backfill of $h failed"; }
done
printf '# empty\n' >"$T/ingest.conf"
chmod 600 "$T/ingest.conf"
# Ledger rows of other ages: old data ingested long ago (goes), old data ingested just now (the
# three backfills above, and this one: stays, or the chunk could be counted again), no stamped
# line and ingested long ago (goes).
db_query "INSERT INTO chunks (chunk_id, host, source, first_utc, last_utc, line_count, event_count,
	malformed_count, bytes, ingested_at) VALUES
	(REPEAT('a', 64), 'old', 'x', '2023-01-01 00:00:00', '2023-01-02 00:00:00', 1, 0, 0, 1,
	 '2023-01-03 00:00:00'),
	(REPEAT('b', 64), 'new', 'x', '2023-01-01 00:00:00', '2023-01-02 00:00:00', 1, 0, 0, 1,
	 UTC_TIMESTAMP()),
	(REPEAT('c', 64), 'old', 'x', NULL, NULL, 1, 0, 0, 1, '2023-01-03 00:00:00')"

# The database as schema version 3 left it (no index on the ledger's times): migrate adds the
# index and keeps every row.
db_query "ALTER TABLE chunks DROP INDEX ingested_last; UPDATE schema_version SET version = 3"
ingest migrate --defaults-file="$MYCNF" || die "the upgrade from schema version 3 failed"
[[ $(db_query "SELECT version FROM schema_version") == 4 ]] || die "migrate did not reach version 4"
cols=$(db_query "SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index)
	FROM information_schema.statistics
	WHERE table_schema = DATABASE() AND table_name = 'chunks' AND index_name = 'ingested_last'")
[[ $cols == ingested_at,last_utc ]] ||
	die "the upgrade did not add the ledger's (ingested_at, last_utc) index"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 6 ]] || die "the upgrade changed the ledger"

# The cutoff falls inside the planted data: about 2024-03-06 (now minus a whole number of days).
age=$(python3 -c 'import calendar, time
print(int((time.time() - calendar.timegm((2024, 3, 6, 12, 0, 0))) // 86400) + 1)')
ingest purge --defaults-file="$MYCNF" -c "$T/ingest.conf" --older-than "${age}d" --dry-run \
	>"$T/dry" 2>&1 || { cat "$T/dry" >&2; die "purge --dry-run failed"; }
db_snapshot "$T/before"
cutoff=$(sed -n 's/^event_hourly: [0-9]* rows before \(.*\) UTC would be deleted$/\1/p' "$T/dry")
[[ $cutoff =~ ^2024-03-0[56]\ [0-9]{2}:00:00$ ]] ||
	{ cat "$T/dry" >&2; die "no cutoff in the dry run"; }
for t in event_hourly relay_hourly denied_hourly; do
	n=$(db_query "SELECT COUNT(*) FROM $t WHERE hour_utc < '$cutoff'")
	grep -qx "$t: $n rows before $cutoff UTC would be deleted" "$T/dry" ||
		{ cat "$T/dry" >&2; die "the dry run does not count $n rows of $t"; }
	[[ $n -gt 100 ]] || die "the cutoff leaves too little to purge in $t ($n)"
done
grep -qx "chunks: 2 ledger rows before $cutoff UTC would be deleted" "$T/dry" ||
	{ cat "$T/dry" >&2; die "the dry run does not count the two old ledger rows"; }
db_snapshot "$T/after-dry"
cmp -s "$T/before" "$T/after-dry" || die "--dry-run changed the database"

# The real thing, 500 rows a batch; it says what it deleted with -v, and nothing without.
for t in event_hourly relay_hourly denied_hourly; do
	db_query "SELECT COUNT(*), COALESCE(SUM(n), 0) FROM $t WHERE hour_utc >= '$cutoff'" \
		>"$T/keep.$t"
done
ingest purge --defaults-file="$MYCNF" -c "$T/ingest.conf" --older-than "${age}d" --batch 500 -vv \
	>"$T/out" 2>&1 || { cat "$T/out" >&2; die "purge failed"; }
# Its batches of ledger ids (the statements, as -vv logs them) can read the index.
sel=$(sed -n 's/.*sql: \(SELECT chunk_id FROM chunks .*\)$/\1/p' "$T/out" | head -n 1)
[[ -n $sel ]] || { cat "$T/out" >&2; die "purge -vv logged no SELECT of ledger ids"; }
db_query "EXPLAIN $sel" | cut -f 5 | grep -qw ingested_last || {
	db_query "EXPLAIN $sel" >&2
	die "the ledger's batch cannot use the (ingested_at, last_utc) index"
}
# The cutoff is now minus the age, so it may have moved on by an hour since the dry run.
cut2=$(sed -n 's/.*event_hourly: deleted [0-9]* rows before \(.*\) UTC$/\1/p' "$T/out")
[[ -n $cut2 ]] || { cat "$T/out" >&2; die "purge -v does not say what it deleted"; }
for t in event_hourly relay_hourly denied_hourly; do
	[[ $(db_query "SELECT COUNT(*) FROM $t WHERE hour_utc < '$cut2'") == 0 ]] ||
		die "$t still has rows before $cut2"
	[[ $cut2 == "$cutoff" ]] || continue
	cmp -s "$T/keep.$t" <(db_query "SELECT COUNT(*), COALESCE(SUM(n), 0) FROM $t
		WHERE hour_utc >= '$cutoff'") ||
		die "purge touched rows of $t after the cutoff"
done
[[ $(db_query "SELECT GROUP_CONCAT(LEFT(chunk_id, 1) ORDER BY chunk_id SEPARATOR '') FROM chunks
	WHERE host IN ('old', 'new')") == b ]] || die "purge deleted the wrong ledger rows"
[[ $(db_query "SELECT COUNT(*) FROM chunks WHERE host LIKE 'mx%'") == 3 ]] ||
	die "purge deleted ledger rows of chunks ingested just now"
ingest purge --defaults-file="$MYCNF" -c "$T/ingest.conf" --older-than "${age}d" >"$T/out" 2>&1 ||
	die "a second purge failed"
[[ ! -s $T/out ]] || { cat "$T/out" >&2; die "purge is not silent without -v"; }

# The report still works on what is left, and a backfill of the purged file stays a duplicate.
ingest report --defaults-file="$MYCNF" -c "$T/ingest.conf" --since 2024-03-01 --until 2024-03-11 \
	>/dev/null || die "report after purge failed"
ingest backfill --defaults-file="$MYCNF" --host mx1 "$T/mx1.log" >"$T/out" 2>&1 ||
	die "backfill failed"
grep -q 'already ingested' "$T/out" ||
	{ cat "$T/out" >&2; die "the purged chunk was counted again"; }

# Ages that would wipe too much by a slip are refused (exit 2).
for bad in 400 90000 0d 12h yesterday; do
	rc=0
	ingest purge --defaults-file="$MYCNF" -c "$T/ingest.conf" --older-than "$bad" 2>/dev/null ||
		rc=$?
	[[ $rc == 2 ]] || die "--older-than $bad gave exit $rc, want 2"
done
rc=0
ingest purge --defaults-file="$MYCNF" 2>/dev/null || rc=$?
[[ $rc == 2 ]] || die "purge without --older-than gave exit $rc, want 2"
exit 0
