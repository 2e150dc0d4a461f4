#!/usr/bin/env bash
# Debian's logrotate with copytruncate + dateext (+ compress, delaycompress) under live writes.
# copytruncate copies maillog to maillog-DATE and then truncates maillog in place; the lines the
# producer writes between the end of the copy and the truncate are in neither file: lost by
# copytruncate's design, not by relaywatch. The test does not hide them, it measures them:
#   written  the lines the producer wrote (all of the generator's log),
#   lost     those found neither in the files on disk at the end (the dated copies, plain or
#            gzipped, and the live file; nothing is deleted: rotate 100) nor in a chunk the
#            shipper sent (a run between the copy and the truncate may have shipped some),
#            each of them lying between the last line of a copy and the first line of the file
#            that follows it (else the loss is not copytruncate's, and the test fails),
#   counted  the lines of the ledger (SUM(line_count)),
# and requires written = counted + lost (a line torn by the copy, cut mid-line at its end, is
# counted once as the fragment it is, and is printed). The views must equal a backfill of the
# surviving lines, exactly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
. "$(dirname "$0")/lib_machinery.sh"
db_migrated machinery_copytruncate
mycnf=$MYCNF

lines=20000
rotations=5
log=$LOGS/maillog
gen --lines "$lines" --seed 1201 --format syslog --host mail1 --service smtp,smtp-mx \
	--malformed 2 --out "$T/a.log"
gate=$(machinery_gate_bytes "$(stat -c %s "$T/a.log")" "$rotations")
ship_conf "$T/ship.conf" max_chunk=100k <<<"source = $log syslog"

# No SIGHUP with copytruncate: the producer keeps its descriptor (O_APPEND, so that after the
# truncate its next line starts the file again).
# shellcheck disable=SC2046 # (the options are words without spaces)
python3 "$PRODUCER" --from "$T/a.log" --to "$log" $(machinery_producer_args a "$gate") \
	--batch 20 --done "$T/done" &
producer=$!
on_exit "kill_child $producer TERM"

# dateext names a rotation by the second (logrotate skips a rotation whose name exists): the next
# rotation waits for a second after the one in which the last logrotate ended, since logrotate
# takes the time for the name after it started, and for a second that names no rotation yet (a
# virtual machine's clock may be stepped back: CI once met a name taken).
cat >"$T/logrotate.conf" <<EOF2
$log {
	rotate 100
	copytruncate
	dateext
	dateformat -%Y%m%d-%s
	compress
	delaycompress
}
EOF2
chmod 644 "$T/logrotate.conf"
last_second=
rotate() {
	local now
	while now=$(date +%s) && { [[ $now == "$last_second" ]] ||
		compgen -G "$LOGS/maillog-*-$now*" >/dev/null; }; do
		sleep 0.05
	done
	logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf" || return
	last_second=$(date +%s)
}

machinery_loops_start "$T/ship.conf"
machinery_rotate_at a "$lines" "$rotations" rotate
wait "$producer" || die "the producer failed"
machinery_finish "$T/ship.conf"
ls -l "$LOGS"
(($(find "$LOGS" -name 'maillog-*' | wc -l) == rotations)) || die "expected $rotations dated copies"

# The accounting, from the files and the chunks alone (the database is not asked). Prints
# "lost torn", writes the surviving lines (in the order written, fragments last) for the backfill.
read -r lost torn < <(
	python3 - "$T/a.log" "$T/survivors" "$log" "$DROP"/archive/*.gz \
		<<'EOF'
import glob
import gzip
import os
import sys

src, out, live, chunks = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
written = open(src, "rb").read().splitlines(keepends=True)
index = {line: i for i, line in enumerate(written)}
assert len(index) == len(written), "the generator's lines are not unique"


def lines_of(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.splitlines(keepends=True)


# The files on disk in the order they were written: the dated copies (names sort by time), then
# the live file. A copy's windows: after its last complete line, before the next file's first.
disk = sorted(glob.glob(live + "-*"), key=lambda p: os.path.basename(p).removesuffix(".gz"))
disk.append(live)
seen = set()
fragments = {}
bounds = []
for path in disk:
    idx = []
    for line in lines_of(path):
        if line in index:
            idx.append(index[line])
        else:
            fragments[line] = path
    seen.update(idx)
    if idx != sorted(idx) or len(set(idx)) != len(idx):
        sys.exit("%s: lines out of order or repeated" % path)
    bounds.append((idx[0], idx[-1]) if idx else None)
for path in chunks:
    for line in lines_of(path):
        if line in index:
            seen.add(index[line])
        elif line not in fragments:
            sys.exit("%s: a line that nobody wrote: %r" % (path, line[:80]))
windows = [(bounds[i][1], bounds[i + 1][0]) for i in range(len(bounds) - 1)
           if bounds[i] and bounds[i + 1]]
lost = [i for i in range(len(written)) if i not in seen]
for i in lost:
    if not any(a < i < b for a, b in windows):
        sys.exit("line %d was lost outside copytruncate's windows %s" % (i + 1, windows))
for frag, path in fragments.items():
    print("torn by the copy (%s): %r" % (path, frag[:60]), file=sys.stderr)
with open(out, "wb") as f:
    f.writelines(written[i] for i in range(len(written)) if i in seen)
    f.writelines(frag + b"\n" for frag in fragments)
print(len(lost), len(fragments))
EOF
) || die "the accounting of copytruncate's loss failed"
[[ -n $lost && -n $torn ]] || die "the accounting printed nothing"

written=$(cut -d' ' -f1 "$T/done")
counted=$(db_query "SELECT SUM(line_count) FROM chunks")
echo "copytruncate, $rotations rotations under live writes: written $written lines," \
	"counted $counted, lost in copytruncate's copy-to-truncate windows $lost" \
	"(torn by the copy and counted as fragments: $torn)"
tally machinery_copytruncate_lost "$lost"
((written == counted - torn + lost)) ||
	die "written $written != counted $counted - torn $torn + lost $lost"

# Row by row: the views equal a backfill of exactly the lines that survived, into a database of
# their own.
(
	T=$T/want-db
	mkdir -p "$T"
	db_migrated machinery_copytruncate_want
	ingest backfill --quiet --defaults-file="$MYCNF" "$T/../survivors" 2>"$T/err" ||
		{ cat "$T/err" >&2; die "backfill of the surviving lines failed"; }
	dump_views "$T/../want"
)
MYCNF=$mycnf
exact "$T/want" "copytruncate under live writes"
