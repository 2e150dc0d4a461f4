#!/usr/bin/env bash
# daemontools' multilog under live writes: a producer writes through a pipe into
# `multilog s16384 n10 DIR`, which renames current to @TAI64N.s every 16 kB and keeps ten files
# (current and the nine newest finished ones), while relaywatch-ship and `relaywatch-ingest run`
# run in loops.
# The producer's lines already carry multilog's TAI64N label (the generator's multilog format),
# so multilog runs without `t`: the labels stay those the generator counted by hour. The producer
# never gets more than 16 kB beyond what it had written when the last successful shipper run
# began; add the pipe's 64 kB that multilog may not have read yet, and a file finished after that
# run began is still there, with 9 x 16 kB after it, when the next run begins (as the README
# asks: the shipper must keep up with `n`). Every view equals the generator's counts exactly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
. "$(dirname "$0")/lib_machinery.sh"
db_migrated machinery_multilog

lines=6000
size=16384
keep=10
ml=$LOGS/smtpd
gen --lines "$lines" --seed 1301 --format multilog --host mail1 --service smtp-mx \
	--malformed 2 --out "$T/a.log" --expect "$T/want"
ship_conf "$T/ship.conf" hostname=mail1 <<<"source = $ml multilog service=smtp-mx"

# The shipper's first runs may come before multilog's first line.
mkdir -p "$ml"
mkfifo "$T/pipe"
multilog "s$size" "n$keep" "$ml" <"$T/pipe" &
multilog=$!
on_exit "kill_child $multilog TERM"
machinery_loops_start "$T/ship.conf"
# shellcheck disable=SC2046 # (the options are words without spaces)
python3 "$PRODUCER" --from "$T/a.log" --stdout $(machinery_producer_args a 16384) --batch 20 \
	--pause 0.002 --done "$T/done" >"$T/pipe" &
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
