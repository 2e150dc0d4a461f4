#!/usr/bin/env bash
# Broken files and disks, end to end. On the stats server: the drop directory's disk full (no
# space, no inodes) before the first run and while chunks are archived and quarantined; chunks
# whose manifest lies (hash, line count, length), a truncated gzip, a gzip whose CRC is wrong, a
# zero-byte chunk, plain text instead of gzip: each quarantined with its reason while the good
# chunks around it are counted.
# On the mail server: multilog `.u` files (written during an outage, cut mid-line), a zero-byte
# rotated log, a log truncated by copytruncate and a log replaced by another file between two
# ship runs. Every CHKUSER line that was logged is counted exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
db_migrated fault_files
faults=0
expects=()
seed=1000

piece() { # NAME LINES [GEN OPTIONS]: a generated log whose lines must all be counted
	local name=$1 lines=$2
	shift 2
	seed=$((seed + 1))
	gen --lines "$lines" --seed "$seed" --start $((1390973534 + seed * 3600)) "$@" \
		--out "$T/$name" --expect "$T/e-$name"
}
counted() { # NAME... [+lines N] [+malformed N]: these are now expected in the views
	local a
	while (($# > 0)); do
		a=$1
		shift
		case $a in
		+lines | +malformed)
			awk -F'\t' -v OFS='\t' -v k="${a#+}" -v n="$1" \
				'$1 == k { $2 += n } { print }' \
				"${expects[-1]}/totals.tsv" >"$T/totals.tmp"
			mv "$T/totals.tmp" "${expects[-1]}/totals.tsv"
			shift
			;;
		*) expects+=("$T/e-$a") ;;
		esac
	done
	merge_expect "$T/want" "${expects[@]}"
}

# --- the stats server's disk full ---
# The drop directory on a small tmpfs; "full" means no byte and no inode left.
disk=$T/disk
mkdir -p "$disk"
mount -t tmpfs -o size=8m,nr_inodes=64,mode=0755 relaywatch-fault "$disk" ||
	die "cannot mount a tmpfs for the disk-full cases (the suite runs as root)"
on_exit "umount -l '$disk' 2>/dev/null"
in=$disk/in
mkdir -p "$in"
fill() { # takes every free byte and inode of the tmpfs
	local i=0
	head -c 16M /dev/zero >"$disk/filler" 2>/dev/null || true
	while : 2>/dev/null >"$disk/inode.$i"; do
		i=$((i + 1))
	done 2>/dev/null
}
unfill() {
	rm -f "$disk/filler" "$disk"/inode.*
}

piece g1 3000 --host mx1 --service smtp
piece g2 2500 --host mx2 --service smtp-mx --format labelled --malformed 2
piece bad 2000 --host mx1
make_chunk "$in" g1 "$T/g1" mx1 smtp
make_chunk "$in" g2 "$T/g2" mx2 smtp-mx

# 1. Full before the first run: work/, archive/, quarantine/ cannot be created. Exit 2, one
# line, nothing moved.
fill
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
faults=$((faults + 1))
expect_status 2 "$rc" "$T/out" "run on a full disk, first run"
one_problem "$T/out" "run on a full disk, first run"
[[ -e $in/g1.manifest && -e $in/g2.manifest ]] || die "full disk: a chunk was moved"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 0 ]] || die "full disk: something was counted"

# 2. Full while chunks are archived and quarantined (the directories exist): renames need no
# space, so good chunks are counted and archived; a bad chunk goes to quarantine even when its
# .why cannot be written, and the run says so.
unfill
mkdir -m 0700 "$in/work" "$in/archive" "$in/quarantine"
bad=(lie-sha lie-lines lie-length truncated crc zero plain)
make_chunk "$in" lie-sha "$T/bad" mx1 smtp
manifest_set "$in" lie-sha sha256 "$(printf 'forged' | sha256sum | cut -d' ' -f1)"
make_chunk "$in" lie-lines "$T/bad" mx1 smtp
manifest_set "$in" lie-lines lines 1999
make_chunk "$in" lie-length "$T/bad" mx1 smtp
manifest_set "$in" lie-length length 99
make_chunk "$in" truncated "$T/bad" mx1 smtp
truncate -s $(($(stat -c %s "$in/truncated.gz") * 2 / 3)) "$in/truncated.gz"
# The content whole and the manifest true, one bit of the trailer's CRC-32 flipped (its first
# byte is the 8th from the end, before the length).
make_chunk "$in" crc "$T/bad" mx1 smtp
at=$(($(stat -c %s "$in/crc.gz") - 8))
byte=$(od -An -tu1 -j "$at" -N1 "$in/crc.gz")
printf "\\$(printf %o $((byte ^ 1)))" | dd of="$in/crc.gz" bs=1 seek="$at" conv=notrunc status=none
: >"$T/empty"
make_chunk "$in" zero "$T/empty" mx1 smtp
: >"$in/zero.gz"
make_chunk "$in" plain "$T/bad" mx1 smtp
cp "$T/bad" "$in/plain.gz"
fill
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
faults=$((faults + 1))
expect_status 1 "$rc" "$T/out" "run on a full disk with bad chunks"
counted g1 g2
exact "$T/want" "full disk: the good chunks"
for n in g1 g2; do
	[[ -e $in/archive/$n.manifest ]] || die "full disk: $n was not archived"
done
for n in "${bad[@]}"; do
	[[ -e $in/quarantine/$n.manifest ]] || die "full disk: $n was not quarantined"
	grep -q "^relaywatch-ingest: $n: quarantined: " "$T/out" ||
		{ cat "$T/out" >&2; die "full disk: no error line for $n"; }
done
grep -q 'No space left on device' "$T/out" || { cat "$T/out" >&2; die "full disk: not said"; }
echo "error lines (full disk while quarantining):"
problem_lines "$T/out"
unfill
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "run once the disk has room again"
exact "$T/want" "full disk, then room again"
faults=$((faults + ${#bad[@]}))

# 3. The same bad chunks with room to spare: each quarantined with a one-line .why.
for n in "${bad[@]}"; do
	mv "$in/quarantine/$n.manifest" "$in/"
	[[ ! -e $in/quarantine/$n.gz ]] || mv "$in/quarantine/$n.gz" "$in/"
	rm -f "$in/quarantine/$n.why"
done
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
expect_status 1 "$rc" "$T/out" "run over bad chunks"
# One line each (the truncated gzip's and the wrong CRC's say what zlib found, in zlib's words).
[[ $(problem_lines "$T/out" | wc -l) == "${#bad[@]}" ]] ||
	{ cat "$T/out" >&2; die "bad chunks: expected one line each"; }
grep -q '^relaywatch-ingest: truncated: quarantined: truncated.gz: .*unexpected end of file' \
	"$T/out" || { cat "$T/out" >&2; die "truncated: the line does not say what zlib found"; }
grep -qxF 'relaywatch-ingest: crc: quarantined: crc.gz: corrupt gzip data (incorrect data check)' \
	"$T/out" || { cat "$T/out" >&2; die "crc: the line does not say what zlib found"; }
[[ $(<"$in/quarantine/crc.why") == 'crc.gz: corrupt gzip data (incorrect data check)' ]] ||
	die "crc: quarantine/crc.why says '$(<"$in/quarantine/crc.why")'"
for n in "${bad[@]}"; do
	grep -q "^relaywatch-ingest: $n: quarantined: " "$T/out" ||
		{ cat "$T/out" >&2; die "bad chunks: no error line for $n"; }
	[[ $(wc -l <"$in/quarantine/$n.why") == 1 ]] || die "$n: no one-line .why"
done
exact "$T/want" "bad chunks quarantined"
# Nothing of the bad chunks in the ledger either: the wrong CRC is found after its rows were
# scanned, and they go with the chunk.
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 2 ]] || die "bad chunks: a ledger row for one"
umount "$disk" || die "cannot unmount the tmpfs"

# --- the mail server's files, through relaywatch-ship ---
log=$LOGS/maillog
ml=$LOGS/ml
mkdir -p "$ml"
ship_conf "$T/ship.conf" hostname=mx3 <<EOF
source = $log syslog
source = $ml multilog service=smtp-mx
EOF
ship_and_run() { # WHAT
	local rc=0
	"$SHIP" --config "$T/ship.conf" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "$1: relaywatch-ship"
	rc=0
	ingest run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "$1: run"
	exact "$T/want" "$1"
}

# 4. multilog .u files: written while the disk was full or the logger was killed, so cut in the
# middle of a line. All of their bytes are shipped: the cut line is a line of the ledger (and a
# malformed CHKUSER line when it was one).
piece u1 3000 --host mx3 --service smtp-mx --format multilog
piece u2 2000 --host mx3 --service smtp-mx --format multilog --start 1391200000
{ cat "$T/u1"; printf '@4000000052e9000000000000 tcpserver: status: 3/4'; } \
	>"$ml/@4000000052e9000000000000.u"
{
	cat "$T/u2"
	printf '@4000000052ea000000000000 CHKUSER relaying rcpt: '
	printf 'from <x@example.org:x@example.org:> remote <helo'
} >"$ml/@4000000052ea000000000000.u"
: >"$ml/current"
counted u1 +lines 1
counted u2 +lines 1 +malformed 1
ship_and_run "multilog .u files cut mid-line"
faults=$((faults + 2))

# 5. A zero-byte rotated log and a zero-byte live log: nothing to ship, no error.
: >"$log"
: >"$log.1"
ship_and_run "zero-byte logs"
faults=$((faults + 1))

# 6. copytruncate between two runs (the real logrotate's): lines written after the last run are
# in the copy, the live file starts again from zero. Both parts are shipped, once.
piece c1 4000 --host mx3 --service smtp
piece c2 3000 --host mx3 --service smtp
piece c3 2000 --host mx3 --service smtp
rm -f "$log.1"
logrotate_conf copytruncate "$log" "rotate 2" copytruncate
head -c 200000 "$T/c1" >"$log"
"$SHIP" --config "$T/ship.conf" >"$T/out" 2>&1 || die "relaywatch-ship failed: $(cat "$T/out")"
tail -c +200001 "$T/c1" >>"$log"
logrotate_f copytruncate
[[ -f $log.1 && ! -s $log ]] || die "logrotate's copytruncate left no copy or a live file not empty"
cat "$T/c2" >>"$log"
counted c1 c2
ship_and_run "copytruncate between two runs"
# ... and again, the live file truncated a second time (the first copy moves on to $log.2).
logrotate_f copytruncate
[[ -f $log.2 && -f $log.1 && ! -s $log ]] || die "logrotate's second copytruncate did not rotate"
cat "$T/c3" >>"$log"
counted c3
ship_and_run "a second copytruncate"
faults=$((faults + 2))

# 7. The live log replaced by another file (new inode, other content) between two runs, larger
# than the offset the shipper had reached in the old one: shipped from its first byte. Then
# replaced by a smaller one.
piece r1 5000 --host mx3 --service smtp
piece r2 1000 --host mx3 --service smtp
rm -f "$log".*
cp "$T/r1" "$log.new"
mv "$log.new" "$log"
counted r1
ship_and_run "the live log replaced by a larger file"
cp "$T/r2" "$log.new"
mv "$log.new" "$log"
counted r2
ship_and_run "the live log replaced by a smaller file"
faults=$((faults + 2))

tally file_faults "$faults"
exit 0
