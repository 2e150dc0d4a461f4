#!/usr/bin/env bash
# `relaywatch-ingest run` over a drop directory built by hand: good chunks are counted exactly once
# and archived; lying manifests, a truncated gzip, a zero-byte chunk, a missing chunk, a manifest
# that names another file, and a symlinked chunk go to quarantine/ with a NAME.why; hidden
# (temporary) uploads and invalid names are never touched; the exit status says something failed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
need_env RW_MYCNF
db_migrated run_drain

in=$T/incoming
mkdir -p "$in"

gen --lines 20000 --seed 401 --host mx1 --service smtp --out "$T/a" --expect "$T/e-a"
gen --lines 15000 --seed 402 --host mx2 --service smtp-mx --format labelled --out "$T/b" \
	--expect "$T/e-b"
gen --lines 10000 --seed 403 --host mx3 --service submission --format multilog --out "$T/c" \
	--expect "$T/e-c"
gen --lines 5000 --seed 404 --host mx1 --out "$T/bad" --expect "$T/e-bad"
# A last line without '\n' (not a CHKUSER line): one more line for the ledger.
printf 'no newline at the end' >>"$T/a"
merge_expect "$T/want" "$T/e-a" "$T/e-b" "$T/e-c"
awk -F'\t' -v OFS='\t' '$1 == "lines" { $2++ } { print }' "$T/want/totals.tsv" >"$T/totals"
mv "$T/totals" "$T/want/totals.tsv"

make_chunk "$in" mx1-0001 "$T/a" mx1 smtp
make_chunk "$in" mx2-0001 "$T/b" mx2 smtp-mx
make_chunk "$in" mx3-0001 "$T/c" mx3 submission multilog
# The same content under another name (a shipper that re-sent it): counted once.
make_chunk "$in" mx1-0002 "$T/a" mx1 smtp

# Lying manifests.
make_chunk "$in" bad-sha "$T/bad" mx1 smtp
manifest_set "$in" bad-sha sha256 "$(printf x | sha256sum | cut -d' ' -f1)"
make_chunk "$in" bad-lines "$T/bad" mx1 smtp
manifest_set "$in" bad-lines lines "$(($(count_lines "$T/bad") + 1))"
make_chunk "$in" bad-length "$T/bad" mx1 smtp
manifest_set "$in" bad-length length 12
# A truncated gzip whose manifest describes the whole content.
make_chunk "$in" bad-truncated "$T/bad" mx1 smtp
size=$(stat -c %s "$in/bad-truncated.gz")
truncate -s $((size / 2)) "$in/bad-truncated.gz"
# A zero-byte chunk with a manifest that matches its (empty) content.
: >"$T/empty"
make_chunk "$in" bad-zero "$T/empty" mx1 smtp
: >"$in/bad-zero.gz"
# Plain text instead of gzip.
make_chunk "$in" bad-plain "$T/bad" mx1 smtp
cp "$T/bad" "$in/bad-plain.gz"
# A manifest whose chunk is missing, one that names a path, one that names another chunk.
make_chunk "$in" bad-missing "$T/bad" mx1 smtp
rm "$in/bad-missing.gz"
make_chunk "$in" bad-path "$T/bad" mx1 smtp
manifest_set "$in" bad-path chunk "../../etc/passwd"
make_chunk "$in" bad-other "$T/bad" mx1 smtp
manifest_set "$in" bad-other chunk "mx1-0001.gz"
# A symlink where the chunk should be.
make_chunk "$in" bad-link "$T/bad" mx1 smtp
rm "$in/bad-link.gz"
ln -s "$T/bad" "$in/bad-link.gz"
# Garbage manifest.
printf 'hello\n' >"$in/bad-garbage.manifest"

# Never touched: temporary uploads (hidden), traversal attempts and invalid names.
make_chunk "$in" uploading "$T/bad" mx1 smtp
mv "$in/uploading.manifest" "$in/.uploading.manifest"
mv "$in/uploading.gz" "$in/.uploading.gz"
cp "$in/.uploading.manifest" "$in/..evil.manifest"
cp "$in/.uploading.manifest" "$in/bad name.manifest"
ln -s /etc/passwd "$in/.link.manifest"

rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
[[ $rc == 1 ]] || { cat "$T/out" >&2; die "run: exit status $rc, not 1"; }

dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "the views differ from the good chunks' counts"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 3 ]] || die "expected exactly 3 ledger rows"
[[ $(db_query "SELECT host FROM chunks WHERE source = '$T/c'") == mx3 ]] ||
	die "the ledger row of the multilog chunk does not carry the manifest's host"

for n in mx1-0001 mx2-0001 mx3-0001 mx1-0002; do
	[[ -f $in/archive/$n.gz && -f $in/archive/$n.manifest ]] || die "$n was not archived"
done
for n in bad-sha bad-lines bad-length bad-truncated bad-zero bad-plain bad-missing bad-path \
	bad-other bad-link bad-garbage; do
	[[ -f $in/quarantine/$n.manifest ]] || die "$n.manifest is not in quarantine/"
	[[ -s $in/quarantine/$n.why ]] || die "$n has no quarantine/$n.why"
	[[ $(wc -l <"$in/quarantine/$n.why") == 1 ]] || die "$n.why is not one line"
	# One line per problem: the quarantine line carries the reader's or the parser's reason.
	[[ $(grep -cF "$n" "$T/out") == 1 ]] ||
		{ cat "$T/out" >&2; die "not exactly one error line names $n"; }
done
grep -q sha256 "$in/quarantine/bad-sha.why" || die "bad-sha.why does not say sha256"
grep -q lines "$in/quarantine/bad-lines.why" || die "bad-lines.why does not say lines"
grep -q length "$in/quarantine/bad-length.why" || die "bad-length.why does not say length"
grep -q 'unexpected end of file' "$in/quarantine/bad-truncated.why" ||
	die "bad-truncated.why does not say what zlib found"
grep -q 'bad-path.manifest:2: chunk' "$in/quarantine/bad-path.why" ||
	die "bad-path.why does not say which line of the manifest is wrong"
[[ -L $in/quarantine/bad-link.gz ]] || die "the symlinked chunk was not moved aside as it was"
[[ -f $in/.uploading.gz && -f $in/.uploading.manifest && -f $in/..evil.manifest &&
	-f "$in/bad name.manifest" && -L $in/.link.manifest ]] ||
	die "a temporary upload or an invalid name was touched"
grep -q "bad name.manifest" "$T/out" || die "the invalid name was not reported"
grep -q "evil\|uploading" "$T/out" && die "hidden uploads were mentioned"
[[ $(count_files "$in/work" '*') == 0 ]] || die "work/ is not empty"
[[ $(stat -c %a "$in/work") == 700 ]] || die "work/ is not mode 0700"
[[ -f /etc/passwd ]] || die "/etc/passwd is gone"

# A second run finds nothing to do and changes nothing.
db_snapshot "$T/before"
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
[[ $rc == 0 ]] || { cat "$T/out" >&2; die "second run: exit status $rc, not 0"; }
db_snapshot "$T/after"
cmp -s "$T/before" "$T/after" || die "a second run changed the database"

# --dry-run: says what it would do, connects to no database, moves nothing.
gen --lines 3000 --seed 405 --host mx4 --out "$T/d" --expect "$T/e-d"
make_chunk "$in" mx4-0001 "$T/d" mx4 smtp
make_chunk "$in" bad-dry "$T/bad" mx1 smtp
manifest_set "$in" bad-dry lines 1
rc=0
ingest run --dry-run --defaults-file=/nonexistent --incoming "$in" >"$T/out" 2>"$T/err" || rc=$?
[[ $rc == 1 ]] || { cat "$T/out" "$T/err" >&2; die "dry run: exit status $rc, not 1"; }
grep -q "^mx4-0001: would ingest: 3000 lines" "$T/out" ||
	{ cat "$T/out" >&2; die "dry run output"; }
grep -q "^bad-dry: would quarantine: lines" "$T/out" || { cat "$T/out" >&2; die "dry run output"; }
[[ -f $in/mx4-0001.manifest && -f $in/bad-dry.manifest ]] || die "the dry run moved a chunk"
db_snapshot "$T/after"
cmp -s "$T/before" "$T/after" || die "the dry run changed the database"

# The config file: archive = no deletes ingested chunks; a config others can write is refused.
rm "$in/bad-dry.gz" "$in/bad-dry.manifest"
cat >"$T/ingest.conf" <<EOF
# written by $(basename "$0")
defaults_file = $MYCNF
incoming = $in
archive = no
EOF
chmod 666 "$T/ingest.conf"
rc=0
ingest run --config "$T/ingest.conf" >"$T/out" 2>&1 || rc=$?
[[ $rc == 2 ]] || { cat "$T/out" >&2; die "a group/world-writable config: exit status $rc, not 2"; }
chmod 600 "$T/ingest.conf"
# A database option file others can write is a configuration error (2), not an unreachable
# database (3) that the next run might not meet; the chunk stays where it was.
cp "$MYCNF" "$T/open.cnf"
chmod 666 "$T/open.cnf"
rc=0
ingest run --config "$T/ingest.conf" --defaults-file="$T/open.cnf" >"$T/out" 2>&1 || rc=$?
[[ $rc == 2 ]] || { cat "$T/out" >&2; die "a group/world-writable option file: exit $rc, not 2"; }
grep -q "^relaywatch-ingest: $T/open.cnf: refusing a config that group or others can write" \
	"$T/out" || { cat "$T/out" >&2; die "the option file's line is missing"; }
[[ -e $in/mx4-0001.manifest || -e $in/work/mx4-0001.manifest ]] || die "the chunk did not stay"
ingest run --config "$T/ingest.conf" 2>"$T/out" ||
	{ cat "$T/out" >&2; die "run with a config file failed"; }
[[ ! -e $in/mx4-0001.manifest && ! -e $in/archive/mx4-0001.manifest &&
	! -e $in/archive/mx4-0001.gz ]] || die "archive = no kept the chunk"
merge_expect "$T/want2" "$T/want" "$T/e-d"
dump_views "$T/got2"
same_dir "$T/want2" "$T/got2" || die "the views differ after the config-file run"
# With archive = no a new drop directory gets no archive/ (a chunk seen before is deleted).
mkdir "$T/fresh"
make_chunk "$T/fresh" mx4-0001 "$T/d" mx4 smtp
ingest run --config "$T/ingest.conf" --incoming "$T/fresh" 2>"$T/out" ||
	{ cat "$T/out" >&2; die "run into a fresh drop directory failed"; }
[[ -d $T/fresh/work && -d $T/fresh/quarantine && ! -e $T/fresh/archive ]] ||
	die "archive = no: the fresh drop directory has $(ls "$T/fresh" | tr '\n' ' ')"
[[ ! -e $T/fresh/mx4-0001.manifest && ! -e $T/fresh/work/mx4-0001.manifest ]] ||
	die "archive = no: the chunk was not deleted"

echo 'bogus_key = 1' >>"$T/ingest.conf"
rc=0
ingest run --config "$T/ingest.conf" >"$T/out" 2>&1 || rc=$?
[[ $rc == 2 ]] || die "an unknown config key: exit status $rc, not 2"
grep -q "ingest.conf:5: unknown key 'bogus_key'" "$T/out" ||
	{ cat "$T/out" >&2; die "no file:line"; }

# No drop directory at all: a usage error.
rc=0
ingest run --config /dev/null/none --incoming "$in" >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || die "a missing --config file: exit status $rc, not 2"

# Two drop directories in one run: the first one's chunk names its zone (Asia/Tokyo), the
# second's names none, so its syslog dates are read in the config's tz (UTC), not in the zone
# the first directory's chunk left behind.
mkdir "$T/tz1" "$T/tz2"
line='CHKUSER accepted rcpt: from <a@b.example::> remote <h:h:198.51.100.7> rcpt <c@d.example> '
line+=': found existing recipient'
printf 'Jan 29 05:32:14 mx5 smtp: %s\n' "$line" >"$T/tz1.log"
printf 'Jan 29 05:32:14 mx6 smtp: %s\n' "$line" >"$T/tz2.log"
make_chunk "$T/tz1" mx5-0001 "$T/tz1.log" mx5 smtp
echo 'tz = Asia/Tokyo' >>"$T/tz1/mx5-0001.manifest"
make_chunk "$T/tz2" mx6-0001 "$T/tz2.log" mx6 smtp
cat >"$T/tz.conf" <<EOF
defaults_file = $MYCNF
incoming = $T/tz1
incoming = $T/tz2
tz = UTC
EOF
chmod 600 "$T/tz.conf"
ingest run --config "$T/tz.conf" 2>"$T/out" ||
	{ cat "$T/out" >&2; die "the two-directory run failed"; }
[[ $(db_query "SELECT HOUR(hour_utc) FROM event_hourly WHERE host = 'mx5'") == 20 ]] ||
	die "mx5's line was not read in its manifest's zone"
[[ $(db_query "SELECT HOUR(hour_utc) FROM event_hourly WHERE host = 'mx6'") == 5 ]] ||
	die "mx6's line was read in the zone of the other drop directory's chunk, not the config's"
exit 0
