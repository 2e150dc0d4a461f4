#!/usr/bin/env bash
# Generated logs in every format (splogger/syslog, multilog, the labelled chkuser variant), plain,
# gzip and multi-member gzip, CRLF and a last line without newline: after `backfill` every view
# and every ledger row holds exactly the generator's counts.
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF
db_fresh backfill_counts

# Two files of host mx1 overlap in time (their rows must add up), one is multilog (no header:
# host and service come from the command line).
gen --lines 90000 --seed 101 --format syslog --host mx1 --service smtp,smtp-mx --malformed 25 \
	--start 1390973534 --out "$T/maillog" --expect "$T/e-syslog"
gen --lines 60000 --seed 102 --format multilog --host mx2 --service smtp-mx --malformed 10 \
	--start 1390990000 --incident --out "$T/current" --expect "$T/e-multilog"
gen --lines 50000 --seed 103 --format labelled --host mx1 --service smtp --start 1390980000 \
	--out "$T/labelled" --expect "$T/e-labelled"
merge_expect "$T/want" "$T/e-syslog" "$T/e-multilog" "$T/e-labelled"

# maillog.1.gz: two gzip members, split at a line boundary (as `cat a.gz b.gz` makes them).
head -n 40000 "$T/maillog" >"$T/part1"
tail -n +40001 "$T/maillog" >"$T/part2"
gzip -n "$T/part1" "$T/part2"
cat "$T/part1.gz" "$T/part2.gz" >"$T/maillog.1.gz"
# multilog file with CRLF line ends (the CR is not part of the description).
sed 's/$/\r/' "$T/current" >"$T/@4000000052e8a6f000000000.s"
# the labelled file loses its last newline, then is gzipped.
head -c -1 "$T/labelled" >"$T/labelled.log"
gzip -n "$T/labelled.log"

ingest migrate --defaults-file="$MYCNF" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; die "migrate failed"; }
[[ ! -s $T/out ]] || { cat "$T/out" >&2; die "migrate is not silent on success"; }

# One command with a header-less file and a syslog file: --host/--service only fill in what the
# lines do not say.
ingest backfill --defaults-file="$MYCNF" --host mx2 --service smtp-mx \
	"$T/@4000000052e8a6f000000000.s" "$T/maillog.1.gz" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; die "backfill failed"; }
quiet_but_malformed "$T/out"
ingest backfill --defaults-file="$MYCNF" "$T/labelled.log.gz" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; die "backfill failed"; }
quiet_but_malformed "$T/out"

dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "the views differ from the generator's counts"

# One ledger row per chunk, identified by the SHA-256 of its uncompressed bytes.
expect_chunk() { # plain-file expect-dir
	local id lines events malformed bytes row
	id=$(sha256sum <"$1" | cut -d' ' -f1)
	lines=$(awk -F'\t' '$1 == "lines" { print $2 }' "$2/totals.tsv")
	events=$(awk -F'\t' '$1 == "events" { print $2 }' "$2/totals.tsv")
	malformed=$(awk -F'\t' '$1 == "malformed" { print $2 }' "$2/totals.tsv")
	bytes=$(stat -c %s "$1")
	row=$(db_query "SELECT line_count, event_count, malformed_count, bytes FROM chunks
		WHERE chunk_id = '$id'")
	[[ -n $row ]] || die "no ledger row for $(basename "$1") ($id)"
	[[ $row == "$lines	$events	$malformed	$bytes" ]] ||
		die "ledger row of $(basename "$1"): '$row'," \
			"expected '$lines	$events	$malformed	$bytes'"
}
gunzip -c "$T/labelled.log.gz" >"$T/labelled.plain"
expect_chunk "$T/maillog" "$T/e-syslog"
expect_chunk "$T/@4000000052e8a6f000000000.s" "$T/e-multilog"
expect_chunk "$T/labelled.plain" "$T/e-labelled"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 3 ]] || die "expected exactly 3 ledger rows"
