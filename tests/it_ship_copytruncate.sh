#!/usr/bin/env bash
# relaywatch-ship and the real logrotate's copytruncate (forced with -f): the copy (maillog.1)
# has the identity of the lines already shipped, so only its unshipped tail goes; the truncated
# live file starts with a new first line, so it is a new file shipped from its start. Then
# logrotate's "copy" (the original is not truncated and goes on growing beside its copy): only the
# growth is new. Then the moments inside logrotate's copy, which no test can stop logrotate at,
# staged by hand: a run while the copy is still being written, a run between the copy and the
# truncate, a run killed while the copy was written. Under live writes, with the loss of
# copytruncate's window measured: tests/it_machinery_copytruncate.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

log=$LOGS/maillog
ship_conf "$T/ship.conf" <<EOF2
source = $log syslog
EOF2
bytes() { gen_lines "$@" | wc -c; }

gen_lines A 1 300 >"$REF/A"
gen_lines B 1 80 >"$REF/B"
gen_lines C 1 60 >"$REF/C"

head -c "$(bytes A 1 200)" "$REF/A" >"$log"
ship_ok --config "$T/ship.conf"
verify "$REF/A" --partial "$REF/A:$(bytes A 1 200)"

# More lines, then copytruncate: copy, truncate in place (same inode), new lines.
logrotate_conf copytruncate "$log" "rotate 4" copytruncate compress delaycompress
logrotate_conf copy "$log" "rotate 4" copy compress delaycompress
inode=$(stat -c %i "$log")
gen_lines A 201 300 >>"$log"
logrotate_f copytruncate
[[ -f $log.1 && ! -s $log && $(stat -c %i "$log") == "$inode" ]] ||
	die "test setup: logrotate did not copy and truncate"
gen_lines B 1 80 >>"$log"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B"

# Next copytruncate; the old copy is compressed now (delaycompress).
logrotate_f copytruncate
[[ -f $log.2.gz && -f $log.1 && ! -s $log ]] || die "test setup: logrotate did not rotate"
gen_lines C 1 40 >>"$log"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C" --partial "$REF/C:$(bytes C 1 40)"

# "copy": maillog.1 becomes a snapshot of maillog, which keeps its lines and grows.
logrotate_f copy
cmp -s "$log" "$log.1" || die "test setup: logrotate did not copy"
gen_lines C 41 60 >>"$log"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C"

# By hand from here: the moments inside logrotate's copy.
# A run while copytruncate's copy is still being written: race.1 holds part of race, cut
# mid-line. The live file is read (to its last complete line), never the unfinished copy; once
# the copy is complete and the original truncated, nothing of the copy is shipped again.
race=$LOGS/race
ship_conf "$T/ship.conf" <<EOF2
source = $log syslog
source = $race syslog
EOF2
gen_lines D 1 300 >"$REF/D"
gen_lines E 1 20 >"$REF/E"
head -c "$(bytes D 1 100)" "$REF/D" >"$race"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C" "$REF/D" --partial "$REF/D:$(bytes D 1 100)"
gen_lines D 101 300 >>"$race"
head -c "$(($(bytes D 1 200) + 17))" "$race" >"$race.1"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C" "$REF/D"
cp "$race" "$race.1"
: >"$race"
cp "$REF/E" "$race"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C" "$REF/D" "$REF/E"

# A run between logrotate's copy and its truncate ships, from the live file, lines the copy does
# not hold; compressed, the copy then ends before what was shipped of it: nothing in it is new,
# and that is no error.
gen_lines E 1 40 >"$REF/E"
gen_lines G 1 10 >"$REF/G"
rm "$race.1"
cp "$race" "$race.1"
gen_lines E 21 40 >>"$race"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C" "$REF/D" "$REF/E"
gzip -6 "$race.1"
cp "$REF/G" "$race"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C" "$REF/D" "$REF/E" "$REF/G"
ship_ok --config "$T/ship.conf"

# A run killed while copytruncate's copy was being written has planned bounds on the live file
# beyond where the copy ends; the live file is then truncated. The next run ships the copy to
# its end (the lines logged after the copy were lost by the rotation itself), never stuck. One
# upload at a time: with more, the killed run may have created temporary files for chunks past
# the copy's end, which no later run makes again (harmless: the ingester skips dot files, but
# verify counts them).
cut=$LOGS/cut
ship_conf "$T/cut.conf" max_chunk=64k parallel=1 "state_dir=$T/cut-state" <<EOF2
source = $cut syslog
EOF2
mkdir -m 700 "$T/cut-state"
gen_lines H 1 3000 >"$REF/H"
gen_lines I 1 10 >"$REF/I"
gen_lines H 1 100 >"$cut"
ship_ok --config "$T/cut.conf"
gen_lines H 101 3000 >>"$cut"
head -c "$(bytes H 1 2000)" "$cut" >"$cut.1"
rc=0
{ RELAYWATCH_CRASH=ship-upload:2 "$SHIP" --config "$T/cut.conf" 2>"$T/err"; } 2>/dev/null || rc=$?
[[ $rc == 137 ]] || { cat "$T/err" >&2; die "the run to interrupt exited $rc, not 137"; }
cp "$REF/I" "$cut"
ship_ok --config "$T/cut.conf"
# The killed run's sftp-server may still carry out an upload's queued open after the rerun has
# renamed that chunk into place: a dot file, which the ingester never reads (shipper/upload.c).
verify "$REF/A" "$REF/B" "$REF/C" "$REF/D" "$REF/E" "$REF/G" "$REF/H" "$REF/I" \
	--partial "$REF/H:$(bytes H 1 2000)" --allow-temp
ship_ok --config "$T/cut.conf"
