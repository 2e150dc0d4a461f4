#!/usr/bin/env bash
# daemontools' multilog under live writes: a producer writes through a pipe into
# `multilog s16384 n5 DIR`, which renames current to @TAI64N.s every 16 kB and deletes all but the
# five newest finished files, while relaywatch-ship and `relaywatch-ingest run` run in loops.
# The producer's lines already carry multilog's TAI64N label (the generator's multilog format),
# so multilog runs without `t`: the labels stay those the generator counted by hour. The producer
# never gets more than a fifth of multilog's kept bytes ahead of the shipper's finished runs (as
# the README asks: the shipper must keep up with `n`), so no file is deleted unshipped. Every view
# equals the generator's counts exactly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
. "$(dirname "$0")/lib_machinery.sh"
db_fresh machinery_multilog
ingest migrate --defaults-file="$MYCNF" || die "migrate failed"

lines=8000
size=16384
keep=5
ml=$LOGS/smtpd
gen --lines "$lines" --seed 1301 --format multilog --host mail1 --service smtp-mx \
	--malformed 2 --out "$T/a.log" --expect "$T/want"
ship_conf "$T/ship.conf" hostname=mail1 <<<"source = $ml multilog service=smtp-mx"

mkfifo "$T/pipe"
multilog "s$size" "n$keep" "$ml" <"$T/pipe" &
multilog=$!
on_exit "kill_child $multilog TERM"
machinery_loops_start "$T/ship.conf"
python3 "$PRODUCER" --from "$T/a.log" --stdout --gate "$T/ship-runs" \
	--gate-bytes $((size * keep / 5)) --batch 20 --pause 0.002 --done "$T/done" >"$T/pipe" &
producer=$!
on_exit "kill_child $producer TERM"
wait "$producer" || die "the producer failed"
# At the end of its input multilog writes out current and exits.
wait "$multilog" || die "multilog failed"
machinery_finish "$T/ship.conf"
ls -l "$ml"

finished=$(db_query "SELECT COUNT(DISTINCT source) FROM chunks WHERE source LIKE '%/@%.s'")
deleted=$((finished - $(find "$ml" -name '@*.s' | wc -l)))
((deleted > 0)) || die "multilog deleted no file: the test did not reach its n limit"
echo "multilog rotated $finished files ($deleted of them deleted by n$keep after shipping);" \
	"$(cat "$T/done") (lines bytes) written"
tally machinery_rotations "$finished"
exact "$T/want" "multilog under live writes"
