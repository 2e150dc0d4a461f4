#!/usr/bin/env bash
# Exactly once: backfilling the same data again (same file, a renamed copy, the same content
# gzipped, from stdin) changes nothing and says so in one line per file.
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF
db_migrated backfill_twice

gen --lines 50000 --seed 201 --format syslog --host mx1 --service smtp --malformed 7 \
	--out "$T/maillog" --expect "$T/want"
ingest backfill --defaults-file="$MYCNF" "$T/maillog" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; die "first backfill failed"; }
quiet_but_malformed "$T/out"
db_snapshot "$T/before"

# again_and_unchanged NOTICES ARGS...: a backfill that must succeed, print exactly NOTICES lines,
# each the notice "NAME: already ingested (chunk ID...), skipped" (a chunk already counted is not
# reported again: not even its malformed lines), and leave every table as it was.
again_and_unchanged() {
	local notices=$1 rc=0 lines skipped
	shift
	ingest backfill --defaults-file="$MYCNF" "$@" >"$T/out" 2>&1 || rc=$?
	[[ $rc == 0 ]] || { cat "$T/out" >&2; die "backfill $* again: exit status $rc"; }
	cp "$T/out" "$T/notices"
	# Both counts: a line of another kind (an error, a report of malformed lines) must not pass
	# for a notice.
	lines=$(wc -l <"$T/notices")
	skipped=$(grep -c 'already ingested .*skipped' "$T/notices" || true)
	[[ $lines == "$notices" && $skipped == "$notices" ]] || {
		cat "$T/out" >&2
		die "backfill $* again: $lines line(s)," \
			"$skipped \"already ingested ..., skipped\";" \
			"expected $notices of each"
	}
	db_snapshot "$T/after"
	cmp -s "$T/before" "$T/after" || {
		diff "$T/before" "$T/after" | head -n 20 >&2
		die "backfill $* again changed the database"
	}
}

again_and_unchanged 1 "$T/maillog"
cp "$T/maillog" "$T/maillog.1"
again_and_unchanged 1 "$T/maillog.1"
gzip -c "$T/maillog" >"$T/maillog.2.gz"
again_and_unchanged 1 "$T/maillog.2.gz"
gzip -9 -c "$T/maillog" >"$T/maillog-20140129.gz"
again_and_unchanged 2 "$T/maillog-20140129.gz" "$T/maillog"
again_and_unchanged 1 - <"$T/maillog"
gzip -c "$T/maillog" | again_and_unchanged 1 -

dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "the views differ from the generator's counts"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 1 ]] || die "expected exactly one ledger row"
